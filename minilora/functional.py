"""Functions users call on tensors (``import minilora.functional as F``).

Most are thin wrappers over one fused Function (fast, closed-form gradient).  Beside each fused
op sits a ``*_composed`` version built only from primitive ops, so a student can read the
formula as code and the tests can check that both agree.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from minilora import backend
from minilora.engine import fused, ops, shape_ops
from minilora.engine.creation import as_tensor
from minilora.engine.tensor import Tensor, lift, normalize_axis
from minilora.validation import RngLike, as_rng

__all__ = [
    "softmax", "log_softmax", "cross_entropy", "gelu", "layer_norm", "embedding", "dropout",
    "relu", "sigmoid", "tanh", "concat", "stack", "split", "where", "masked_fill",
    "softmax_composed", "log_softmax_composed", "cross_entropy_composed", "gelu_composed",
    "layer_norm_composed", "linear", "scaled_dot_product_attention", "attention_composed",
]


def _axis(axis: int, x: Tensor) -> int:
    return normalize_axis(axis, x.ndim)[0]


def _floating(x: Tensor, op: str) -> Tensor:
    """``x`` itself when its dtype is floating point; a TypeError naming ``op`` otherwise (exp of integers is not
    defined in the integers, and NumPy would fail deep inside with a casting error)."""
    if x.dtype.kind != "f":
        raise TypeError(f"{op} expects a floating-point tensor, got dtype {x.dtype}; cast it first, "
                        f"e.g. x.astype(np.float32)")
    return x


# -- activations ----------------------------------------------------------------------------------


def relu(x: Tensor) -> Tensor:
    """relu(x) = max(x, 0)."""
    return ops.Relu.apply(x)


def sigmoid(x: Tensor) -> Tensor:
    """sigmoid(x) = 1 / (1 + e^-x)."""
    return ops.Sigmoid.apply(x)


def tanh(x: Tensor) -> Tensor:
    """tanh(x) = (e^x - e^-x) / (e^x + e^-x)."""
    return ops.Tanh.apply(x)


def gelu(x: Tensor) -> Tensor:
    """GELU (tanh approximation, as in GPT-2): x/2 · (1 + tanh(sqrt(2/π) · (x + 0.044715 x³)))."""
    return fused.Gelu.apply(x)


def gelu_composed(x: Tensor) -> Tensor:
    """The same GELU written with primitive ops (slower; for reading and for tests)."""
    inner = math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)
    return 0.5 * x * (1.0 + inner.tanh())


# -- softmax family -------------------------------------------------------------------------------


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    """softmax(x)_i = exp(x_i - max x) / sum_j exp(x_j - max x) along ``axis`` (max subtracted for stability)."""
    return fused.Softmax.apply(_floating(x, "softmax"), axis=_axis(axis, x))


def softmax_composed(x: Tensor, axis: int = -1) -> Tensor:
    """Softmax from primitives: e = exp(x - max x); e / sum(e)."""
    e = (_floating(x, "softmax_composed") - x.max(axis=axis, keepdims=True).detach()).exp()
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    """log_softmax(x)_i = x_i - m - log sum_j exp(x_j - m), m = max x (the log-sum-exp trick)."""
    return fused.LogSoftmax.apply(_floating(x, "log_softmax"), axis=_axis(axis, x))


def log_softmax_composed(x: Tensor, axis: int = -1) -> Tensor:
    """Log-softmax from primitives: s = x - max x; s - log(sum(exp(s)))."""
    shifted = _floating(x, "log_softmax_composed") - x.max(axis=axis, keepdims=True).detach()
    return shifted - shifted.exp().sum(axis=axis, keepdims=True).log()


def _flatten_for_loss(logits: Tensor, targets: Any) -> tuple[Tensor, Tensor]:
    _floating(logits, "cross_entropy")
    targets = as_tensor(targets, device=logits.device) if not isinstance(targets, Tensor) else targets
    if targets.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: targets must be integers (class indices), got dtype {targets.dtype}")
    if logits.ndim not in (2, 3) or targets.shape != logits.shape[:-1]:
        raise ValueError(
            f"cross_entropy: expected logits (N, C) with targets (N,) or logits (B, T, C) with targets (B, T); "
            f"got logits {logits.shape} and targets {targets.shape}"
        )
    n_classes = logits.shape[-1]
    return logits.reshape(-1, n_classes), targets.reshape(-1)


def cross_entropy(logits: Tensor, targets: Any, ignore_index: int | None = None) -> Tensor:
    """Mean negative log-likelihood: -(1/n) sum_i log softmax(logits_i)[targets_i].

    logits (N, C) or (B, T, C); targets integers of shape (N,) or (B, T).  Targets equal to
    ``ignore_index`` do not count (n is the number of the others).  Fused and numerically stable.
    """
    flat_logits, flat_targets = _flatten_for_loss(logits, targets)
    return fused.CrossEntropy.apply(flat_logits, flat_targets, ignore_index=ignore_index)


def cross_entropy_composed(logits: Tensor, targets: Any, ignore_index: int | None = None) -> Tensor:
    """Cross-entropy from primitives: pick log_softmax at the targets, average the valid ones."""
    flat_logits, flat_targets = _flatten_for_loss(logits, targets)
    xp = flat_targets.xp
    t = flat_targets.data
    valid = xp.ones(t.shape, dtype=bool) if ignore_index is None else t != ignore_index
    safe = xp.where(valid, t, 0)
    picked = log_softmax_composed(flat_logits, axis=-1)[xp.arange(t.shape[0]), safe]
    weights = Tensor(valid.astype(flat_logits.dtype))
    return -(picked * weights).sum() / max(int(valid.sum()), 1)


# -- normalisation --------------------------------------------------------------------------------


def layer_norm(x: Tensor, weight: Tensor | None = None, bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Layer norm over the last axis: (x - mean) / sqrt(var + eps) * weight + bias (biased variance)."""
    n = x.shape[-1]
    xp = x.xp
    if weight is None:
        weight = Tensor(xp.ones(n, dtype=x.dtype))
    if bias is None:
        bias = Tensor(xp.zeros(n, dtype=x.dtype))
    if weight.shape != (n,) or bias.shape != (n,):
        raise ValueError(f"layer_norm: weight and bias must have shape ({n},) for input {x.shape}; got "
                         f"{weight.shape} and {bias.shape}")
    return fused.LayerNorm.apply(x, weight, bias, eps=eps)


def layer_norm_composed(x: Tensor, weight: Tensor | None = None, bias: Tensor | None = None,
                        eps: float = 1e-5) -> Tensor:
    """Layer norm from primitives: (x - x.mean()) / (x.var() + eps).sqrt() * weight + bias."""
    mean = x.mean(axis=-1, keepdims=True)
    xhat = (x - mean) / (x.var(axis=-1, keepdims=True) + eps).sqrt()
    if weight is not None:
        xhat = xhat * weight
    if bias is not None:
        xhat = xhat + bias
    return xhat


# -- lookup and regularisation --------------------------------------------------------------------


def embedding(ids: Any, weight: Tensor) -> Tensor:
    """Row lookup: out[..., :] = weight[ids[...], :]; ids are integers in 0..num_embeddings-1.

    Ids out of range raise ValueError on every device (CuPy would silently wrap them); on a GPU the
    check reads min and max back to the host, one small synchronisation per call.
    """
    ids = ids.data if isinstance(ids, Tensor) else ids
    if not hasattr(ids, "dtype"):
        ids = np.asarray(ids)
    if ids.dtype.kind not in "iu":
        raise TypeError(f"embedding: ids must be integers, got dtype {ids.dtype}")
    ids = backend.to_device(ids, weight.device) if backend.device_of(ids) == "cpu" else ids
    vocab = weight.shape[0]
    if ids.size:
        low, high = int(ids.min()), int(ids.max())
        if low < 0 or high >= vocab:
            bad = low if low < 0 else high
            raise ValueError(f"embedding: token id {bad} is out of range for a table of {vocab} rows "
                             f"(expected 0..{vocab - 1})")
    return fused.Embedding.apply(Tensor(ids), weight)


def dropout(x: Tensor, p: float = 0.5, training: bool = True, rng: RngLike = None) -> Tensor:
    """Inverted dropout: zero each value with probability p and scale the rest by 1/(1-p).

    The keep-mask is drawn on the host with ``rng`` (a Generator or a seed; same seed, same mask on
    every device) and copied to the device, which costs a transfer per call on a GPU.  Identity when ``training`` is
    False or p == 0.
    """
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout: p must be in [0, 1), got {p}")
    if not training or p == 0.0:
        return x
    keep = (as_rng(rng).random(x.shape) >= p).astype(x.dtype) / np.asarray(1.0 - p, dtype=x.dtype)
    return x * Tensor(backend.to_device(keep, x.device))


# -- combining and selecting ----------------------------------------------------------------------


def concat(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """Join tensors along an existing axis (``numpy.concatenate``)."""
    tensors = [as_tensor(t) for t in tensors]
    return shape_ops.Concat.apply(*tensors, axis=_axis(axis, tensors[0]))


def stack(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """Join tensors along a new axis (``numpy.stack``)."""
    tensors = [as_tensor(t) for t in tensors]
    ndim = tensors[0].ndim + 1
    if not -ndim <= axis < ndim:
        raise ValueError(f"stack: axis {axis} out of range for {ndim}-dimensional result")
    return shape_ops.Stack.apply(*tensors, axis=axis % ndim)


def split(x: Tensor, sections: int | Sequence[int], axis: int = 0) -> list[Tensor]:
    """Split along ``axis`` into ``sections`` equal parts, or into parts of the given sizes."""
    axis = _axis(axis, x)
    length = x.shape[axis]
    if isinstance(sections, (int, np.integer)):
        if sections <= 0 or length % sections:
            raise ValueError(f"split: axis {axis} of length {length} does not divide into {sections} equal parts")
        sizes = [length // sections] * sections
    else:
        sizes = list(sections)
        if sum(sizes) != length:
            raise ValueError(f"split: sizes {sizes} add up to {sum(sizes)}, but axis {axis} has length {length}")
    parts, start = [], 0
    for size in sizes:
        index = [slice(None)] * x.ndim
        index[axis] = slice(start, start + size)
        parts.append(x[tuple(index)])
        start += size
    return parts


def where(cond: Any, a: Any, b: Any) -> Tensor:
    """Elementwise choice: a where cond is True, else b (broadcasting)."""
    like = a if isinstance(a, Tensor) else b if isinstance(b, Tensor) else as_tensor(a)
    cond = cond if isinstance(cond, Tensor) else as_tensor(cond, device=like.device)
    if cond.dtype != np.bool_:
        raise TypeError(f"where: cond must be boolean, got dtype {cond.dtype}")
    return shape_ops.Where.apply(cond, lift(a, like), lift(b, like))


def masked_fill(x: Tensor, mask: Any, value: float) -> Tensor:
    """x with ``value`` wherever ``mask`` is True (e.g. -inf above the diagonal in causal attention)."""
    mask = mask if isinstance(mask, Tensor) else as_tensor(mask, device=x.device)
    if mask.dtype != np.bool_:
        raise TypeError(f"masked_fill: mask must be boolean, got dtype {mask.dtype}")
    return shape_ops.MaskedFill.apply(x, mask, value=value)


# -- layers as functions --------------------------------------------------------------------------


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = x @ weight^T + bias, weight (out, in) as in ``nn.Linear`` (fused: one 2-D matmul per gradient)."""
    if x.shape[-1] != weight.shape[-1]:
        raise ValueError(f"linear: input last dimension {x.shape[-1]} does not match weight {weight.shape} (out, in)")
    if bias is None:
        return fused.LinearFn.apply(x, weight)
    return fused.LinearFn.apply(x, weight, bias)


def scaled_dot_product_attention(q: Tensor, k: Tensor, v: Tensor, causal: bool = True) -> Tensor:
    """softmax(q k^T / sqrt(h) + mask) v for q, k, v of shape (B, H, T, h); fused forward and backward.

    k and v may hold more keys than q has queries, (B, H, T_k, h) with T_k > T: the first T_k − T are a prefix
    (prefix-tuning) that every query sees; causally, query i sees keys 0 .. T_k − T + i."""
    if q.ndim != 4 or k.shape != v.shape or k.shape[:2] != q.shape[:2] or k.shape[3] != q.shape[3] \
            or k.shape[2] < q.shape[2]:
        raise ValueError(f"scaled_dot_product_attention: expected q of shape (B, H, T, h) and k, v of one shape "
                         f"(B, H, T_k, h) with T_k >= T; got {q.shape}, {k.shape}, {v.shape}")
    return fused.Attention.apply(q, k, v, causal=causal)


def attention_composed(q: Tensor, k: Tensor, v: Tensor, causal: bool = True) -> Tensor:
    """The same attention from primitives: scores, causal mask (-inf above the diagonal, shifted right by the
    T_k − T prefix keys), softmax, weighted sum."""
    t, t_k = q.shape[-2], k.shape[-2]
    scores = (q @ k.transpose(0, 1, 3, 2)) * (1.0 / math.sqrt(q.shape[-1]))  # (B, H, T, T_k)
    if causal:
        future = np.triu(np.ones((t, t_k), dtype=bool), 1 + t_k - t)
        scores = masked_fill(scores, Tensor(backend.to_device(future, q.device)), -np.inf)
    return softmax_composed(scores, axis=-1) @ v
