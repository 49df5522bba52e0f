"""Putting LoRA layers into a model, merging them, and taking them out again.

Works on any ``nn.Module``: target Linears are found by their dotted module names (as listed by
``model.named_modules()``), replaced in place on their parent module, and everything else is frozen.
"""

from __future__ import annotations

from typing import Any, Iterator

from minilora import nn
from minilora.lora.layer import LoraConfig, LoRALinear, MergeableLinear
from minilora.lora.variants.dora import DoraLinear
from minilora.validation import as_rng

__all__ = [
    "apply_lora", "lora_layers", "require_lora_layers", "lora_parameters", "merge_lora", "unmerge_lora",
    "merge_and_unload", "find_targets", "match_targets", "replace_module",
]


def _matches(name: str, target: str) -> bool:
    """PEFT's rule: a target matches a module whose dotted name is the target or ends in "." + target."""
    return name == target or name.endswith("." + target)


def _short_list(names: list[str], limit: int = 24) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def match_targets(model: nn.Module, target_modules: tuple[str, ...] | list[str],
                  what: str = "apply_lora") -> list[tuple[str, nn.Linear]]:
    """(name, Linear) of every Linear whose dotted name matches one of ``target_modules``, in model order.

    ValueError (its message starts with ``what``, the caller) when a target matches no Linear (listing the
    Linear names that exist) or when one Linear object sits under two names.  No rank check: see ``find_targets``.
    """
    modules = list(model.named_modules())
    linears = [(name, m) for name, m in modules if name and isinstance(m, nn.Linear)]
    chosen = [(name, m) for name, m in linears if any(_matches(name, t) for t in target_modules)]
    for target in target_modules:
        if any(_matches(name, target) for name, _ in linears):
            continue
        others = [f"{name} ({type(m).__name__})" for name, m in modules if name and _matches(name, target)]
        not_linear = f"; it matches only modules that are not Linear: {', '.join(others)}" if others else ""
        suffixes = sorted({name.rsplit(".", 1)[-1] for name, _ in linears})
        raise ValueError(
            f"{what}: target module {target!r} matches no Linear layer of {type(model).__name__}{not_linear}. "
            f"Linear layers (names end in {suffixes}): {_short_list([n for n, _ in linears]) or 'none'}"
        )
    seen: dict[int, str] = {}
    for name, linear in chosen:
        if id(linear) in seen:
            raise ValueError(f"{what}: {name} and {seen[id(linear)]} are the same Linear object; "
                             "a shared layer cannot get two adapters")
        seen[id(linear)] = name
    return chosen


def find_targets(model: nn.Module, config: LoraConfig) -> list[tuple[str, nn.Linear]]:
    """(name, Linear) of every layer ``apply_lora(model, config)`` would adapt, checked, in model order.

    ValueError when a target matches no Linear (listing the Linear names that exist), when a
    matched layer is too small for rank r, or when one Linear object sits under two names.
    """
    chosen = match_targets(model, config.target_modules)
    for name, linear in chosen:
        d, k = linear.out_features, linear.in_features
        if config.r > min(d, k):
            raise ValueError(
                f"apply_lora: r={config.r} is too large for {name}, a {d}x{k} weight "
                f"(d = out_features, k = in_features); expected r <= min(d, k) = {min(d, k)}"
            )
    return chosen


def layers_of_type(model: nn.Module, layer_type: type) -> list[tuple[str, Any]]:
    """(dotted name, module) for every module of ``layer_type`` in ``model``, in model order."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, layer_type)]


def require_layers_of_type(model: nn.Module, layer_type: type, what: str, kind: str,
                           apply: str) -> list[tuple[str, Any]]:
    """``layers_of_type(model, layer_type)``, or a ValueError naming ``what`` (the caller) when the model has none:
    "<what>: GPT has no <kind> layers; call <apply>(model, config) first"."""
    layers = layers_of_type(model, layer_type)
    if not layers:
        raise ValueError(f"{what}: {type(model).__name__} has no {kind} layers; call {apply}(model, config) first")
    return layers


def lora_layers(model: nn.Module) -> list[tuple[str, LoRALinear]]:
    """(dotted name, LoRALinear) for every LoRA layer in ``model``, in model order."""
    return layers_of_type(model, LoRALinear)


def require_lora_layers(model: nn.Module, what: str) -> list[tuple[str, LoRALinear]]:
    """``lora_layers(model)``, or a ValueError naming ``what`` (the caller) when the model has none."""
    return require_layers_of_type(model, LoRALinear, what, "LoRA", "apply_lora")


def lora_parameters(model: nn.Module) -> Iterator[nn.Parameter]:
    """The adapter's parameters (each layer's lora_A, then lora_B, then DoRA's lora_magnitude_vector, then the A and
    B of any further named adapter, ``minilora.lora.multi``): all that LoRA trains."""
    for _, layer in lora_layers(model):
        yield layer.lora_A
        yield layer.lora_B
        if isinstance(layer, DoraLinear):
            yield layer.lora_magnitude_vector
        yield from layer.adapter_parameters()[2:]  # the extra adapters' (A, B) pairs; none for one adapter


def replace_module(model: nn.Module, name: str, new: nn.Module) -> None:
    """Swap the sub-module at dotted path ``name`` for ``new`` (setattr on its parent)."""
    parent_name, _, attr = name.rpartition(".")
    parent = dict(model.named_modules())[parent_name]
    setattr(parent, attr, new)  # nn.ModuleList accepts "0", "1", ... as attribute names


def apply_lora(model: nn.Module, config: LoraConfig | None = None, seed: int = 0) -> nn.Module:
    """Adapt ``model`` in place: every Linear named by ``config.target_modules`` becomes a LoRALinear
    (a DoraLinear with ``config.use_dora``).

    All other parameters are frozen (``requires_grad = False``), so only the lora_A / lora_B
    matrices (and DoRA's magnitudes) train: Σ r(d_i + k_i) numbers instead of Σ d_i k_i.  A matrices are drawn, layer
    after layer in model order, from ``numpy.random.default_rng(seed)``.  The config is kept as
    ``model.lora_config`` (``save_adapter`` writes it).  Returns ``model``.

    Nothing is changed when an error is raised: a target that matches nothing (ValueError listing
    the Linear layers that exist), r > min(d, k) for a matched layer, LoRA already applied, or a model
    already adapted by another method (VeRA).  Further named adapters: ``minilora.lora.multi.add_adapter``.
    """
    config = config if config is not None else LoraConfig()
    if not isinstance(model, nn.Module):
        raise TypeError(f"apply_lora expects an nn.Module, got {type(model).__name__}")
    if not isinstance(config, LoraConfig):
        raise TypeError(f"apply_lora expects a LoraConfig, got {type(config).__name__}")
    existing = [name or "<model>" for name, _ in lora_layers(model)]
    if existing:
        raise ValueError(
            f"apply_lora: {type(model).__name__} already has LoRA layers ({_short_list(existing, 4)}); "
            "applying twice would stack adapters. Use a fresh model, or merge_and_unload(model) first"
        )
    others = [f"{name or '<model>'} ({type(m).__name__})" for name, m in model.named_modules()
              if isinstance(m, MergeableLinear) and not isinstance(m, LoRALinear)]
    if others:  # VeRA (or another MergeableLinear kind): one model holds one kind of adapter
        raise ValueError(f"apply_lora: {type(model).__name__} already has adapter layers of another kind "
                         f"({_short_list(others, 4)}); expected a model without adapters (use a fresh model)")
    targets = find_targets(model, config)
    rng = as_rng(seed)
    model.requires_grad_(False)
    for name, linear in targets:
        layer = (DoraLinear if config.use_dora else LoRALinear).from_config(linear, config, rng=rng)
        layer.train(model.training)
        replace_module(model, name, layer)
    model.lora_config = config  # a plain attribute (not a parameter): what save_adapter writes
    return model


def merge_lora(model: nn.Module) -> nn.Module:
    """Merge every LoRA layer, W ← W0 + s·B A (W0 + Σ_a s_a·B_a A_a over the active adapters; see
    ``LoRALinear.merge``); returns ``model``.

    A merged model computes the same outputs with one matmul per layer (no extra latency).
    Train only after ``unmerge_lora``: a merged layer refuses a training-mode forward with grad.
    """
    for _, layer in require_lora_layers(model, "merge_lora"):
        layer.merge()
    return model


def unmerge_lora(model: nn.Module) -> nn.Module:
    """Undo ``merge_lora``: every base weight is W0 again, bit for bit; returns ``model``."""
    for _, layer in require_lora_layers(model, "unmerge_lora"):
        layer.unmerge()
    return model


def merge_and_unload(model: nn.Module) -> nn.Module:
    """Merge every LoRA layer (its active adapters) and put its (now merged) base Linear back in its place; returns
    ``model``.

    The result is a plain model again (e.g. a GPT whose ``state_dict`` loads without minilora.lora),
    with W = W0 + s·B A in each adapted layer.  This cannot be undone.  Parameters stay frozen:
    call ``model.requires_grad_(True)`` to train further.
    """
    for name, layer in require_lora_layers(model, "merge_and_unload"):
        if not name:
            raise ValueError("merge_and_unload: the model is itself a LoRALinear; use layer.merge() and layer.base")
        replace_module(model, name, layer.unload())
    for attr in ("lora_config", "lora_adapter_configs"):  # the adapters' configs (minilora.lora.multi)
        if attr in model.__dict__:
            delattr(model, attr)
    return model
