"""Fused primitives for neural-network layers: one Function for what would otherwise be many.

A fused op computes its gradient in closed form instead of through a chain of small ops, which
saves memory (fewer saved intermediates) and time (fewer temporaries).  ``functional.py`` keeps
a composed version of each beside it, built from the primitives in ``ops.py``; the tests check
that both agree.  ``Array`` (engine/tensor.py) is a NumPy or CuPy ndarray.
"""

from __future__ import annotations

import functools
import math
from typing import Callable

import numpy as np

from minilora import backend
from minilora.engine.tensor import Array, Function


# Sums over the last axis use einsum: NumPy's ``.sum(axis=-1)`` reduces many short rows one at a
# time, while einsum vectorises across them (faster for rows of 32-256 values: ``python -m minilora.bench``).
def _rowsum(x: Array) -> Array:
    """sum_i x[..., i] with the axis kept: (..., n) -> (..., 1)."""
    return backend.get_xp(x).einsum("...i->...", x)[..., None]


def _rowdot(a: Array, b: Array) -> Array:
    """sum_i a[..., i] b[..., i] with the axis kept: (..., n) -> (..., 1)."""
    return backend.get_xp(a).einsum("...i,...i->...", a, b)[..., None]


class Softmax(Function):
    """y = exp(x - max x) / sum exp(x - max x) along ``axis``; dx = y * (g - sum(g * y))."""

    @staticmethod
    def forward(ctx: Function, x: Array, axis: int) -> Array:
        xp = backend.get_xp(x)
        y = x - x.max(axis=axis, keepdims=True)
        xp.exp(y, out=y)
        y /= y.sum(axis=axis, keepdims=True)
        ctx.save_for_backward(y)
        ctx.axis = axis
        return y

    @staticmethod
    def backward(ctx: Function, g: Array) -> tuple[Array | None, ...]:
        (y,) = ctx.saved_tensors
        dx = g * y
        dx -= y * dx.sum(axis=ctx.axis, keepdims=True)
        return (dx,)


class LogSoftmax(Function):
    """y = x - max x - log sum exp(x - max x) along ``axis``; dx = g - exp(y) * sum(g)."""

    @staticmethod
    def forward(ctx: Function, x: Array, axis: int) -> Array:
        xp = backend.get_xp(x)
        shifted = x - x.max(axis=axis, keepdims=True)
        y = shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))
        ctx.save_for_backward(y)
        ctx.axis = axis
        return y

    @staticmethod
    def backward(ctx: Function, g: Array) -> tuple[Array | None, ...]:
        (y,) = ctx.saved_tensors
        xp = backend.get_xp(g)
        return (g - xp.exp(y) * g.sum(axis=ctx.axis, keepdims=True),)


class CrossEntropy(Function):
    """Mean negative log-likelihood of integer targets under softmax(logits), fused.

    loss = -(1/n) sum_i log softmax(z_i)[t_i] over the n targets that are not ``ignore_index``;
    dz_i = (softmax(z_i) - onehot(t_i)) / n for those rows, 0 for ignored rows.
    logits (N, C), targets (N,) integers.
    """

    @staticmethod
    def forward(ctx: Function, logits: Array, targets: Array, ignore_index: int | None) -> Array:
        xp = backend.get_xp(logits)
        n_rows, n_classes = logits.shape
        valid = targets != ignore_index if ignore_index is not None else None
        safe_targets = targets if valid is None else xp.where(valid, targets, 0)
        if n_rows:
            low, high = int(safe_targets.min()), int(safe_targets.max())  # on a GPU: one small sync
            if low < 0 or high >= n_classes:
                bad = low if low < 0 else high
                raise ValueError(f"cross_entropy: target {bad} is out of range for {n_classes} classes "
                                 f"(expected 0..{n_classes - 1})")
        rows = xp.arange(n_rows)
        probs = logits - logits.max(axis=1, keepdims=True)
        target_logit = probs[rows, safe_targets]
        xp.exp(probs, out=probs)
        sums = probs.sum(axis=1)
        nll = xp.log(sums) - target_logit  # log-sum-exp form: never log(0)
        probs /= sums[:, None]
        count = n_rows if valid is None else int(valid.sum())
        if valid is not None:
            nll = xp.where(valid, nll, 0)
        ctx.save_for_backward(probs, safe_targets, valid)
        ctx.count = max(count, 1)  # all targets ignored: loss 0 and no gradient
        return (nll.sum() / ctx.count).astype(logits.dtype)  # a plain int divisor must not promote (NumPy 1, CuPy)

    @staticmethod
    def backward(ctx: Function, g: Array) -> tuple[Array | None, ...]:
        probs, targets, valid = ctx.saved_tensors
        xp = backend.get_xp(probs)
        dz = probs.copy()
        dz[xp.arange(dz.shape[0]), targets] -= 1
        scale = g / ctx.count
        if valid is not None:
            dz *= (valid * scale)[:, None].astype(dz.dtype)
        else:
            dz *= scale
        return dz, None


_GELU_C = math.sqrt(2.0 / math.pi)

# An elementwise formula of many steps runs over cache-sized pieces of its arrays on the CPU: each
# step then reads what the step before it just left in the L2 cache instead of going to main memory.
_PIECE = 1 << 16  # elements per piece (256 KB of float32)


def _piecewise(fn: Callable[..., None], *arrays: Array) -> None:
    """Call ``fn`` on matching pieces of same-shaped arrays; outputs must be C-contiguous (one piece off the CPU)."""
    flat = [a.reshape(-1) for a in arrays]
    n = flat[0].size
    step = _PIECE if backend.device_of(flat[0]) == "cpu" else max(n, 1)
    for start in range(0, n, step):
        fn(*(a[start:start + step] for a in flat))


def _gelu(x: Array, y: Array, dydx: Array | None = None) -> None:
    """Write y = gelu(x) and, when given, dydx = gelu'(x) (the formulas of ``Gelu``)."""
    xp = backend.get_xp(x)
    x2 = x * x
    s = x2 * (0.044715 * _GELU_C)
    s += _GELU_C
    s *= x  # u = sqrt(2/pi) (x + 0.044715 x^3)
    xp.tanh(s, out=s)
    s += 1
    s *= 0.5  # s = (1 + tanh u) / 2
    xp.multiply(x, s, out=y)
    if dydx is not None:
        x2 *= 6 * 0.044715 * _GELU_C
        x2 += 2 * _GELU_C
        x2 *= x  # x sqrt(2/pi) (2 + 6 * 0.044715 x^2)
        xp.subtract(1, s, out=dydx)
        dydx *= s
        dydx *= x2
        dydx += s


class Gelu(Function):
    """GELU, tanh approximation: y = x s with s = (1 + tanh(u))/2, u = sqrt(2/pi) (x + 0.044715 x^3).

    dy/dx = s + x ds/dx = s + s (1 - s) x sqrt(2/pi) (2 + 6 * 0.044715 x^2), using 1 - tanh(u)^2 = 4 s (1 - s).
    The forward computes dy/dx while x^2 and s are at hand and saves only it; backward is dx = g dy/dx.
    """

    @staticmethod
    def forward(ctx: Function, x: Array) -> Array:
        xp = backend.get_xp(x)
        y = xp.empty(x.shape, dtype=x.dtype)
        if not any(ctx.needs_input_grad):
            _piecewise(_gelu, x, y)
            return y
        dydx = xp.empty(x.shape, dtype=x.dtype)
        _piecewise(_gelu, x, y, dydx)
        ctx.save_for_backward(dydx)
        return y

    @staticmethod
    def backward(ctx: Function, g: Array) -> tuple[Array | None, ...]:
        (dydx,) = ctx.saved_tensors
        return (g * dydx,)


def _pieces(count: int, per_item: int, device: str, scale: int = 1) -> list[slice]:
    """Slices of ``count`` items (rows, sequences) of ``per_item`` elements each, about ``scale`` · ``_PIECE``
    elements a slice on the CPU (one slice elsewhere)."""
    step = max(1, (scale * _PIECE) // max(per_item, 1)) if device == "cpu" else max(count, 1)
    return [slice(start, start + step) for start in range(0, count, step)]


class LayerNorm(Function):
    """y = (x - mean) / sqrt(var + eps) * w + b over the last axis.

    With xhat the normalised input and r = 1/sqrt(var + eps):
    dw = sum(g * xhat), db = sum(g) over all leading axes, and
    dx = r * (gw - mean(gw) - xhat * mean(gw * xhat)) where gw = g * w.
    Both passes run over cache-sized blocks of rows on the CPU (``_pieces``), as ``_piecewise`` does.
    """

    @staticmethod
    def forward(ctx: Function, x: Array, weight: Array, bias: Array, eps: float) -> Array:
        xp = backend.get_xp(x)
        n = x.shape[-1]
        x2 = x.reshape(-1, n)  # (N, n): leading axes as rows
        xhat, y = xp.empty(x2.shape, dtype=x.dtype), xp.empty(x2.shape, dtype=x.dtype)
        rstd = xp.empty((x2.shape[0], 1), dtype=x.dtype)
        for rows in _pieces(x2.shape[0], n, backend.device_of(x)):
            xh = xhat[rows]
            xp.subtract(x2[rows], _rowsum(x2[rows]) / n, out=xh)  # x - mean
            r = rstd[rows]
            r[...] = 1.0 / xp.sqrt(_rowdot(xh, xh) / n + eps)  # 1 / sqrt(var + eps)
            xh *= r
            xp.multiply(xh, weight, out=y[rows])
            y[rows] += bias
        ctx.save_for_backward(xhat, rstd, weight)
        return y.reshape(x.shape)

    @staticmethod
    def backward(ctx: Function, g: Array) -> tuple[Array | None, ...]:
        xhat, rstd, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad
        xp, n = backend.get_xp(g), g.shape[-1]
        g2 = g.reshape(-1, n)  # leading axes as rows
        dw = xp.einsum("ni,ni->i", g2, xhat) if need_w else None  # sum of g * xhat over rows
        db = xp.einsum("ni->i", g2) if need_b else None  # sum of g over rows
        dx = None
        if need_x:
            dx = xp.empty(g2.shape, dtype=g.dtype)
            for rows in _pieces(g2.shape[0], n, backend.device_of(g)):
                d, xh = dx[rows], xhat[rows]
                xp.multiply(g2[rows], weight, out=d)  # gw
                centre = xh * (_rowdot(d, xh) / n)
                centre += _rowsum(d) / n  # mean(gw) + xhat * mean(gw * xhat)
                d -= centre
                d *= rstd[rows]
            dx = dx.reshape(g.shape)
        return dx, dw, db


class Embedding(Function):
    """y = weight[ids] (rows of the table); dweight = rows of g added at ``ids`` (repeats accumulate)."""

    @staticmethod
    def forward(ctx: Function, ids: Array, weight: Array) -> Array:
        ctx.save_for_backward(ids)
        ctx.weight_shape = weight.shape
        return weight[ids]

    @staticmethod
    def backward(ctx: Function, g: Array) -> tuple[Array | None, ...]:
        (ids,) = ctx.saved_tensors
        xp = backend.get_xp(g)
        dweight = xp.zeros(ctx.weight_shape, dtype=g.dtype)
        xp.add.at(dweight, ids.reshape(-1), g.reshape(-1, ctx.weight_shape[1]))
        return None, dweight


class LinearFn(Function):
    """y = x @ W^T (+ b) for x (..., k), W (d, k), b (d,).

    dx = g @ W;  dW = g^T x and db = sum(g) with all leading axes flattened into one (a single
    2-D matmul instead of a batch of them).  A frozen W (``needs_input_grad`` False) costs nothing:
    no dW is computed and x is not even kept for the backward pass.
    """

    @staticmethod
    def forward(ctx: Function, x: Array, weight: Array, bias: Array | None = None) -> Array:
        x2 = x.reshape(-1, x.shape[-1])  # (N, k): one 2-D matmul is faster than a batch of them
        need_w = bool(ctx.needs_input_grad) and ctx.needs_input_grad[1]
        ctx.save_for_backward(x2 if need_w else None, weight)  # x is needed only for dW
        ctx.x_shape = x.shape
        y = x2 @ weight.T  # (N, d)
        if bias is not None:
            y += bias
        return y.reshape(*x.shape[:-1], weight.shape[0])

    @staticmethod
    def backward(ctx: Function, g: Array) -> tuple[Array | None, ...]:
        x2, weight = ctx.saved_tensors
        needs = ctx.needs_input_grad
        g2 = g.reshape(-1, g.shape[-1])  # (N, d)
        dx = (g2 @ weight).reshape(ctx.x_shape) if needs[0] else None
        dw = g2.T @ x2 if needs[1] else None
        if len(needs) == 2:  # no bias
            return dx, dw
        db = backend.get_xp(g).einsum("ni->i", g2) if needs[2] else None  # sum over rows
        return dx, dw, db


@functools.lru_cache(maxsize=32)
def _causal_mask_t(size: int, dtype: str, device: str, n_keys: int | None = None) -> Array:
    """Additive causal mask in the transposed (key j, query i) layout: -inf where j > i + o, else 0 (cached).

    o = n_keys − size: with more keys than queries (a prefix of o keys, prefix-tuning) query i sits at key
    position o + i and sees every prefix key; o = 0 is the square mask."""
    n_keys = size if n_keys is None else n_keys
    return backend.to_device(np.tril(np.full((n_keys, size), -np.inf, dtype=dtype), size - n_keys - 1), device)


_SCORE_PIECES = 2  # an attention chunk holds about 2 · _PIECE score entries (``_pieces`` of the batch axis)


class Attention(Function):
    """Scaled dot-product attention, fused: y = softmax(q k^T / sqrt(h) + mask) v.

    q: (B, H, T, h); k, v: (B, H, T_k, h) with T_k >= T (T_k = T, or p + T with a prefix of p keys that
    every query sees).  With P the attention probabilities (B, H, T, T_k):
    dv = P^T g;  dP = g v^T;  dS = P * (dP - sum(dP * P)) / sqrt(h);  dq = dS k;  dk = dS^T q.
    The row sums need no T x T product: sum_j dP_ij P_ij = g_i . sum_j P_ij v_j = g_i . y_i
    (the trick FlashAttention uses).  ``causal`` masks positions j > i (a token never attends to the future).

    Memory layout: the scores are stored transposed, S^T = k q^T of shape (B, H, T_k, T_q), so the
    softmax sums and maxima run over axis -2.  NumPy then combines whole rows with vector
    instructions, faster than reducing many short rows along the last axis (``python -m minilora.bench``
    times the step).  On the CPU both passes run over a few sequences at a time (``_pieces``), so the
    scores of one chunk stay in the cache from their product through the softmax to the next product.
    """

    @staticmethod
    def forward(ctx: Function, q: Array, k: Array, v: Array, causal: bool) -> Array:
        xp = backend.get_xp(q)
        scale = 1.0 / math.sqrt(q.shape[-1])
        b, n_head, t, t_k = q.shape[0], q.shape[1], q.shape[2], k.shape[2]
        att_t = xp.empty((b, n_head, t_k, t), dtype=q.dtype)  # S^T, then P^T
        y = xp.empty(q.shape, dtype=q.dtype)  # (B, H, T, h)
        device = backend.device_of(q)
        mask = _causal_mask_t(t, att_t.dtype.str, device, t_k) if causal else None
        for c in _pieces(b, n_head * t_k * t, device, _SCORE_PIECES):
            a = att_t[c]
            xp.matmul(k[c], q[c].swapaxes(-1, -2), out=a)  # S^T: a[..., j, i] = k_j . q_i
            a *= scale
            if mask is not None:
                a += mask
            a -= a.max(axis=-2, keepdims=True)
            xp.exp(a, out=a)
            a *= 1 / a.sum(axis=-2, keepdims=True)  # P^T: each column (one query) sums to 1
            xp.matmul(a.swapaxes(-1, -2), v[c], out=y[c])  # P v (chunk, H, T, h)
        ctx.save_for_backward(q, k, v, att_t, y)
        ctx.scale = scale
        return y

    @staticmethod
    def backward(ctx: Function, g: Array) -> tuple[Array | None, ...]:
        q, k, v, att_t, y = ctx.saved_tensors
        need_q, need_k, need_v = ctx.needs_input_grad
        xp = backend.get_xp(g)
        dq = xp.empty(q.shape, dtype=q.dtype) if need_q else None
        dk = xp.empty(k.shape, dtype=k.dtype) if need_k else None
        dv = xp.empty(v.shape, dtype=v.dtype) if need_v else None
        row = _rowdot(g, y).swapaxes(-1, -2)  # sum_j dP_ij P_ij = g_i . y_i  (B, H, 1, T)
        for c in _pieces(q.shape[0], att_t[0].size, backend.device_of(g), _SCORE_PIECES):
            p_t, g_c = att_t[c], g[c]
            if need_v:
                xp.matmul(p_t, g_c, out=dv[c])  # P^T g
            if need_q or need_k:
                ds_t = v[c] @ g_c.swapaxes(-1, -2)  # dP^T = v g^T
                ds_t -= row[c]
                ds_t *= p_t
                ds_t *= ctx.scale  # dS^T
                if need_q:
                    xp.matmul(ds_t.swapaxes(-1, -2), k[c], out=dq[c])  # dS k
                if need_k:
                    xp.matmul(ds_t, q[c], out=dk[c])  # dS^T q
        return dq, dk, dv
