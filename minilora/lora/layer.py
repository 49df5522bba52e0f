"""The LoRA layer: a frozen ``nn.Linear`` plus a trainable low-rank update (Hu et al. 2021, arXiv 2106.09685).

A pretrained weight W0 ∈ R^{d×k} (d = out_features, k = in_features) stays frozen.  The update is
constrained to a rank-r product ΔW = B A with B ∈ R^{d×r}, A ∈ R^{r×k}, r ≪ min(d, k):

    h = W0 x + b + s · B (A x),        s = α / r   (α / sqrt(r) with rsLoRA)

Only A and B train: r(d + k) numbers instead of d·k.  B = 0 at init, so an adapted model starts
out computing exactly what the base model computes.  For inference the update can be merged into
one matrix, W = W0 + s·B A, so LoRA adds no latency.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from minilora import backend, functional as F, nn
from minilora.engine.tensor import Tensor, is_grad_enabled

__all__ = ["LoraConfig", "LoRALinear", "lora_scaling", "INITS"]

INITS = ("gaussian", "kaiming")


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _validate(owner: str, r: Any, alpha: Any, dropout: Any, init: Any, use_rslora: Any) -> None:
    """Raise a ValueError naming the first bad hyper-parameter."""
    if not _is_int(r) or r < 1:
        raise ValueError(f"{owner}: r must be an integer >= 1, got {r!r}")
    if alpha is not None and (not _is_real(alpha) or not math.isfinite(alpha) or alpha <= 0):
        raise ValueError(f"{owner}: alpha must be a positive number (or None, meaning alpha = r), got {alpha!r}")
    if not _is_real(dropout) or not 0.0 <= dropout < 1.0:
        raise ValueError(f"{owner}: dropout must be a number in [0, 1), got {dropout!r}")
    if init not in INITS:
        raise ValueError(f"{owner}: init must be one of {INITS}, got {init!r}")
    if not isinstance(use_rslora, (bool, np.bool_)):
        raise ValueError(f"{owner}: use_rslora must be True or False, got {use_rslora!r}")


def _plain_alpha(alpha: Any) -> int | float:
    """A validated alpha as a Python number: int for integer types, float otherwise (NumPy scalars
    are not JSON-serialisable, and an adapter config must be written as JSON)."""
    return int(alpha) if _is_int(alpha) else float(alpha)


def lora_scaling(r: int, alpha: float, use_rslora: bool = False) -> float:
    """The factor s in h = W0 x + s·B A x:  s = α / r,  or  s = α / sqrt(r) with rsLoRA.

    α / r (the LoRA paper) keeps the size of the update roughly constant when r changes, so the
    learning rate need not be retuned per rank.  Kalajdzievski (2023, arXiv 2312.03732) shows that
    α / sqrt(r) ("rank-stabilised") keeps learning stable at large r, where α / r shrinks it too much.
    """
    return float(alpha) / (math.sqrt(r) if use_rslora else r)


@dataclass(frozen=True)
class LoraConfig:
    """Hyper-parameters of a LoRA adapter (the names follow PEFT's ``LoraConfig``).

    r               rank of the update ΔW = B A (A: r×k, B: d×r).
    alpha           numerator of the scaling; None means alpha = r (scaling 1).
    dropout         dropout probability on the LoRA path's input (training only).
    target_modules  module names to adapt: a Linear whose dotted name equals a target or ends
                    in ``"." + target`` is replaced (``"q_proj"`` matches ``blocks.3.attn.q_proj``).
    init            how A starts: ``"gaussian"`` (A ~ N(0, σ²), σ = 1/r, PEFT's "gaussian") or
                    ``"kaiming"`` (A ~ U(-1/sqrt(k), 1/sqrt(k)), loralib / PEFT's default); B = 0 always.
    use_rslora      scaling α / sqrt(r) instead of α / r.
    """

    r: int = 4
    alpha: float | None = None
    dropout: float = 0.0
    target_modules: tuple[str, ...] = ("q_proj", "v_proj")
    init: str = "gaussian"
    use_rslora: bool = False

    def __post_init__(self) -> None:
        _validate("LoraConfig", self.r, self.alpha, self.dropout, self.init, self.use_rslora)
        # NumPy scalars (np.int64(4), np.float32(8)) become Python numbers: the config is written as JSON
        object.__setattr__(self, "r", int(self.r))
        object.__setattr__(self, "alpha", None if self.alpha is None else _plain_alpha(self.alpha))
        object.__setattr__(self, "dropout", float(self.dropout))
        object.__setattr__(self, "use_rslora", bool(self.use_rslora))
        targets = self.target_modules
        if isinstance(targets, str):  # one name; PEFT would read a string as a regex, minilora does not
            targets = (targets,)
        bad = ValueError(f"LoraConfig: target_modules must be a non-empty list of non-empty module names, "
                         f"got {self.target_modules!r}")
        try:
            targets = tuple(targets)
        except TypeError:
            raise bad from None
        if not targets or not all(isinstance(t, str) and t for t in targets):
            raise bad
        object.__setattr__(self, "target_modules", targets)

    @property
    def lora_alpha(self) -> float:
        """α as used: ``alpha``, or r when ``alpha`` is None."""
        return self.r if self.alpha is None else self.alpha

    @property
    def scaling(self) -> float:
        """s = α / r (α / sqrt(r) with rsLoRA), see ``lora_scaling``."""
        return lora_scaling(self.r, self.lora_alpha, self.use_rslora)


def init_lora_A(r: int, k: int, init: str, rng: np.random.Generator) -> np.ndarray:
    """A host float64 array A (r, k) drawn from ``rng``.

    gaussian: A_ij ~ N(0, σ²) with σ = 1/r — PEFT's ``init_lora_weights="gaussian"``.
    kaiming:  kaiming-uniform with a = sqrt(5) on fan_in = k, as loralib and PEFT's default
              (``init_lora_weights=True``) do: gain = sqrt(2 / (1 + a²)) = sqrt(1/3),
              bound = gain · sqrt(3 / fan_in) = 1 / sqrt(k), so A_ij ~ U(-1/sqrt(k), 1/sqrt(k)).
    """
    if init == "gaussian":
        return rng.normal(0.0, 1.0 / r, (r, k))
    bound = 1.0 / math.sqrt(k)
    return rng.uniform(-bound, bound, (r, k))


class LoRALinear(nn.Module):
    """A frozen Linear plus a low-rank update:  y = x W0^T + b + s · (x A^T) B^T.

    ``base`` (the original ``nn.Linear``, weight W0 (d, k) and bias frozen), ``lora_A`` (r, k)
    random, ``lora_B`` (d, r) zeros, s = ``scaling``.  A and B are drawn on the host from ``rng``
    and moved to the base weight's device, in its dtype.  1 <= r <= min(d, k): a larger r would
    give B A more numbers than W0 itself and no more rank.

    The LoRA path runs in the cheap order x → A x (r numbers per token) → B (A x): B A (d × k) is
    never formed while training, and the frozen W0 gets no gradient computed.

    ``merge()`` folds the update into the base weight, W = W0 + s·B A, so inference costs one
    matmul; ``unmerge()`` restores W0 exactly.  While merged, forward is the base layer alone, and
    a forward in training mode with gradients enabled raises RuntimeError (A and B would silently
    get no gradient, and W would go stale if they changed): merged layers are for inference.
    """

    def __init__(self, base: nn.Linear, r: int = 4, alpha: float | None = None, dropout: float = 0.0,
                 init: str = "gaussian", use_rslora: bool = False, rng: np.random.Generator | int | None = None):
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"LoRALinear wraps an nn.Linear, got {type(base).__name__}")
        _validate("LoRALinear", r, alpha, dropout, init, use_rslora)
        d, k = base.out_features, base.in_features
        if r > min(d, k):
            raise ValueError(
                f"LoRALinear: r={r} is too large for a {d}x{k} weight (d = out_features, k = in_features); "
                f"expected 1 <= r <= min(d, k) = {min(d, k)}"
            )
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        self.in_features, self.out_features = k, d
        # Python numbers, not NumPy scalars: save_adapter writes these into a JSON config
        self.r, self.use_rslora, self.init = int(r), bool(use_rslora), init
        self.lora_alpha = self.r if alpha is None else _plain_alpha(alpha)
        self.scaling = lora_scaling(self.r, self.lora_alpha, self.use_rslora)
        self.base = base
        base.requires_grad_(False)
        dtype, device = base.weight.dtype, base.weight.device
        self.lora_A = nn.Parameter(backend.to_device(init_lora_A(self.r, k, init, rng).astype(dtype), device))
        self.lora_B = nn.Parameter(backend.to_device(np.zeros((d, self.r), dtype=dtype), device))
        self.lora_dropout = nn.Dropout(float(dropout), rng=rng)
        self._w0: Any = None  # the original base weight array while merged, else None

    @property
    def merged(self) -> bool:
        """True while s·B A is folded into ``base.weight``."""
        return self._w0 is not None

    def delta_weight(self) -> Any:
        """ΔW = s · B A as a (d, k) array on the layer's device (no graph; for merging and analysis)."""
        return (self.lora_B.data @ self.lora_A.data) * self.scaling

    def merge(self) -> None:
        """W ← W0 + s·B A in ``base.weight``; a no-op when already merged.

        The original array W0 is kept (memory: one d×k array per merged layer), because undoing
        the addition is not exact: in floating point (W0 + ΔW) − ΔW ≠ W0 in general, since the sum
        is rounded to the nearest representable number and that rounding error cannot be
        subtracted back out.  In float32, (0.1 + 1.0) − 1.0 = 0.100000024: the sum 1.1 keeps only
        the precision of numbers near 1 (steps of 2^-23 ≈ 1.2e-7), so the low bits of 0.1 are lost.
        Keeping W0 makes ``unmerge()`` restore it bit for bit.
        """
        if self.merged:
            return
        weight = self.base.weight
        self._w0 = weight.data
        weight.data = weight.data + self.delta_weight().astype(weight.dtype)  # a new array: W0 untouched

    def unmerge(self) -> None:
        """Put the original W0 back into ``base.weight`` (bit for bit); a no-op when not merged."""
        if not self.merged:
            return
        weight, w0 = self.base.weight, self._w0
        if backend.device_of(w0) != weight.device:  # the module was moved with .to() while merged
            w0 = backend.to_device(backend.to_host(w0), weight.device)
        weight.data = w0 if w0.dtype == weight.dtype else w0.astype(weight.dtype)
        self._w0 = None

    def forward(self, x: Tensor) -> Tensor:
        """y = x W0^T + b + s · dropout(x) A^T B^T for x (..., k); y (..., d)."""
        if self.merged:
            if self.training and is_grad_enabled() and (self.lora_A.requires_grad or self.lora_B.requires_grad):
                raise RuntimeError(
                    "LoRALinear: forward in training mode with gradients enabled while the adapter is merged "
                    "into the base weight; A and B would silently get no gradient. Call unmerge() "
                    "(minilora.lora.unmerge_lora(model)) before training, or use model.eval() / no_grad() for inference"
                )
            return self.base(x)  # (..., d)   x W^T + b with W = W0 + s·B A: one matmul
        y = self.base(x)                      # (..., d)   x W0^T + b (W0 frozen: only dx is computed)
        h = self.lora_dropout(x)              # (..., k)
        h = F.linear(h, self.lora_A)          # (..., r)   A x: the rank-r bottleneck
        h = F.linear(h * self.scaling, self.lora_B)  # (..., d)   s · B (A x)
        return y + h                          # (..., d)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, r={self.r}, "
                f"alpha={self.lora_alpha}, scaling={self.scaling:.4g}, dropout={self.lora_dropout.p}, "
                f"init={self.init!r}, use_rslora={self.use_rslora}, merged={self.merged}")
