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

from minilora import backend, nn
from minilora import functional as F
from minilora.engine.tensor import Tensor, is_grad_enabled
from minilora.lora.variants.pissa import BASE_CHANGING_INITS, mutated_init
from minilora.validation import RngLike, as_rng, is_int, is_real

__all__ = ["LoraConfig", "MergeableLinear", "LoRALinear", "LoraAdapter", "AdapterDict", "lora_scaling", "init_lora_A",
           "INIT_LORA_WEIGHTS", "DEFAULT_ADAPTER"]

DEFAULT_ADAPTER = "default"
"""The name of the adapter that ``apply_lora`` creates and that lives in ``LoRALinear.lora_A`` / ``lora_B``
(PEFT's name for the first adapter).  Further named adapters: ``minilora.lora.multi``."""

INIT_LORA_WEIGHTS = (True, "gaussian", "pissa", "olora")
"""The values of ``init_lora_weights`` minilora implements, in PEFT's spelling: True (PEFT's default,
kaiming-uniform A), "gaussian" (A ~ N(0, 1/r²)), and "pissa" / "olora" (A, B from the SVD / QR of W0, the
base replaced by the residual: ``minilora.lora.variants.pissa``)."""


def _checked(owner: str, r: Any, lora_alpha: Any, lora_dropout: Any, init_lora_weights: Any,
             use_rslora: Any) -> tuple[int, int | float | None, float, bool | str, bool]:
    """The hyper-parameters as plain Python values (NumPy scalars are not JSON-serialisable, and an adapter
    config is written as JSON), or a ValueError naming ``owner`` and the first bad one.

    The one check behind ``LoraConfig`` and ``LoRALinear``; lora_alpha keeps its kind (int stays int).
    """
    if not is_int(r) or r < 1:
        raise ValueError(f"{owner}: r must be an integer >= 1, got {r!r}")
    if lora_alpha is not None and (not is_real(lora_alpha) or not math.isfinite(lora_alpha) or lora_alpha <= 0):
        raise ValueError(f"{owner}: lora_alpha must be a positive number (or None, meaning lora_alpha = r), "
                         f"got {lora_alpha!r}")
    if not is_real(lora_dropout) or not 0.0 <= lora_dropout < 1.0:
        raise ValueError(f"{owner}: lora_dropout must be a number in [0, 1), got {lora_dropout!r}")
    if isinstance(init_lora_weights, str) and init_lora_weights.startswith("pissa_niter_"):
        raise ValueError(f"{owner}: init_lora_weights={init_lora_weights!r} (PEFT's randomised fast SVD) is not "
                         "supported by minilora; use 'pissa' (the exact SVD)")
    if not any(init_lora_weights is v or (isinstance(v, str) and init_lora_weights == v) for v in INIT_LORA_WEIGHTS):
        raise ValueError(f"{owner}: init_lora_weights must be True (kaiming-uniform A, PEFT's default), "
                         f"'gaussian', 'pissa' or 'olora', got {init_lora_weights!r}")
    if not isinstance(use_rslora, (bool, np.bool_)):
        raise ValueError(f"{owner}: use_rslora must be True or False, got {use_rslora!r}")
    alpha = None if lora_alpha is None else int(lora_alpha) if is_int(lora_alpha) else float(lora_alpha)
    return int(r), alpha, float(lora_dropout), init_lora_weights, bool(use_rslora)


def lora_scaling(r: int, lora_alpha: float | None, use_rslora: bool = False) -> float:
    """The factor s in h = W0 x + s·B A x:  s = α / r,  or  s = α / sqrt(r) with rsLoRA  (α = r when None).

    α / r is the LoRA paper's choice, made so that α need not be retuned when r changes.  With α fixed it makes
    the update of a larger rank smaller (early in training ‖ΔW‖ falls about as 1/sqrt(r): tutorial 03 simulates
    it).  Kalajdzievski (2023, arXiv 2312.03732) shows that α / sqrt(r) ("rank-stabilised") keeps the update
    about the same size at every rank, so large ranks keep learning.
    """
    alpha = r if lora_alpha is None else lora_alpha
    return float(alpha) / (math.sqrt(r) if use_rslora else r)


@dataclass(frozen=True)
class LoraConfig:
    """Hyper-parameters of a LoRA adapter, with the names and meanings of PEFT's ``LoraConfig``.

    r                  rank of the update ΔW = B A (A: r×k, B: d×r).
    lora_alpha         α, the numerator of the scaling; None means α = r (scaling 1).
    lora_dropout       dropout probability on the LoRA path's input (training only).
    target_modules     module names to adapt: a Linear whose dotted name equals a target or ends
                       in ``"." + target`` is replaced (``"q_proj"`` matches ``blocks.3.attn.q_proj``).
    init_lora_weights  how A starts (B = 0 always): True, PEFT's default, kaiming-uniform
                       (A ~ U(-1/sqrt(k), 1/sqrt(k))); or ``"gaussian"`` (A ~ N(0, 1/r²)), the init
                       minilora's experiments and shipped numbers use.
                       ``"pissa"`` / ``"olora"``: A and B from the top-r SVD / QR of W0, the base weight
                       replaced by the residual (``minilora.lora.variants.pissa``).
    use_rslora         scaling α / sqrt(r) instead of α / r.
    use_dora           DoRA: W' = m ⊙ (W0 + s·B A) / ‖W0 + s·B A‖ with a trainable magnitude m per output
                       feature (``minilora.lora.variants.dora``).

    Checked once, here: a bad value is a ValueError naming it.  ``scaling`` is the s actually used.
    """

    r: int = 4
    lora_alpha: float | None = None
    lora_dropout: float = 0.0
    target_modules: tuple[str, ...] = ("q_proj", "v_proj")
    init_lora_weights: bool | str = True
    use_rslora: bool = False
    use_dora: bool = False

    def __post_init__(self) -> None:
        values = _checked("LoraConfig", self.r, self.lora_alpha, self.lora_dropout, self.init_lora_weights,
                          self.use_rslora)
        for name, value in zip(("r", "lora_alpha", "lora_dropout", "init_lora_weights", "use_rslora"), values):
            object.__setattr__(self, name, value)
        if not isinstance(self.use_dora, (bool, np.bool_)):
            raise ValueError(f"LoraConfig: use_dora must be True or False, got {self.use_dora!r}")
        object.__setattr__(self, "use_dora", bool(self.use_dora))
        if self.use_dora and self.init_lora_weights in BASE_CHANGING_INITS:
            raise ValueError(f"LoraConfig: use_dora=True with init_lora_weights={self.init_lora_weights!r} is not "
                             "supported by minilora; use one or the other")
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
    def scaling(self) -> float:
        """s = α / r (α / sqrt(r) with rsLoRA; α = r when lora_alpha is None), see ``lora_scaling``."""
        return lora_scaling(self.r, self.lora_alpha, self.use_rslora)


def init_lora_A(r: int, k: int, init_lora_weights: bool | str, rng: np.random.Generator) -> np.ndarray:
    """A host float64 array A (r, k) drawn from ``rng``.

    "gaussian": A_ij ~ N(0, σ²) with σ = 1/r — PEFT's ``init_lora_weights="gaussian"``.
    True:       kaiming-uniform with a = sqrt(5) on fan_in = k, as loralib and PEFT's default
                (``init_lora_weights=True``) do: gain = sqrt(2 / (1 + a²)) = sqrt(1/3),
                bound = gain · sqrt(3 / fan_in) = 1 / sqrt(k), so A_ij ~ U(-1/sqrt(k), 1/sqrt(k)).
    """
    if init_lora_weights == "gaussian":
        return rng.normal(0.0, 1.0 / r, (r, k))
    bound = 1.0 / math.sqrt(k)
    return rng.uniform(-bound, bound, (r, k))


class MergeableLinear(nn.Module):
    """A frozen ``base`` Linear plus an update that can be folded into its weight and taken out again bit for bit.

    A subclass defines ``delta_weight()`` (ΔW, a (d, k) array) and sets ``self._w0 = None`` in ``__init__``;
    ``merged_weight()`` is what ``merge()`` writes, W0 + ΔW (DoRA rescales it).  LoRA and VeRA layers share this.
    """

    _w0: Any  # the original base weight array while merged, else None

    @property
    def merged(self) -> bool:
        """True while the update is folded into ``base.weight``."""
        return self._w0 is not None

    @property
    def w0(self) -> Any:
        """W0, the base weight without the update: ``base.weight.data``, or while merged the original kept aside."""
        return self._w0 if self.merged else self.base.weight.data

    def delta_weight(self) -> Any:
        """ΔW, a (d, k) array on the layer's device (no graph)."""
        raise NotImplementedError

    def merged_weight(self) -> Any:
        """The weight ``merge()`` writes: W = W0 + ΔW (a new array: W0 untouched)."""
        weight = self.base.weight
        return weight.data + self.delta_weight().astype(weight.dtype)

    def merge(self) -> None:
        """W ← ``merged_weight()`` in ``base.weight``; a no-op when already merged.

        The original array W0 is kept (memory: one d×k array per merged layer), because undoing
        the addition is not exact: in floating point (W0 + ΔW) − ΔW ≠ W0 in general, since the sum
        is rounded to the nearest representable number and that rounding error cannot be
        subtracted back out.  In float32, (0.1 + 1.0) − 1.0 = 0.100000024: the sum 1.1 keeps only
        the precision of numbers near 1 (steps of 2^-23 ≈ 1.2e-7), so the low bits of 0.1 are lost.
        Keeping W0 makes ``unmerge()`` restore it bit for bit.
        """
        if self.merged:
            return
        if getattr(self.base, "is_quantized", False):  # a 4-bit base (minilora.quant.Linear4bit) cannot hold W0 + ΔW
            raise ValueError(f"{type(self).__name__}.merge: the base weight is stored in 4 bits (NF4); W0 + ΔW would "
                             "have to be re-quantised, losing part of the update. Keep the adapter unmerged, or use "
                             "minilora.quant.merge_and_requantize(model), which merges and reports the error")
        merged = self.merged_weight()
        self._w0 = self.base.weight.data
        self.base.weight.data = merged

    def unmerge(self) -> None:
        """Put the original W0 back into ``base.weight`` (bit for bit); a no-op when not merged."""
        if not self.merged:
            return
        weight, w0 = self.base.weight, self._w0
        if backend.device_of(w0) != weight.device:  # the module was moved with .to() while merged
            w0 = backend.to_device(backend.to_host(w0), weight.device)
        weight.data = w0 if w0.dtype == weight.dtype else w0.astype(weight.dtype)
        self._w0 = None


class LoraAdapter(nn.Module):
    """One extra named adapter of a LoRALinear (``minilora.lora.multi.add_adapter``): its own ``lora_A`` (r, k),
    ``lora_B`` (d, r), ``lora_dropout`` and scaling s = α / r (α / sqrt(r) with rsLoRA), so ΔW = s·B A.

    The default adapter is not one of these: it is the LoRALinear's own ``lora_A`` / ``lora_B`` (see
    ``LoRALinear.adapter``, which returns either kind through the same four names).
    """

    def __init__(self, a: Any, b: Any, lora_alpha: float, use_rslora: bool, lora_dropout: float,
                 rng: np.random.Generator):
        super().__init__()
        self.r = int(a.shape[0])
        self.lora_alpha, self.use_rslora = lora_alpha, bool(use_rslora)
        self.scaling = lora_scaling(self.r, lora_alpha, use_rslora)
        self.lora_A = nn.Parameter(a)   # (r, k)
        self.lora_B = nn.Parameter(b)   # (d, r)
        self.lora_dropout = nn.Dropout(lora_dropout, rng=rng)

    def extra_repr(self) -> str:
        return (f"r={self.r}, lora_alpha={self.lora_alpha}, scaling={self.scaling:.4g}, "
                f"lora_dropout={self.lora_dropout.p}")


class AdapterDict(nn.Module):
    """A LoRALinear's extra adapters by name (the registered children are the ``LoraAdapter`` modules, so their
    parameters are listed as ``<layer>.lora_adapters.<name>.lora_A``): ``d[name]``, ``name in d``, ``list(d)``,
    ``del d[name]``."""

    def __getitem__(self, name: str) -> LoraAdapter:
        return self._modules[name]

    def __setitem__(self, name: str, adapter: LoraAdapter) -> None:
        setattr(self, name, adapter)

    def __delitem__(self, name: str) -> None:
        delattr(self, name)

    def __contains__(self, name: object) -> bool:
        return name in self._modules

    def __iter__(self):
        return iter(list(self._modules))

    def __len__(self) -> int:
        return len(self._modules)


class LoRALinear(MergeableLinear):
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

    Several adapters (``minilora.lora.multi``): the default one is ``lora_A`` / ``lora_B`` as above; others live in
    ``lora_adapters`` (created when the first is added).  ``active_adapters`` (default ``("default",)``) are summed,
    y = x W0ᵀ + b + Σ_{a active} s_a · (x A_aᵀ) B_aᵀ, and ``disable_adapters = True`` gives the base layer alone.
    """

    def __init__(self, base: nn.Linear, r: int = 4, lora_alpha: float | None = None, lora_dropout: float = 0.0,
                 init_lora_weights: bool | str = True, use_rslora: bool = False, rng: RngLike = None):
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"LoRALinear wraps an nn.Linear, got {type(base).__name__}")
        r, lora_alpha, lora_dropout, init_lora_weights, use_rslora = _checked(
            "LoRALinear", r, lora_alpha, lora_dropout, init_lora_weights, use_rslora)
        d, k = base.out_features, base.in_features
        if r > min(d, k):
            raise ValueError(
                f"LoRALinear: r={r} is too large for a {d}x{k} weight (d = out_features, k = in_features); "
                f"expected 1 <= r <= min(d, k) = {min(d, k)}"
            )
        rng = as_rng(rng)
        self.in_features, self.out_features = k, d
        self.r, self.use_rslora, self.init_lora_weights = r, use_rslora, init_lora_weights
        self.lora_alpha = r if lora_alpha is None else lora_alpha   # α as used (a number, never None)
        self.scaling = lora_scaling(r, self.lora_alpha, use_rslora)
        self.base = base
        base.requires_grad_(False)
        dtype, device = base.weight.dtype, base.weight.device
        self.lora_A = nn.Parameter(backend.to_device(init_lora_A(r, k, init_lora_weights, rng).astype(dtype), device))
        self.lora_B = nn.Parameter(backend.to_device(np.zeros((d, r), dtype=dtype), device))
        self.lora_dropout = nn.Dropout(lora_dropout, rng=rng)
        self._w0: Any = None  # the original base weight array while merged, else None
        self.active_adapters: tuple[str, ...] = (DEFAULT_ADAPTER,)  # summed in forward (minilora.lora.multi)
        self.disable_adapters = False                                # True: forward is the base layer alone
        self.merged_adapters: tuple[str, ...] = ()                   # the adapters folded into base.weight
        self.initial_weights: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # (W0, A0, B0): PiSSA/OLoRA
        if init_lora_weights in BASE_CHANGING_INITS:
            self._init_from_base(init_lora_weights)

    def _init_from_base(self, init_lora_weights: str) -> None:
        """PiSSA / OLoRA: A, B from W0's SVD / QR (``variants.pissa``), base.weight ← W0 − s·B A."""
        weight = self.base.weight
        w0 = np.array(backend.to_host(weight.data), copy=True)
        a, b, residual = mutated_init(init_lora_weights, w0, self.r, self.scaling)
        for param, value in ((self.lora_A, a), (self.lora_B, b), (weight, residual)):
            param.data = backend.to_device(np.ascontiguousarray(value, dtype=weight.dtype), weight.device)
        self.initial_weights = (w0, np.array(backend.to_host(self.lora_A.data), copy=True),
                                np.array(backend.to_host(self.lora_B.data), copy=True))

    @classmethod
    def from_config(cls, base: nn.Linear, config: LoraConfig, rng: RngLike = None) -> "LoRALinear":
        """The layer ``apply_lora`` puts in place of ``base`` for ``config`` (its already-checked values)."""
        return cls(base, config.r, config.lora_alpha, config.lora_dropout, config.init_lora_weights,
                   config.use_rslora, rng=rng)

    @property
    def original_weight(self) -> Any:
        """The base weight before any adapter changed it: W0 as PiSSA / OLoRA found it (a host copy), else ``w0``."""
        return self.w0 if self.initial_weights is None else self.initial_weights[0]

    def delta_weight(self) -> Any:
        """ΔW = s · B A of the default adapter as a (d, k) array on the layer's device (no graph; for merging and
        analysis)."""
        return (self.lora_B.data @ self.lora_A.data) * self.scaling

    # -- several adapters (the model-level verbs are in minilora.lora.multi) ------------------------------------
    def adapter_names(self) -> list[str]:
        """Every adapter this layer holds: "default" (``lora_A`` / ``lora_B``) first, then the extra ones in the
        order they were added."""
        extra = self.__dict__.get("lora_adapters")
        return [DEFAULT_ADAPTER, *(extra if extra is not None else [])]

    def adapter(self, name: str) -> "LoRALinear | LoraAdapter":
        """The module holding adapter ``name``'s ``lora_A``, ``lora_B``, ``lora_dropout`` and ``scaling``: this layer
        itself for "default", else ``lora_adapters[name]``.  KeyError when the layer has no such adapter."""
        if name == DEFAULT_ADAPTER:
            return self
        extra = self.__dict__.get("lora_adapters")
        if extra is None or name not in extra:
            raise KeyError(name)
        return extra[name]

    def adapter_delta_weight(self, name: str) -> Any:
        """ΔW_a = s_a · B_a A_a of adapter ``name``, a (d, k) array (no graph)."""
        if name == DEFAULT_ADAPTER:
            return self.delta_weight()
        adapter = self.adapter(name)
        return (adapter.lora_B.data @ adapter.lora_A.data) * adapter.scaling

    def adapter_parameters(self) -> list[nn.Parameter]:
        """Every adapter's A and B (default first), for the merged-training check and ``lora_parameters``."""
        return [p for name in self.adapter_names() for p in (self.adapter(name).lora_A, self.adapter(name).lora_B)]

    def merged_weight(self) -> Any:
        """The weight ``merge()`` writes: W = W0 + Σ_{a active} ΔW_a (one term, W0 + s·B A, with the default alone)."""
        weight = self.base.weight
        merged = weight.data.copy() if not self._present(self.active_adapters) else weight.data  # a new array
        for name in self._present(self.active_adapters):
            merged = merged + self.adapter_delta_weight(name).astype(weight.dtype)
        return merged

    def merge(self) -> None:
        """Fold the active adapters into ``base.weight`` (``MergeableLinear.merge``) and record which they were."""
        names = self.merged_adapters if self.merged else tuple(self._present(self.active_adapters))
        super().merge()
        self.merged_adapters = names if self.merged else ()

    def unmerge(self) -> None:
        """W0 back into ``base.weight`` bit for bit (``MergeableLinear.unmerge``); no adapter is merged after."""
        super().unmerge()
        self.merged_adapters = ()

    def _present(self, names: tuple[str, ...]) -> list[str]:
        """The names among ``names`` that this layer holds (a layer skips an active adapter it does not have, as
        PEFT's layers do)."""
        held = self.adapter_names()
        return [name for name in names if name in held]

    def unload(self) -> nn.Linear:
        """Merge for good and return ``base``, a plain Linear holding W = W0 + s·B A (W0 is no longer kept)."""
        self.merge()
        self._w0 = None
        return self.base

    def forward(self, x: Tensor) -> Tensor:
        """y = x W0^T + b + s · dropout(x) A^T B^T for x (..., k); y (..., d).

        With several active adapters, y = x W0ᵀ + b + Σ_a s_a · dropout_a(x) A_aᵀ B_aᵀ; with ``disable_adapters``,
        y = x W0ᵀ + b (a layer merged meanwhile is unmerged first, as PEFT's forward does)."""
        if self.disable_adapters and self.merged:
            self.unmerge()
        if self.merged:
            if self.training and is_grad_enabled() and any(p.requires_grad for p in self.adapter_parameters()):
                raise RuntimeError(
                    "LoRALinear: forward in training mode with gradients enabled while the adapter is merged "
                    "into the base weight; A and B would silently get no gradient. Call unmerge() "
                    "(minilora.lora.unmerge_lora(model)) before training, or use model.eval() / no_grad() for inference"
                )
            return self.base(x)  # (..., d)   x W^T + b with W = W0 + s·B A: one matmul
        y = self.base(x)                      # (..., d)   x W0^T + b (W0 frozen: only dx is computed)
        if self.disable_adapters:             # inside minilora.lora.disable_adapter(model): the base model
            return y
        for name in self._present(self.active_adapters):  # ("default",) unless set_adapter chose others
            adapter = self.adapter(name)      # this layer for "default", else lora_adapters[name]
            h = adapter.lora_dropout(x)       # (..., k)
            h = F.linear(h, adapter.lora_A)   # (..., r)   A x: the rank-r bottleneck
            h = F.linear(h * adapter.scaling, adapter.lora_B)  # (..., d)   s · B (A x)
            y = y + h                         # (..., d)   several active adapters: their outputs summed
        return y

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, r={self.r}, "
                f"lora_alpha={self.lora_alpha}, scaling={self.scaling:.4g}, lora_dropout={self.lora_dropout.p}, "
                f"init_lora_weights={self.init_lora_weights!r}, use_rslora={self.use_rslora}, merged={self.merged}")
