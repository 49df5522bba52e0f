"""VeRA: vector-based random matrix adaptation (Kopiczko et al. 2024, arXiv 2310.11454).

LoRA trains a pair A (r×k), B (d×r) in every adapted layer.  VeRA draws ONE random pair once, freezes it, and
shares it between all adapted layers; each layer trains only two vectors that scale it:

    h = W0 x + b + λ_b ⊙ ( B_d ( λ_d ⊙ ( A_k x ) ) )          ΔW = diag(λ_b) B_d diag(λ_d) A_k

A is (r, k_max) and B is (d_max, r), sized for the largest adapted layer; a layer with k inputs and d outputs
uses the slices A_k = A[:, :k] and B_d = B[:d, :] (as PEFT's ``vera_A[:, :in_features]``, ``vera_B[:out_features, :]``).
There is no scaling factor.  λ_d (r,) starts at ``d_initial`` and λ_b (d,) at 0, so the adapted model computes
exactly what the base computes at step 0.  Trainable numbers: Σ_layers (r + d_i), against LoRA's Σ r (d_i + k_i),
so VeRA affords a much larger r (PEFT's default is 256; r may exceed min(d, k)).

Names are PEFT's (``VeraConfig``, ``vera_A``, ``vera_B``, ``vera_lambda_b``, ``vera_lambda_d``) so that adapter files
are PEFT's.  PEFT draws A and B from a torch generator seeded with ``projection_prng_key``; NumPy cannot redraw
torch's numbers, so minilora draws its own (same distribution, see ``init_vera_projections``) and always saves
them in the file (``save_projection=True``): PEFT then loads minilora's projections, and minilora PEFT's.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from minilora import backend, nn
from minilora import functional as F
from minilora.engine.tensor import Tensor, is_grad_enabled
from minilora.lora.inject import (
    layers_of_type,
    lora_layers,
    match_targets,
    replace_module,
    require_layers_of_type,
)
from minilora.lora.layer import LoraConfig, MergeableLinear
from minilora.validation import RngLike, as_rng, is_int, is_real

__all__ = [
    "VeraConfig", "VeraLinear", "init_vera_projections", "apply_vera", "vera_layers", "vera_parameters",
    "merge_vera", "unmerge_vera", "vera_param_count", "vera_key", "VERA_A_KEY", "VERA_B_KEY",
    "vera_adapter_config", "vera_state_dict", "read_vera_config", "vera_expected_shapes", "load_vera_state",
]

VERA_A_KEY = "base_model.vera_A"
"""The shared A (r, k_max) in a PEFT VeRA file (``save_projection=True``); one per file, not per layer."""
VERA_B_KEY = "base_model.vera_B"
"""The shared B (d_max, r) in a PEFT VeRA file."""


def vera_key(module_name: str, vector: str) -> str:
    """PEFT's tensor name for vector "b" or "d" of the layer at ``module_name`` (no ".weight" suffix)."""
    return f"base_model.model.{module_name}.vera_lambda_{vector}"


@dataclass(frozen=True)
class VeraConfig:
    """Hyper-parameters of a VeRA adapter, with the names and meanings of PEFT's ``VeraConfig``.

    r                    rank of the shared projections (A: r×k_max, B: d_max×r); any r >= 1.
    target_modules       module names to adapt, matched as in ``LoraConfig`` (a name or its last components).
    projection_prng_key  seed of the shared A and B (NumPy's generator here; PEFT's torch generator gives
                         other numbers, which is why the file always holds them).
    save_projection      must be True: the file carries A and B (minilora cannot redraw PEFT's, nor PEFT minilora's).
    vera_dropout         dropout probability on the VeRA path's input (training only).
    d_initial            initial value of every λ_d entry (λ_b starts at 0); the paper recommends <= 0.1.
    """

    r: int = 256
    target_modules: tuple[str, ...] = ("q_proj", "v_proj")
    projection_prng_key: int = 0
    save_projection: bool = True
    vera_dropout: float = 0.0
    d_initial: float = 0.1

    def __post_init__(self) -> None:
        if not is_int(self.r) or self.r < 1:
            raise ValueError(f"VeraConfig: r must be an integer >= 1, got {self.r!r}")
        if not is_int(self.projection_prng_key) or self.projection_prng_key < 0:
            raise ValueError("VeraConfig: projection_prng_key must be an integer >= 0, got "
                             f"{self.projection_prng_key!r}")
        if self.save_projection is not True:
            raise ValueError(f"VeraConfig: save_projection must be True, got {self.save_projection!r}: minilora draws "
                             "vera_A and vera_B with NumPy, so the file must carry them (PEFT cannot redraw them)")
        if not is_real(self.vera_dropout) or not 0.0 <= self.vera_dropout < 1.0:
            raise ValueError(f"VeraConfig: vera_dropout must be a number in [0, 1), got {self.vera_dropout!r}")
        if not is_real(self.d_initial) or not math.isfinite(self.d_initial):
            raise ValueError(f"VeraConfig: d_initial must be a finite number, got {self.d_initial!r}")
        # the target rules and their error are LoraConfig's (one place); r=1 fits any layer
        targets = LoraConfig(r=1, target_modules=self.target_modules).target_modules
        for name, value in (("r", int(self.r)), ("projection_prng_key", int(self.projection_prng_key)),
                            ("vera_dropout", float(self.vera_dropout)), ("d_initial", float(self.d_initial)),
                            ("target_modules", targets)):
            object.__setattr__(self, name, value)


def _kaiming_uniform(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """U(-bound, bound) with bound = sqrt(3) · gain / sqrt(fan_in), gain = sqrt(2), fan_in = shape[1]: sqrt(6 /
    fan_in)."""
    bound = math.sqrt(6.0 / shape[1])
    return rng.uniform(-bound, bound, shape)


def init_vera_projections(r: int, k_max: int, d_max: int, projection_prng_key: int) -> tuple[np.ndarray, np.ndarray]:
    """The shared host float64 pair (A (r, k_max), B (d_max, r)), drawn in that order from
    ``numpy.random.default_rng(projection_prng_key)``.

    The distribution is PEFT's (its ``_kaiming_init``): kaiming-uniform with gain sqrt(2) on fan_in = the
    second dimension, A_ij ~ U(±sqrt(6 / k_max)) and B_ij ~ U(±sqrt(6 / r)).  The numbers are not PEFT's.
    """
    rng = np.random.default_rng(projection_prng_key)
    return _kaiming_uniform((r, k_max), rng), _kaiming_uniform((d_max, r), rng)


class VeraLinear(MergeableLinear):
    """A frozen Linear plus VeRA's scaled shared projections:  y = x W0^T + b + λ_b ⊙ ((λ_d ⊙ (x A_k^T)) B_d^T).

    ``base`` (the original ``nn.Linear``, frozen), ``vera_A`` (r, K ≥ k) and ``vera_B`` (D ≥ d, r): frozen
    Parameters SHARED with every other VeraLinear of the model (the same objects; ``named_parameters`` lists
    them once), ``vera_lambda_d`` (r,) = d_initial and ``vera_lambda_b`` (d,) = 0, the only trainable numbers.
    ``merge()`` folds ΔW = diag(λ_b) B_d diag(λ_d) A_k into the base weight; ``unmerge()`` restores W0 bit for
    bit (W0 is kept aside, as ``LoRALinear.merge`` explains).  A merged layer refuses a training forward with grad.
    """

    def __init__(self, base: nn.Linear, vera_A: nn.Parameter, vera_B: nn.Parameter, d_initial: float = 0.1,
                 vera_dropout: float = 0.0, rng: RngLike = None):
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"VeraLinear wraps an nn.Linear, got {type(base).__name__}")
        d, k = base.out_features, base.in_features
        if vera_A.ndim != 2 or vera_B.ndim != 2 or vera_A.shape[0] != vera_B.shape[1]:
            raise ValueError(f"VeraLinear: vera_A must be (r, K) and vera_B (D, r) with one r, got "
                             f"{vera_A.shape} and {vera_B.shape}")
        if vera_A.shape[1] < k or vera_B.shape[0] < d:
            raise ValueError(f"VeraLinear: projections vera_A {vera_A.shape}, vera_B {vera_B.shape} "
                             f"are too small for a {d}x{k} weight; "
                             f"expected vera_A (r, K >= {k}) and vera_B (D >= {d}, r)")
        r = vera_A.shape[0]
        self.in_features, self.out_features, self.r = k, d, r
        self.base = base
        base.requires_grad_(False)
        vera_A.requires_grad_(False)
        vera_B.requires_grad_(False)
        self.vera_A, self.vera_B = vera_A, vera_B
        dtype, device = base.weight.dtype, base.weight.device
        self.vera_lambda_d = nn.Parameter(backend.to_device(np.full(r, d_initial, dtype=dtype), device))
        self.vera_lambda_b = nn.Parameter(backend.to_device(np.zeros(d, dtype=dtype), device))
        self.vera_dropout = nn.Dropout(vera_dropout, rng=rng)
        self._w0: Any = None  # the original base weight array while merged, else None

    def delta_weight(self) -> Any:
        """ΔW = diag(λ_b) B_d diag(λ_d) A_k = (λ_b[:, None] · B_d) @ (λ_d[:, None] · A_k), (d, k), no graph."""
        a = self.vera_A.data[:, :self.in_features] * self.vera_lambda_d.data[:, None]    # (r, k)
        b = self.vera_B.data[:self.out_features, :] * self.vera_lambda_b.data[:, None]   # (d, r)
        return b @ a

    def forward(self, x: Tensor) -> Tensor:
        """y = x W0^T + b + λ_b ⊙ (λ_d ⊙ (dropout(x) A_k^T)) B_d^T for x (..., k); y (..., d)."""
        trains = self.vera_lambda_b.requires_grad or self.vera_lambda_d.requires_grad
        if self.merged:
            if self.training and is_grad_enabled() and trains:
                raise RuntimeError(
                    "VeraLinear: forward in training mode with gradients enabled while the adapter is merged into "
                    "the base weight; λ_b and λ_d would silently get no gradient. Call unmerge() "
                    "(minilora.lora.unmerge_vera(model)) before training, or use model.eval() / no_grad() for inference"
                )
            return self.base(x)                                  # (..., d)   x W^T + b with W = W0 + ΔW
        y = self.base(x)                                         # (..., d)   x W0^T + b
        h = self.vera_dropout(x)                                 # (..., k)
        h = F.linear(h, self.vera_A[:, :self.in_features])       # (..., r)   A_k x   (A frozen: no gradient)
        h = F.linear(h * self.vera_lambda_d, self.vera_B[:self.out_features, :])  # (..., d)   B_d (λ_d ⊙ A_k x)
        return y + h * self.vera_lambda_b                        # (..., d)   + λ_b ⊙ (...)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, r={self.r}, "
                f"vera_dropout={self.vera_dropout.p}, merged={self.merged}")


def vera_layers(model: nn.Module) -> list[tuple[str, VeraLinear]]:
    """(dotted name, VeraLinear) for every VeRA layer in ``model``, in model order."""
    return layers_of_type(model, VeraLinear)


def _require_vera_layers(model: nn.Module, what: str) -> list[tuple[str, VeraLinear]]:
    return require_layers_of_type(model, VeraLinear, what, "VeRA", "apply_vera")


def vera_parameters(model: nn.Module) -> Iterator[nn.Parameter]:
    """The trainable vectors (each layer's vera_lambda_d, then vera_lambda_b): all that VeRA trains."""
    for _, layer in vera_layers(model):
        yield layer.vera_lambda_d
        yield layer.vera_lambda_b


def vera_param_count(model: nn.Module, config: VeraConfig) -> int:
    """Trainable numbers ``apply_vera(model, config)`` adds: Σ_layers (r + d_i), d_i = out_features.

    (The shared A and B, r·k_max + d_max·r numbers, are frozen and stored once.)
    """
    return sum(config.r + linear.out_features
               for _, linear in match_targets(model, config.target_modules, "vera_param_count"))


def apply_vera(model: nn.Module, config: VeraConfig | None = None, seed: RngLike = 0) -> nn.Module:
    """Adapt ``model`` in place: every Linear named by ``config.target_modules`` becomes a VeraLinear.

    One shared pair A (r, k_max), B (d_max, r) is drawn from ``config.projection_prng_key``
    (``init_vera_projections``; k_max, d_max = the largest in/out features of the targets) on the first
    target's device, in its dtype.  Every other parameter is frozen, so only the λ vectors train:
    Σ_layers (r + d_i) numbers.  ``seed`` drives the dropout masks.  The config is kept as
    ``model.vera_config``.  Returns ``model``.  Nothing changes when an error is raised (a target that matches
    no Linear, a model that already has LoRA or VeRA layers).
    """
    config = config if config is not None else VeraConfig()
    if not isinstance(model, nn.Module):
        raise TypeError(f"apply_vera expects an nn.Module, got {type(model).__name__}")
    if not isinstance(config, VeraConfig):
        raise TypeError(f"apply_vera expects a VeraConfig, got {type(config).__name__}")
    existing = [name or "<model>" for name, _ in [*vera_layers(model), *lora_layers(model)]]
    if existing:
        raise ValueError(f"apply_vera: {type(model).__name__} already has adapter layers ({', '.join(existing[:4])}"
                         f"{', ...' if len(existing) > 4 else ''}); use a fresh model")
    targets = match_targets(model, config.target_modules, "apply_vera")
    k_max = max(linear.in_features for _, linear in targets)
    d_max = max(linear.out_features for _, linear in targets)
    first = targets[0][1].weight
    vera_A, vera_B = (nn.Parameter(backend.to_device(p.astype(first.dtype), first.device), requires_grad=False)
                      for p in init_vera_projections(config.r, k_max, d_max, config.projection_prng_key))
    rng = as_rng(seed)
    model.requires_grad_(False)
    for name, linear in targets:
        layer = VeraLinear(linear, vera_A, vera_B, config.d_initial, config.vera_dropout, rng=rng)
        layer.train(model.training)
        replace_module(model, name, layer)
    model.vera_config = config  # a plain attribute (not a parameter): what save_adapter writes
    return model


def merge_vera(model: nn.Module) -> nn.Module:
    """Merge every VeRA layer, W ← W0 + diag(λ_b) B_d diag(λ_d) A_k; returns ``model``."""
    for _, layer in _require_vera_layers(model, "merge_vera"):
        layer.merge()
    return model


def unmerge_vera(model: nn.Module) -> nn.Module:
    """Undo ``merge_vera``: every base weight is W0 again, bit for bit; returns ``model``."""
    for _, layer in _require_vera_layers(model, "unmerge_vera"):
        layer.unmerge()
    return model


# -- adapter files (minilora.lora.adapters writes and reads them; these are the VeRA-specific parts) -----------

def vera_adapter_config(model: nn.Module, base_model_name_or_path: str | None = None,
                        task_type: str | None = None) -> dict[str, Any]:
    """The ``adapter_config.json`` dictionary of ``model``'s VeRA adapter, with PEFT's keys (sorted)."""
    _require_vera_layers(model, "save_adapter")
    config = model.__dict__.get("vera_config")
    if not isinstance(config, VeraConfig):
        raise ValueError("save_adapter: the model has VeRA layers but no vera_config; adapt it with apply_vera")
    return {
        "auto_mapping": None,
        "base_model_name_or_path": base_model_name_or_path,
        "bias": "none",
        "d_initial": config.d_initial,
        "fan_in_fan_out": False,
        "inference_mode": True,
        "init_weights": True,
        "layers_pattern": None,
        "layers_to_transform": None,
        "modules_to_save": None,
        "peft_type": "VERA",
        "projection_prng_key": config.projection_prng_key,
        "r": config.r,
        "revision": None,
        "save_projection": True,
        "target_modules": list(config.target_modules),
        "task_type": task_type,
        "vera_dropout": config.vera_dropout,
    }


def vera_state_dict(model: nn.Module) -> dict[str, np.ndarray]:
    """PEFT tensor name → C-contiguous host copy: every layer's λ_b (d,) and λ_d (r,), and the shared A and B once."""
    layers = _require_vera_layers(model, "save_adapter")
    if any(not name for name, _ in layers):
        raise ValueError("save_adapter: the model is a bare VeraLinear; adapters are saved from a "
                         "model that contains it")
    arrays = {}
    for name, layer in layers:
        arrays[vera_key(name, "b")] = np.ascontiguousarray(backend.to_host(layer.vera_lambda_b.data)).copy()
        arrays[vera_key(name, "d")] = np.ascontiguousarray(backend.to_host(layer.vera_lambda_d.data)).copy()
    shared = layers[0][1]
    arrays[VERA_A_KEY] = np.ascontiguousarray(backend.to_host(shared.vera_A.data)).copy()
    arrays[VERA_B_KEY] = np.ascontiguousarray(backend.to_host(shared.vera_B.data)).copy()
    return arrays


def read_vera_config(cfg: Mapping[str, Any], path: Any) -> VeraConfig:
    """The VeraConfig of an ``adapter_config.json`` dictionary with peft_type "VERA" (read from ``path``), or a
    one-line ValueError naming ``path`` and what minilora cannot do (e.g. ``save_projection: false``)."""
    if cfg.get("save_projection", True) is not True:
        raise ValueError(f"{path}: save_projection={cfg['save_projection']!r} is not supported by minilora (the file "
                         "lacks vera_A and vera_B, which only PEFT's torch generator can redraw); save with "
                         "save_projection=True")
    for key, plain in (("bias", "none"), ("fan_in_fan_out", False)):
        if cfg.get(key, plain) not in (plain, None):
            raise ValueError(f"{path}: {key}={cfg[key]!r} is not supported by minilora (only {plain!r})")
    for key in ("modules_to_save", "layers_to_transform", "layers_pattern"):
        if cfg.get(key):
            raise ValueError(f"{path}: {key}={cfg[key]!r} is not supported by minilora (a PEFT feature minilora "
                             "does not implement)")
    targets = cfg.get("target_modules")
    if not isinstance(targets, list):
        raise ValueError(f"{path}: target_modules={targets!r} is not supported by minilora (expected a list of "
                         "module names; PEFT reads a string as a regex)")
    try:
        return VeraConfig(r=cfg.get("r", 256), target_modules=tuple(targets),
                          projection_prng_key=cfg.get("projection_prng_key", 0),
                          vera_dropout=cfg.get("vera_dropout", 0.0) or 0.0, d_initial=cfg.get("d_initial", 0.1))
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None


def vera_expected_shapes(model: nn.Module, config: VeraConfig) -> dict[str, tuple[int, ...]]:
    """Tensor name → shape of the file ``config`` gives on ``model`` (bare, or already adapted with its r)."""
    layers = vera_layers(model)
    if layers:
        if any(layer.r != config.r for _, layer in layers):
            raise ValueError(f"adapter has r={config.r} but the model's VeRA layers have r={layers[0][1].r}")
        shapes = [(name, layer.out_features, layer.in_features) for name, layer in layers]
        k_max, d_max = layers[0][1].vera_A.shape[1], layers[0][1].vera_B.shape[0]
    else:
        shapes = [(name, linear.out_features, linear.in_features)
                  for name, linear in match_targets(model, config.target_modules, "load_adapter")]
        k_max, d_max = max(k for _, _, k in shapes), max(d for _, d, _ in shapes)
    expected = {VERA_A_KEY: (config.r, k_max), VERA_B_KEY: (d_max, config.r)}
    for name, d, _ in shapes:
        expected[vera_key(name, "b")], expected[vera_key(name, "d")] = (d,), (config.r,)
    return expected


def load_vera_state(model: nn.Module, config: VeraConfig, arrays: Mapping[str, np.ndarray],
                    seed: RngLike = 0) -> nn.Module:
    """Copy a checked VeRA state (``vera_expected_shapes``) into ``model``, applying VeRA first on a bare model.

    The shared A and B are replaced by the file's (in place, so every layer sees them); merged layers stay merged.
    """
    if not vera_layers(model):
        apply_vera(model, config, seed=seed)
    layers = vera_layers(model)
    merged = [layer for _, layer in layers if layer.merged]
    for layer in merged:
        layer.unmerge()
    shared = layers[0][1]
    targets = [(shared.vera_A, VERA_A_KEY), (shared.vera_B, VERA_B_KEY)]
    for name, layer in layers:
        targets += [(layer.vera_lambda_b, vera_key(name, "b")), (layer.vera_lambda_d, vera_key(name, "d"))]
    for param, key in targets:
        host = np.ascontiguousarray(arrays[key], dtype=param.dtype)
        param.data = backend.to_device(host.copy(), param.device)
    for layer in merged:
        layer.merge()
    return model
