"""Several LoRA adapters on one model, with PEFT's verbs: add, set, disable, delete, ``add_weighted_adapter``.

    model = apply_lora(model, LoraConfig(r=4))                  # the first adapter, named "default"
    add_adapter(model, "french", LoraConfig(r=8))               # a second one, frozen and inactive until set
    set_adapter(model, "french")                                # forward uses W0 + ΔW_french (and it trains)
    set_adapter(model, ["default", "french"])                   # both: y = W0 x + ΔW_default x + ΔW_french x
    with disable_adapter(model): ...                            # the base model alone: y = W0 x
    add_weighted_adapter(model, ["default", "french"], [0.7, 0.3], "mix", combination_type="cat")
    delete_adapter(model, "french")

How they are stored (the choice, and why).  PEFT keeps every adapter of a layer in dictionaries keyed by name,
``lora_A["default"]``, so its tensors are named ``q_proj.lora_A.default.weight``.  minilora's ``LoRALinear`` was
written for one adapter and its names (``q_proj.lora_A``, ``q_proj.lora_B``) are what every checkpoint, test and
notebook knows, so the first adapter stays exactly there: a model that never calls these functions is byte for
byte the model it always was.  Every *further* adapter is a small ``LoraAdapter`` module (its own ``lora_A``,
``lora_B``, ``lora_dropout``, ``scaling``) kept by name in the layer's ``lora_adapters`` (an ``AdapterDict``,
created when the first extra adapter arrives and removed when the last one is deleted), so its parameters read
``q_proj.lora_adapters.french.lora_A``.  ``layer.adapter(name)`` returns either kind through the same four
names, and the forward is one loop over the active names:

    y = x W0ᵀ + b + Σ_{a ∈ active} s_a · dropout_a(x) A_aᵀ B_aᵀ            (nothing added while disabled)

The model keeps the configs: ``model.lora_config`` (the default's, as before) and ``model.lora_adapter_configs``
(name → LoraConfig of the others).  Files: ``save_adapter`` writes the default at the folder's root and each other
adapter in a subfolder named after it, each a plain PEFT adapter folder, as PEFT's ``save_pretrained`` does.

Where minilora differs from PEFT, on purpose (each refused with one line): "default" cannot be deleted (it is the
layer's own lora_A / lora_B); adding a name that exists is an error (PEFT's ``add_weighted_adapter`` silently does
nothing); extra adapters go only on layers the default adapter adapts, and not with DoRA or PiSSA / OLoRA (those
change one shared base weight or norm); ``add_weighted_adapter`` implements "svd", "cat" and "linear" only.
"""

from __future__ import annotations

import dataclasses
import math
import re
import warnings
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import numpy as np

from minilora import backend, nn
from minilora.lora.inject import require_lora_layers
from minilora.lora.layer import DEFAULT_ADAPTER, AdapterDict, LoraAdapter, LoraConfig, LoRALinear, init_lora_A
from minilora.lora.variants.dora import DoraLinear
from minilora.lora.variants.pissa import BASE_CHANGING_INITS
from minilora.validation import as_rng, is_real

__all__ = [
    "adapter_configs", "active_adapters", "add_adapter", "set_adapter", "disable_adapter", "delete_adapter",
    "add_weighted_adapter", "combine_cat", "combine_svd", "combine_linear", "check_plain_adapter",
    "layers_for_adapter", "COMBINATION_TYPES", "PEFT_ONLY_COMBINATION_TYPES",
]

COMBINATION_TYPES = ("svd", "cat", "linear")
"""The ``combination_type`` values ``add_weighted_adapter`` implements."""
PEFT_ONLY_COMBINATION_TYPES = ("ties", "ties_svd", "dare_ties", "dare_linear", "dare_ties_svd", "dare_linear_svd",
                               "magnitude_prune", "magnitude_prune_svd")
"""PEFT's other combination types (pruning / sign-election merges): refused with one line."""

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")


def adapter_configs(model: nn.Module) -> dict[str, LoraConfig]:
    """Name → LoraConfig of every adapter of ``model``: "default" (``model.lora_config``) first, then the others in
    the order they were added.  ValueError when the model has no LoRA layers."""
    require_lora_layers(model, "adapter_configs")
    configs: dict[str, LoraConfig] = {}
    default = model.__dict__.get("lora_config")
    if isinstance(default, LoraConfig):
        configs[DEFAULT_ADAPTER] = default
    else:  # a model whose LoRA layers were put in by hand: the default adapter still exists in every layer
        first = require_lora_layers(model, "adapter_configs")[0][1]
        configs[DEFAULT_ADAPTER] = LoraConfig(r=first.r, lora_alpha=first.lora_alpha, use_rslora=first.use_rslora,
                                              target_modules=_last_names(model, DEFAULT_ADAPTER))
    configs.update(model.__dict__.get("lora_adapter_configs", {}))
    return configs


def _last_names(model: nn.Module, name: str) -> tuple[str, ...]:
    return tuple(sorted({path.rsplit(".", 1)[-1] for path, layer in require_lora_layers(model, "adapter_configs")
                         if name in layer.adapter_names()}))


def active_adapters(model: nn.Module) -> tuple[str, ...]:
    """The names ``set_adapter`` made active (("default",) until it is called)."""
    return require_lora_layers(model, "active_adapters")[0][1].active_adapters


def _unknown(what: str, name: Any, configs: dict[str, LoraConfig]) -> ValueError:
    return ValueError(f"{what}: no adapter named {name!r}; the model's adapters are {list(configs)}")


def _names(what: str, names: str | Sequence[str], configs: dict[str, LoraConfig]) -> tuple[str, ...]:
    """``names`` (one name or a list) as a tuple of known, distinct adapter names, or a one-line ValueError."""
    names = (names,) if isinstance(names, str) else tuple(names)
    if not names:
        raise ValueError(f"{what}: expected at least one adapter name, got none; the model's adapters are "
                         f"{list(configs)}")
    for name in names:
        if name not in configs:
            raise _unknown(what, name, configs)
    if len(set(names)) != len(names):
        raise ValueError(f"{what}: adapter names repeat in {list(names)}")
    return names


def _check_new_name(what: str, name: Any, configs: dict[str, LoraConfig]) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name) or hasattr(AdapterDict(), name):
        raise ValueError(f"{what}: adapter name must be letters, digits, '_' or '-' (it names a folder and a "
                         f"module), got {name!r}")
    if name in configs:
        raise ValueError(f"{what}: the model already has an adapter named {name!r}; delete_adapter(model, {name!r}) "
                         "first or choose another name")
    return name


def layers_for_adapter(model: nn.Module, config: LoraConfig, what: str) -> list[tuple[str, LoRALinear]]:
    """The LoRA layers an extra adapter with ``config`` goes on: every LoRA layer whose name matches a target.

    ValueError when a target matches no LoRA layer (extra adapters go only where the default adapter is) or a
    layer is too small for rank r."""
    layers = require_lora_layers(model, what)
    chosen = []
    for name, layer in layers:
        if any(name == t or name.endswith("." + t) for t in config.target_modules):
            chosen.append((name, layer))
    for target in config.target_modules:
        if not any(name == target or name.endswith("." + target) for name, _ in layers):
            raise ValueError(f"{what}: target module {target!r} matches no LoRA layer; minilora adds further "
                             f"adapters only to layers the default adapter adapts ({_suffixes(layers)})")
    for name, layer in chosen:
        if config.r > min(layer.out_features, layer.in_features):
            raise ValueError(f"{what}: r={config.r} is too large for {name}, a {layer.out_features}x"
                             f"{layer.in_features} weight; expected r <= {min(layer.out_features, layer.in_features)}")
    return chosen


def _suffixes(layers: list[tuple[str, LoRALinear]]) -> str:
    return ", ".join(sorted({name.rsplit(".", 1)[-1] for name, _ in layers}))


def check_plain_adapter(what: str, model: nn.Module, config: LoraConfig) -> None:
    """One line refusing what minilora's extra adapters do not implement: DoRA, PiSSA / OLoRA."""
    if config.use_dora or any(isinstance(layer, DoraLinear) for _, layer in require_lora_layers(model, what)):
        raise ValueError(f"{what}: several adapters with DoRA (use_dora=True) are not supported by minilora; "
                         "expected plain LoRA adapters")
    if config.init_lora_weights in BASE_CHANGING_INITS:
        raise ValueError(f"{what}: init_lora_weights={config.init_lora_weights!r} changes the base weight that all "
                         "adapters share; expected True or 'gaussian' for a further adapter")


def _attach(layer: LoRALinear, name: str, a: np.ndarray, b: np.ndarray, config: LoraConfig,
            rng: np.random.Generator) -> None:
    """Register ``LoraAdapter`` ``name`` with host factors A (r, k), B (d, r) on ``layer`` (frozen, as PEFT leaves
    a newly added, inactive adapter)."""
    weight = layer.base.weight
    adapter = LoraAdapter(backend.to_device(np.ascontiguousarray(a, dtype=weight.dtype), weight.device),
                          backend.to_device(np.ascontiguousarray(b, dtype=weight.dtype), weight.device),
                          config.r if config.lora_alpha is None else config.lora_alpha, config.use_rslora,
                          config.lora_dropout, rng)
    adapter.requires_grad_(False)
    adapter.train(layer.training)
    if "lora_adapters" not in layer.__dict__:
        layer.lora_adapters = AdapterDict()
    layer.lora_adapters[name] = adapter


def _record(model: nn.Module, name: str, config: LoraConfig) -> None:
    if "lora_adapter_configs" not in model.__dict__:
        model.lora_adapter_configs = {}
    model.lora_adapter_configs[name] = config


def add_adapter(model: nn.Module, adapter_name: str, config: LoraConfig, seed: int = 0) -> nn.Module:
    """Add a further LoRA adapter named ``adapter_name`` to ``model`` (already adapted by ``apply_lora``); returns
    ``model``.

    Every LoRA layer matching ``config.target_modules`` gets its own A_a (r, k) (drawn from
    ``numpy.random.default_rng(seed)``, layer after layer, by ``config.init_lora_weights``) and B_a = 0 (d, r), with
    s_a = α_a / r_a: ΔW_a = s_a·B_a A_a.  As in PEFT, the new adapter is frozen and inactive until
    ``set_adapter``, so the model computes what it computed before.  Nothing changes when a ValueError is raised:
    an existing or unusable name, a target with no LoRA layer, r > min(d, k), DoRA, PiSSA / OLoRA.
    """
    if not isinstance(config, LoraConfig):
        raise TypeError(f"add_adapter expects a LoraConfig, got {type(config).__name__}")
    configs = adapter_configs(model)
    _check_new_name("add_adapter", adapter_name, configs)
    check_plain_adapter("add_adapter", model, config)
    layers = layers_for_adapter(model, config, "add_adapter")
    rng = as_rng(seed)
    for _, layer in layers:
        a = init_lora_A(config.r, layer.in_features, config.init_lora_weights, rng)  # (r, k)
        _attach(layer, adapter_name, a, np.zeros((layer.out_features, config.r)), config, rng)
    _record(model, adapter_name, config)
    return model


def set_adapter(model: nn.Module, adapter_names: str | Sequence[str]) -> nn.Module:
    """Make ``adapter_names`` (one name or a list) the active adapters of every LoRA layer; returns ``model``.

    Forward then computes y = x W0ᵀ + b + Σ_{a ∈ active} s_a · x A_aᵀ B_aᵀ (a layer without one of them skips it).
    As PEFT's ``set_adapter``: the active adapters' A and B (and DoRA's m) get ``requires_grad = True``, all others
    ``False`` (so an optimizer over ``lora_parameters`` trains the active ones only; LoRA-FA's frozen A is trainable
    again after this, as in PEFT); a merged layer is unmerged first, with a warning.
    """
    configs = adapter_configs(model)
    names = _names("set_adapter", adapter_names, configs)
    for _, layer in require_lora_layers(model, "set_adapter"):
        if layer.merged:
            warnings.warn("set_adapter: adapters cannot be set while merged; unmerging first", stacklevel=2)
            layer.unmerge()
        for name in layer.adapter_names():
            params = [layer.adapter(name).lora_A, layer.adapter(name).lora_B]
            if name == DEFAULT_ADAPTER and isinstance(layer, DoraLinear):
                params.append(layer.lora_magnitude_vector)
            for p in params:
                p.requires_grad_(name in names)
        layer.active_adapters = names
    return model


@contextmanager
def disable_adapter(model: nn.Module) -> Iterator[nn.Module]:
    """Inside ``with disable_adapter(model):`` every LoRA layer computes its base alone, y = x W0ᵀ + b.

    On the way in a merged layer is unmerged (W0 restored bit for bit), as PEFT's forward does for a disabled
    merged layer, and it stays unmerged after; on the way out (also after an exception) the adapters are enabled
    again.  With PiSSA / OLoRA the base is the residual, as in PEFT.
    """
    layers = require_lora_layers(model, "disable_adapter")
    for _, layer in layers:
        layer.unmerge()
        layer.disable_adapters = True
    try:
        yield model
    finally:
        for _, layer in layers:
            layer.disable_adapters = False


def delete_adapter(model: nn.Module, adapter_name: str) -> nn.Module:
    """Remove adapter ``adapter_name`` from every layer and from the model's configs; returns ``model``.

    As PEFT: a merged adapter must be unmerged first; when it was active, the remaining active ones stay active,
    or if none remain the first remaining name in sorted order becomes active (with a warning).  "default" cannot be
    deleted (it is each layer's own lora_A / lora_B: ``merge_and_unload`` or a fresh model instead).
    """
    configs = adapter_configs(model)
    if adapter_name == DEFAULT_ADAPTER:
        raise ValueError("delete_adapter: 'default' is the layers' own lora_A / lora_B and cannot be deleted; "
                         "expected the name of an adapter added with add_adapter or add_weighted_adapter")
    if adapter_name not in configs:
        raise _unknown("delete_adapter", adapter_name, configs)
    layers = require_lora_layers(model, "delete_adapter")
    if any(adapter_name in layer.merged_adapters for _, layer in layers):
        raise ValueError(f"delete_adapter: adapter {adapter_name!r} is merged; unmerge_lora(model) first")
    active = active_adapters(model)
    for _, layer in layers:
        if adapter_name in layer.adapter_names():
            del layer.lora_adapters[adapter_name]
            if not len(layer.lora_adapters):
                del layer.lora_adapters  # the layer is a one-adapter LoRALinear again
        layer.active_adapters = tuple(n for n in layer.active_adapters if n != adapter_name)
    del model.lora_adapter_configs[adapter_name]
    if not model.lora_adapter_configs:
        del model.lora_adapter_configs
    if adapter_name in active:
        remaining = [n for n in active if n != adapter_name]
        if not remaining:
            remaining = [sorted(adapter_configs(model))[0]]
            warnings.warn(f"delete_adapter: adapter {adapter_name!r} was active; setting active adapter to "
                          f"{remaining[0]!r}", stacklevel=2)
        set_adapter(model, remaining)
    return model


def _check_combination(combination_type: Any) -> str:
    if combination_type in COMBINATION_TYPES:
        return combination_type
    hint = " (PEFT's pruning / sign-election merges are not implemented)" \
        if combination_type in PEFT_ONLY_COMBINATION_TYPES else ""
    raise ValueError(f"add_weighted_adapter: combination_type={combination_type!r} is not supported by "
                     f"minilora{hint}; expected 'svd', 'cat' or 'linear'")


def combine_cat(factors: list[tuple[Any, Any, float]], weights: list[float], new_rank: int) -> tuple[Any, Any]:
    """``cat``: A' = [w_1 s_1 A_1; w_2 s_2 A_2; ...] (rows), B' = [B_1, B_2, ...] (columns), zero-padded to
    ``new_rank`` = Σ r_i at the end (a layer without some source adapter, as PEFT pads).

    Exact:  B' A' = Σ_i B_i (w_i s_i A_i) = Σ_i w_i ΔW_i   (scaling 1: the s_i are folded into A').
    ``factors``: host (A_i, B_i, s_i) of the sources present in the layer, ``weights`` their w_i.
    """
    a = np.concatenate([w * s * a_i for (a_i, _, s), w in zip(factors, weights)], axis=0)  # (Σ r_i, k)
    b = np.concatenate([b_i for _, b_i, _ in factors], axis=1)                             # (d, Σ r_i)
    a_new, b_new = np.zeros((new_rank, a.shape[1])), np.zeros((b.shape[0], new_rank))
    a_new[:a.shape[0]], b_new[:, :b.shape[1]] = a, b
    return a_new, b_new


def combine_svd(factors: list[tuple[Any, Any, float]], weights: list[float], new_rank: int,
                svd_clamp: float | None = None) -> tuple[Any, Any]:
    """``svd``: the best rank-k approximation of ΔW = Σ_i w_i s_i B_i A_i (Eckart–Young):

        ΔW = U S Vᵀ,   B' = U[:, :k] diag(S[:k]),   A' = Vᵀ[:k]      so  B' A' = Σ_{j<k} σ_j u_j v_jᵀ

    and ‖ΔW − B' A'‖_F² = Σ_{j≥k} σ_j², the least error of any rank-k matrix (k = ``new_rank``).  ``svd_clamp``
    (PEFT's): clip B' and A' to ±q, q the ``svd_clamp`` quantile of all their entries.  Computed in float64.
    """
    delta = sum(w * s * (b_i.astype(np.float64) @ a_i.astype(np.float64))
                for (a_i, b_i, s), w in zip(factors, weights))                # (d, k)
    u, sigma, vh = np.linalg.svd(delta, full_matrices=False)
    b, a = u[:, :new_rank] * sigma[:new_rank], vh[:new_rank]                  # (d, k'), (k', k)
    if svd_clamp is not None:
        hi = np.quantile(np.concatenate([b.ravel(), a.ravel()]), svd_clamp)
        b, a = np.clip(b, -hi, hi), np.clip(a, -hi, hi)
    return a, b


def combine_linear(factors: list[tuple[Any, Any, float]], weights: list[float]) -> tuple[Any, Any]:
    """``linear`` (PEFT's): the weights go onto A and B *separately*, half of each (its square root) on either side:

        c_i = w_i s_i,   A' = Σ_i sign(c_i) sqrt|c_i| A_i,   B' = Σ_i sqrt|c_i| B_i      (scaling 1)

    so B' A' = Σ_i c_i B_i A_i + Σ_{i≠j} sign(c_j) sqrt|c_i c_j| B_i A_j: the weighted sum Σ w_i ΔW_i *plus cross
    terms* B_i A_j between different adapters.  It is not the weighted sum of the ΔW_i.  Two rank-1 adapters on a
    2×2 weight, s = 1, weights 0.5 and 0.5:

        A_1 = [1 0], B_1 = [1 0]ᵀ  (ΔW_1 = [[1, 0], [0, 0]]);   A_2 = [0 1], B_2 = [0 1]ᵀ  (ΔW_2 = [[0, 0], [0, 1]])
        0.5 ΔW_1 + 0.5 ΔW_2 = [[0.5, 0], [0, 0.5]]   but   B' A' = [[0.5, 0.5], [0.5, 0.5]]
        (cross terms 0.5·B_1 A_2 + 0.5·B_2 A_1 = [[0, 0.5], [0.5, 0]])

    All adapters must have one rank r (A' is r × k).  Cheap, and exact only when the cross terms vanish.
    """
    coef = [w * s for (_, _, s), w in zip(factors, weights)]
    a = sum(math.copysign(math.sqrt(abs(c)), c) * a_i for (a_i, _, _), c in zip(factors, coef))  # (r, k)
    b = sum(math.sqrt(abs(c)) * b_i for (_, b_i, _), c in zip(factors, coef))                      # (d, r)
    return a, b


def add_weighted_adapter(model: nn.Module, adapters: Sequence[str], weights: Sequence[float], adapter_name: str,
                         combination_type: str = "svd", svd_rank: int | None = None,
                         svd_clamp: float | None = None) -> nn.Module:
    """A new adapter ``adapter_name`` that combines ``adapters`` with ``weights``, as PEFT's method of this name;
    returns ``model``.  The new adapter has scaling 1 (lora_alpha = r, no rsLoRA; each s_i is folded in), is frozen
    and inactive (``set_adapter`` it).  Per layer, with ΔW_i = s_i B_i A_i:

    "cat"     rank Σ r_i:  B' A' = Σ_i w_i ΔW_i exactly (``combine_cat``).
    "svd"     rank ``svd_rank`` (default max r_i): the best rank-k approximation of Σ_i w_i ΔW_i (``combine_svd``).
    "linear"  rank r (all equal): A' = Σ sign(c_i)√|c_i| A_i, B' = Σ √|c_i| B_i, c_i = w_i s_i, which adds cross
              terms B_i A_j (``combine_linear``: not Σ w_i ΔW_i).  One adapter alone is always combined this way
              (PEFT's rule), giving B' A' = w ΔW exactly.

    A layer holding only some of ``adapters`` combines those.  Refused with one line: an unknown adapter, a name in
    use (PEFT would return silently), DoRA, ``combination_type`` other than the three (PEFT's "ties", "dare_linear",
    ... are not implemented), "linear" with unequal ranks, a rank above min(d, k).
    """
    configs = adapter_configs(model)
    names = _names("add_weighted_adapter", adapters, configs)
    _check_new_name("add_weighted_adapter", adapter_name, configs)
    combination_type = _check_combination(combination_type)
    weights = list(weights)
    if len(weights) != len(names) or not all(is_real(w) and math.isfinite(w) for w in weights):
        raise ValueError(f"add_weighted_adapter: expected one finite weight per adapter ({len(names)}), got {weights}")
    if svd_rank is not None and (isinstance(svd_rank, bool) or not isinstance(svd_rank, (int, np.integer))
                                 or svd_rank < 1):
        raise ValueError(f"add_weighted_adapter: svd_rank must be an integer >= 1 or None, got {svd_rank!r}")
    if svd_clamp is not None and (not is_real(svd_clamp) or not 0.0 <= svd_clamp <= 1.0):
        raise ValueError(f"add_weighted_adapter: svd_clamp must be a quantile in [0, 1] or None, got {svd_clamp!r}")
    if any(configs[n].use_dora for n in names) or any(
            isinstance(layer, DoraLinear) for _, layer in require_lora_layers(model, "add_weighted_adapter")):
        raise ValueError("add_weighted_adapter: DoRA adapters cannot be combined (nor by PEFT); expected plain LoRA")
    combination_type = "linear" if len(names) == 1 else combination_type
    ranks = [configs[n].r for n in names]
    if combination_type == "linear" and len(set(ranks)) != 1:
        raise ValueError(f"add_weighted_adapter: combination_type='linear' needs adapters of one rank, got r={ranks} "
                         f"for {list(names)}; use 'cat' or 'svd'")
    new_rank = {"linear": ranks[0], "cat": sum(ranks), "svd": svd_rank or max(ranks)}[combination_type]
    targets = tuple(dict.fromkeys(t for n in names for t in configs[n].target_modules))  # the union, in order
    first = configs[names[0]]
    config = dataclasses.replace(first, r=new_rank, lora_alpha=new_rank, use_rslora=False, target_modules=targets,
                                 init_lora_weights=True if first.init_lora_weights in BASE_CHANGING_INITS
                                 else first.init_lora_weights)
    layers = [(path, layer) for path, layer in require_lora_layers(model, "add_weighted_adapter")
              if any(n in layer.adapter_names() for n in names)]
    for path, layer in layers:
        if new_rank > min(layer.out_features, layer.in_features):
            raise ValueError(f"add_weighted_adapter: combination_type={combination_type!r} gives rank {new_rank}, "
                             f"too large for {path}, a {layer.out_features}x{layer.in_features} weight; expected "
                             f"<= {min(layer.out_features, layer.in_features)} (use 'svd' with a smaller svd_rank)")
    rng = as_rng(0)
    for _, layer in layers:
        present = [(n, w) for n, w in zip(names, weights) if n in layer.adapter_names()]
        factors = [(backend.to_host(layer.adapter(n).lora_A.data), backend.to_host(layer.adapter(n).lora_B.data),
                    layer.adapter(n).scaling) for n, _ in present]
        ws = [w for _, w in present]
        if combination_type == "cat":
            a, b = combine_cat(factors, ws, new_rank)
        elif combination_type == "svd":
            a, b = combine_svd(factors, ws, new_rank, svd_clamp)
        else:
            a, b = combine_linear(factors, ws)
        _attach(layer, adapter_name, a, b, config, rng)
    _record(model, adapter_name, config)
    return model
