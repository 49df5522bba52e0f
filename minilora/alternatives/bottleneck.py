"""Bottleneck adapters (Houlsby et al. 2019, arXiv 1902.00751; Lin et al. 2020, arXiv 2004.03829).

An adapter is a small residual MLP put after a sublayer of a frozen transformer:

    adapter(h) = h + W_up · gelu(W_down · h + b_down) + b_up       W_down: m×d, W_up: d×m,  m ≪ d

so it costs  2·d·m + m + d  numbers (two matrices and two biases).  W_up and b_up start at zero, so every
adapter starts as the identity and the adapted model computes exactly what the base computed (bit for bit:
h + 0 = h).  Placements:

    "houlsby"  two per block, after the attention output and after the MLP output (Houlsby et al.):
               x = x + adapter(attn(ln_1(x)));  x = x + adapter(mlp(ln_2(x)))
               2·L adapters:  |Θ| = 2·L·(2·d·m + m + d)
    "lin"      one per block, after the MLP output (Lin et al.):  L adapters, |Θ| = L·(2·d·m + m + d)

Only the adapters train; everything else, layer norms included, stays frozen (Houlsby et al. also train the
layer norms; we keep the count to the adapters alone, so it matches the formula).  Unlike LoRA's B A, an
adapter has a nonlinearity between its matrices, so it cannot be merged into W: it stays in the forward pass,
one more small sequential step per adapter, and that is the inference latency the LoRA paper's Table 1 measures
(``minilora latency``).

The adapters are inserted model-agnostically: the module at each name in ``target_modules`` (matched on the
last part of its dotted name, e.g. "attn" → ``blocks.0.attn``, ``blocks.1.attn``) is wrapped by an
``AdaptedModule`` that runs it, then its adapter.  d is the output width of the wrapped module (the
``out_features`` of its last Linear).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from minilora import backend, nn
from minilora import functional as F
from minilora.engine.tensor import Tensor
from minilora.validation import as_rng, is_int

__all__ = ["PLACEMENTS", "AdaptedModule", "AdapterConfig", "BottleneckAdapter", "adapter_layers",
           "adapter_param_count", "apply_adapters"]

# placement → the sublayers that get an adapter (by the last part of their module name in a GPT block)
PLACEMENTS: dict[str, tuple[str, ...]] = {"houlsby": ("attn", "mlp"), "lin": ("mlp",)}


@dataclass(frozen=True)
class AdapterConfig:
    """A bottleneck adapter's width m (``bottleneck``) and where adapters go (``placement``: "houlsby", "lin")."""

    bottleneck: int = 16
    placement: str = "houlsby"

    def __post_init__(self) -> None:
        if isinstance(self.bottleneck, bool) or not is_int(self.bottleneck) or self.bottleneck < 1:
            raise ValueError(f"adapter: bottleneck must be an integer >= 1, got {self.bottleneck!r}")
        if self.placement not in PLACEMENTS:
            raise ValueError(f"adapter: placement must be one of {', '.join(PLACEMENTS)}, got {self.placement!r}")

    @property
    def target_modules(self) -> tuple[str, ...]:
        """The sublayers that get an adapter: ("attn", "mlp") for houlsby, ("mlp",) for lin."""
        return PLACEMENTS[self.placement]


class BottleneckAdapter(nn.Module):
    """adapter(h) = h + up(gelu(down(h))): ``down`` d→m, ``up`` m→d with zero weight and bias at init (identity).

    Parameters: down.weight (m, d), down.bias (m), up.weight (d, m), up.bias (d): 2·d·m + m + d numbers.
    ``down`` starts like any Linear (U(−1/√d, 1/√d), drawn from ``rng`` on the host).
    """

    def __init__(self, d: int, bottleneck: int, rng: Any = None, dtype: Any = np.float32, device: str | None = None):
        super().__init__()
        if isinstance(bottleneck, bool) or not is_int(bottleneck) or bottleneck < 1:
            raise ValueError(f"BottleneckAdapter: bottleneck must be an integer >= 1, got {bottleneck!r}")
        self.down = nn.Linear(d, bottleneck, rng=as_rng(rng), dtype=dtype, device=device)
        self.up = nn.Linear(bottleneck, d, rng=as_rng(rng), dtype=dtype, device=device)
        for p in self.up.parameters():  # zero: the adapter starts as the identity
            p.data = backend.to_device(np.zeros(p.shape, dtype=dtype), p.device)

    def forward(self, h: Tensor) -> Tensor:
        return h + self.up(F.gelu(self.down(h)))   # (..., d)

    def extra_repr(self) -> str:
        return f"{self.down.in_features} -> {self.down.out_features} -> {self.up.out_features}"


class AdaptedModule(nn.Module):
    """A frozen ``base`` module followed by its ``adapter``: y = adapter(base(x))."""

    def __init__(self, base: nn.Module, adapter: BottleneckAdapter):
        super().__init__()
        self.base = base
        self.adapter = adapter

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.adapter(self.base(*args, **kwargs))  # (B, T, d)


def adapter_param_count(d_model: int, n_layers: int, bottleneck: int, placement: str = "houlsby") -> int:
    """Trainable numbers of bottleneck adapters in a transformer: n · (2·d·m + m + d), n = 2·L (houlsby) or L (lin)."""
    per_adapter = 2 * d_model * bottleneck + bottleneck + d_model
    return len(AdapterConfig(bottleneck, placement).target_modules) * n_layers * per_adapter


def _out_width(module: nn.Module, name: str) -> int:
    """The output width d of ``module``: the out_features of its last Linear."""
    linears = [m for _, m in module.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"adapter: module {name!r} has no Linear layer to read its output width from")
    return linears[-1].out_features


def adapter_layers(model: nn.Module) -> list[tuple[str, AdaptedModule]]:
    """(name, module) of every adapted sublayer of ``model``, in model order."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, AdaptedModule)]


def apply_adapters(model: nn.Module, config: AdapterConfig | None = None, seed: int = 0) -> nn.Module:
    """Freeze ``model`` and put a bottleneck adapter after each sublayer named in ``config.target_modules``.

    In place; returns the model.  Only the adapters train.  ``seed`` draws the down-projections (host RNG, the
    same on every device).  A model without any matching sublayer, or one that already has adapters, is refused.
    """
    config = config or AdapterConfig()
    if adapter_layers(model):
        raise ValueError("apply_adapters: the model already has bottleneck adapters")
    targets = [(name, m) for name, m in model.named_modules()
               if name.rsplit(".", 1)[-1] in config.target_modules]
    if not targets:
        raise ValueError(f"apply_adapters: no module named {' or '.join(config.target_modules)} in the model")
    model.requires_grad_(False)
    rng = np.random.default_rng(seed)
    dtype = next(model.parameters()).dtype
    for name, module in targets:
        adapter = BottleneckAdapter(_out_width(module, name), config.bottleneck, rng=rng, dtype=dtype,
                                    device=model.device)
        parent_name, _, child = name.rpartition(".")
        parent = dict(model.named_modules())[parent_name]
        setattr(parent, child, AdaptedModule(module, adapter))
    return model
