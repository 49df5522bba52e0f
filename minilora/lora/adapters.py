"""Adapter files in PEFT's format: ``adapter_config.json`` + ``adapter_model.safetensors``.

An adapter is only the A and B matrices (and the config that says where they go), a tiny file
next to the base model.  minilora writes the same files as Hugging Face PEFT, so they can be read
by PEFT (with a base model of matching module names), and PEFT LoRA adapters for a model with
minilora's module names can be read here.  Tensor names:

    base_model.model.<module path>.lora_A.weight   (r, k)
    base_model.model.<module path>.lora_B.weight   (d, r)
    base_model.model.<module path>.lora_magnitude_vector   (d,)   DoRA only (``use_dora: true``)

A PiSSA / OLoRA adapter is saved as PEFT's ``save_pretrained(path_initial_model_for_weight_conversion=...)``
saves it: a plain LoRA of rank 2r on the *original* base, A' = [A; A0], B' = [B, −B0], lora_alpha doubled
(``minilora.lora.variants.pissa``), so that the file needs no changed base weights.

Several adapters (``minilora.lora.multi``) are saved as PEFT's ``save_pretrained`` saves them: "default" at the
folder's root, every other adapter in a subfolder named after it, each a complete adapter folder with the same
tensor names (PEFT drops the adapter's name from them).  ``load_adapter(model, folder / name, adapter_name=name)``
loads one back, as PEFT's ``load_adapter(folder / name, adapter_name=name)``.

A VeRA adapter (``peft_type: "VERA"``, ``minilora.lora.variants.vera``) holds each layer's
``base_model.model.<module path>.vera_lambda_b`` (d,) and ``...vera_lambda_d`` (r,), and the shared frozen
projections once, ``base_model.vera_A`` (r, k_max) and ``base_model.vera_B`` (d_max, r) (``save_projection: true``).

Both files are written atomically from host arrays (a GPU-trained adapter loads without CuPy).

An adapter only makes sense on the base model it was trained on: the same shapes with another
vocabulary or another pretraining give garbage without an error.  So the weights file's metadata
also records the base (PEFT reads tensors and ignores it; adapter_config.json keeps PEFT's keys
only): its ``base_model_name_or_path``, its config, and a fingerprint of its weights
(``base_fingerprint``).  ``load_adapter`` refuses an adapter whose recorded base is not the model's;
an adapter with no recorded base (saved by PEFT) loads as before.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from minilora import backend, nn
from minilora.io import atomic_write_bytes, load_arrays, save_arrays
from minilora.lora.inject import apply_lora, find_targets, lora_layers, require_lora_layers
from minilora.lora.layer import DEFAULT_ADAPTER, LoraConfig, LoRALinear
from minilora.lora.multi import adapter_configs, add_adapter, check_plain_adapter, layers_for_adapter
from minilora.lora.provenance import (
    AdapterBaseMismatch,
    base_fingerprint,
    base_record,
    base_weights,
    check_recorded_base,
)
from minilora.lora.variants.dora import DoraLinear
from minilora.lora.variants.pissa import converted_alpha, lora_from_mutated_init
from minilora.lora.variants.vera import (
    VeraConfig,
    load_vera_state,
    read_vera_config,
    vera_adapter_config,
    vera_expected_shapes,
    vera_layers,
    vera_state_dict,
)

__all__ = [
    "CONFIG_NAME", "WEIGHTS_NAME", "peft_key", "peft_magnitude_key", "adapter_config", "adapter_state_dict",
    "save_adapter",
    "read_adapter_config", "load_adapter", "base_weights", "base_fingerprint", "AdapterBaseMismatch",
]

CONFIG_NAME = "adapter_config.json"
WEIGHTS_NAME = "adapter_model.safetensors"
_PREFIX = "base_model.model."
_FORMAT = "minilora-lora-adapter-v1"
# What PEFT's LoraConfig assumes for a key missing from adapter_config.json
_PEFT_DEFAULTS = {"r": 8, "lora_alpha": 8}
# init_lora_weights values whose adapters only make sense on a base model that PEFT itself changed
_BASE_CHANGING_INITS = ("pissa", "olora", "loftq", "corda", "eva")
_MAGNITUDE = "lora_magnitude_vector"


def peft_key(module_name: str, matrix: str) -> str:
    """PEFT's tensor name for matrix "A" or "B" of the layer at ``module_name``."""
    return f"{_PREFIX}{module_name}.lora_{matrix}.weight"


def peft_magnitude_key(module_name: str) -> str:
    """PEFT's tensor name for DoRA's magnitude m of the layer at ``module_name`` (no ``.weight``, as PEFT saves it)."""
    return f"{_PREFIX}{module_name}.{_MAGNITUDE}"


def _saved_matrices(layer: LoRALinear) -> tuple[Any, Any]:
    """(A, B) as the file holds them: the layer's own, or for PiSSA / OLoRA the rank-2r plain LoRA on the original
    base, A' = [A; A0], B' = [B, −B0]."""
    a, b = backend.to_host(layer.lora_A.data), backend.to_host(layer.lora_B.data)
    if layer.initial_weights is None:
        return a, b
    _, a0, b0 = layer.initial_weights
    return lora_from_mutated_init(a, b, a0.astype(a.dtype), b0.astype(b.dtype))


def _layers_or_raise(model: nn.Module, what: str) -> list[tuple[str, LoRALinear]]:
    layers = require_lora_layers(model, what)
    if any(not name for name, _ in layers):
        raise ValueError(f"{what}: the model is a bare LoRALinear; adapters are saved from a model that contains it")
    return layers


def adapter_state_dict(model: nn.Module, adapter_name: str = DEFAULT_ADAPTER) -> dict[str, np.ndarray]:
    """PEFT tensor name → C-contiguous host copy of every lora_A (r, k) and lora_B (d, r), and DoRA's
    lora_magnitude_vector (d,); for PiSSA / OLoRA the converted rank-2r A' (2r, k) and B' (d, 2r).

    A merged model has the same A and B (merging changes only the base weight), so this is
    the un-merged adapter either way.  ``adapter_name``: another adapter (``minilora.lora.multi``) under the same
    tensor names (PEFT leaves the adapter's name out of them).
    """
    arrays = {}
    if adapter_name != DEFAULT_ADAPTER:
        _named_config(model, adapter_name, "adapter_state_dict")
        for name, layer in _layers_or_raise(model, "adapter_state_dict"):
            if adapter_name in layer.adapter_names():
                adapter = layer.adapter(adapter_name)
                arrays[peft_key(name, "A")] = np.ascontiguousarray(backend.to_host(adapter.lora_A.data)).copy()
                arrays[peft_key(name, "B")] = np.ascontiguousarray(backend.to_host(adapter.lora_B.data)).copy()
        return arrays
    for name, layer in _layers_or_raise(model, "adapter_state_dict"):
        a, b = _saved_matrices(layer)
        arrays[peft_key(name, "A")] = np.ascontiguousarray(a).copy()
        arrays[peft_key(name, "B")] = np.ascontiguousarray(b).copy()
        if isinstance(layer, DoraLinear):
            arrays[peft_magnitude_key(name)] = np.ascontiguousarray(
                backend.to_host(layer.lora_magnitude_vector.data)).copy()
    return arrays


def _named_config(model: nn.Module, adapter_name: str, what: str) -> LoraConfig:
    """The LoraConfig of adapter ``adapter_name`` (``adapter_configs``), or a ValueError naming the known ones."""
    configs = adapter_configs(model)
    if adapter_name not in configs:
        raise ValueError(f"{what}: no adapter named {adapter_name!r}; the model's adapters are {list(configs)}")
    return configs[adapter_name]


def _peft_config(r: int, lora_alpha: float, lora_dropout: float, init_lora_weights: bool | str, use_rslora: bool,
                 use_dora: bool, targets: list[str], base_model_name_or_path: str | None,
                 task_type: str | None) -> dict[str, Any]:
    """The ``adapter_config.json`` dictionary with PEFT's keys (sorted, as PEFT writes) for these values."""
    return {
        "alpha_pattern": {},
        "auto_mapping": None,
        "base_model_name_or_path": base_model_name_or_path,
        "bias": "none",
        "fan_in_fan_out": False,
        "inference_mode": True,
        "init_lora_weights": init_lora_weights,  # True or "gaussian", PEFT's spelling
        "layer_replication": None,
        "layers_pattern": None,
        "layers_to_transform": None,
        "loftq_config": {},
        "lora_alpha": lora_alpha,
        "lora_dropout": lora_dropout,
        "megatron_config": None,
        "megatron_core": "megatron.core",
        "modules_to_save": None,
        "peft_type": "LORA",
        "r": r,
        "rank_pattern": {},
        "revision": None,
        "target_modules": targets,
        "task_type": task_type,
        "use_dora": use_dora,
        "use_rslora": use_rslora,
    }


def adapter_config(model: nn.Module, base_model_name_or_path: str | None = None,
                   task_type: str | None = None, adapter_name: str = DEFAULT_ADAPTER) -> dict[str, Any]:
    """The ``adapter_config.json`` dictionary for ``model``'s LoRA layers, with PEFT's keys (sorted, as PEFT writes).

    Hyper-parameters come from the layers (which must agree); target_modules from
    ``model.lora_config`` (set by ``apply_lora``), else the layers' last name components.  A PiSSA / OLoRA
    adapter is written as its plain rank-2r conversion: r and lora_alpha doubled (α·√2 with rsLoRA),
    init_lora_weights True, as PEFT writes it.
    ``task_type``: PEFT's task, e.g. "CAUSAL_LM" for a GPT, or None.  ``adapter_name``: another adapter
    (``minilora.lora.multi``), written from its LoraConfig.
    """
    layers = _layers_or_raise(model, "save_adapter")
    if adapter_name != DEFAULT_ADAPTER:
        cfg = _named_config(model, adapter_name, "save_adapter")
        alpha = cfg.r if cfg.lora_alpha is None else cfg.lora_alpha
        return _peft_config(cfg.r, alpha, cfg.lora_dropout, cfg.init_lora_weights, cfg.use_rslora, False,
                            list(cfg.target_modules), base_model_name_or_path, task_type)
    first = layers[0][1]
    for name, layer in layers[1:]:
        if (type(layer), layer.init_lora_weights) != (type(first), first.init_lora_weights):
            raise ValueError(f"save_adapter: LoRA layers disagree ({layers[0][0]}: {first.extra_repr()}; "
                             f"{name}: {layer.extra_repr()}); one adapter file holds one kind of adapter")
        if (layer.r, layer.lora_alpha, layer.use_rslora) != (first.r, first.lora_alpha, first.use_rslora):
            raise ValueError(
                f"save_adapter: LoRA layers disagree ({layers[0][0]}: r={first.r}, lora_alpha={first.lora_alpha}, "
                f"use_rslora={first.use_rslora}; {name}: r={layer.r}, lora_alpha={layer.lora_alpha}, "
                f"use_rslora={layer.use_rslora}); one adapter file holds one r and lora_alpha"
            )
    config = model.__dict__.get("lora_config")
    if isinstance(config, LoraConfig):
        targets = list(config.target_modules)
    else:
        targets = sorted({name.rsplit(".", 1)[-1] for name, _ in layers})
    converted = first.initial_weights is not None  # PiSSA / OLoRA: written as a plain LoRA of rank 2r
    return _peft_config(2 * first.r if converted else first.r,
                        converted_alpha(first.lora_alpha, first.use_rslora) if converted else first.lora_alpha,
                        first.lora_dropout.p, True if converted else first.init_lora_weights, first.use_rslora,
                        isinstance(first, DoraLinear), targets, base_model_name_or_path, task_type)


def save_adapter(model: nn.Module, directory: str | os.PathLike, base_model_name_or_path: str | None = None,
                 task_type: str | None = None, selected_adapters: list[str] | None = None) -> Path:
    """Write ``model``'s adapter to ``directory`` (created if needed): adapter_config.json and
    adapter_model.safetensors, each atomically (temporary file, then rename).  Returns the directory.

    A model with several adapters (``minilora.lora.multi``) is written as PEFT's ``save_pretrained`` writes it:
    "default" in ``directory``, every other adapter in ``directory / name``; ``selected_adapters`` (PEFT's
    argument) writes only those names.

    ``base_model_name_or_path`` names the base model (PEFT's key); the weights file's metadata also
    records the base's config and ``base_fingerprint(model)``, so ``load_adapter`` can refuse another base.

    The config and metadata are turned into JSON text before anything is written (a value JSON cannot
    hold raises here, leaving no file behind); then the weights are written and the config last, so a
    config on disk always has weights.
    """
    directory = Path(directory)
    vera = bool(vera_layers(model))  # a VeRA adapter (minilora.lora.variants.vera) has its own config and tensors
    if not vera:
        _layers_or_raise(model, "save_adapter")  # one line when the model has no adapter at all
    names = [DEFAULT_ADAPTER] if vera else list(adapter_configs(model))
    if selected_adapters is not None:
        chosen = [selected_adapters] if isinstance(selected_adapters, str) else list(selected_adapters)
        unknown = [name for name in chosen if name not in names]
        if unknown or not chosen:
            raise ValueError(f"save_adapter: selected_adapters={selected_adapters!r}; expected a non-empty list of the "
                             f"model's adapters {names}")
        names = [name for name in names if name in chosen]
    metadata = {"format": _FORMAT, "base_model": base_record(model, base_model_name_or_path)}
    files = []
    for name in names:
        config = (vera_adapter_config(model, base_model_name_or_path, task_type) if vera
                  else adapter_config(model, base_model_name_or_path, task_type, adapter_name=name))
        try:
            config_text = json.dumps(config, indent=2) + "\n"  # the layout atomic_write_json writes
            json.dumps(metadata)
        except (TypeError, ValueError) as err:
            raise ValueError("save_adapter: the adapter config cannot be written as JSON "
                             f"({err}); nothing was written") from None
        arrays = vera_state_dict(model) if vera else adapter_state_dict(model, adapter_name=name)
        files.append((directory if name == DEFAULT_ADAPTER else directory / name, arrays, config_text))
    for folder, arrays, config_text in files:
        save_arrays(folder / WEIGHTS_NAME, arrays, metadata=metadata)
        atomic_write_bytes(folder / CONFIG_NAME, config_text.encode())
    return directory


def _unsupported(path: Path, key: str, value: Any, why: str) -> ValueError:
    return ValueError(f"{path}: {key}={value!r} is not supported by minilora ({why})")


def read_adapter_config(directory: str | os.PathLike) -> LoraConfig | VeraConfig:
    """Read ``adapter_config.json`` into a LoraConfig (a VeraConfig for peft_type "VERA": ``read_vera_config``);
    ValueError naming the file when it is missing, not JSON, not a LoRA or VeRA adapter, has no ``r`` or
    ``lora_alpha`` (the scale s = lora_alpha / r it was trained with would be a guess), or uses a PEFT feature
    minilora does not implement."""
    path = Path(directory) / CONFIG_NAME
    if not path.is_file():
        raise ValueError(f"{path}: no such file (an adapter folder holds {CONFIG_NAME} and {WEIGHTS_NAME})")
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: not a valid JSON file ({err})") from None
    if not isinstance(cfg, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(cfg).__name__}")
    if cfg.get("peft_type") == "VERA":
        return read_vera_config(cfg, path)
    if cfg.get("peft_type", "LORA") != "LORA":
        raise ValueError(f"{path}: peft_type is {cfg['peft_type']!r}, expected 'LORA' or 'VERA'")
    unknown = [key for key in ("r", "lora_alpha") if cfg.get(key) is None]
    if unknown:  # the scale α/r the adapter was trained with would be a guess
        defaults = ", ".join(f"{key}={_PEFT_DEFAULTS[key]}" for key in unknown)
        raise ValueError(f"{path}: no value for {' and '.join(map(repr, unknown))} (missing or null), so the scale "
                         f"lora_alpha/r the adapter was trained with is unknown (PEFT would assume {defaults}); "
                         "add the values it was trained with")
    if "target_modules" not in cfg:
        raise ValueError(f"{path}: missing key 'target_modules'")
    targets = cfg["target_modules"]
    if not isinstance(targets, list):
        raise _unsupported(path, "target_modules", targets,
                           "expected a list of module names; PEFT reads a string as a regex")
    if cfg.get("use_dora") not in (True, False, None):
        raise ValueError(f"{path}: use_dora must be true or false, got {cfg['use_dora']!r}")
    for key, plain in (("bias", "none"), ("fan_in_fan_out", False), ("lora_bias", False)):
        if cfg.get(key, plain) not in (plain, None):
            raise _unsupported(path, key, cfg[key], f"only {plain!r}")
    for key in ("rank_pattern", "alpha_pattern", "modules_to_save", "layers_to_transform", "layer_replication"):
        if cfg.get(key):
            raise _unsupported(path, key, cfg[key], "one r and lora_alpha for all target modules")
    for key in ("exclude_modules", "target_parameters", "trainable_token_indices", "alora_invocation_tokens"):
        if cfg.get(key):
            raise _unsupported(path, key, cfg[key], "a PEFT feature minilora does not implement")
    init = cfg.get("init_lora_weights", True)
    if isinstance(init, str) and init.lower().startswith(_BASE_CHANGING_INITS):
        raise _unsupported(path, "init_lora_weights", init, "this initialisation also changes the base weights")
    try:
        return LoraConfig(
            r=cfg["r"], lora_alpha=cfg["lora_alpha"],
            lora_dropout=cfg.get("lora_dropout", 0.0) or 0.0, target_modules=tuple(targets),
            # how A started: the file holds it
            init_lora_weights="gaussian" if str(init).lower() == "gaussian" else True,
            use_rslora=bool(cfg.get("use_rslora", False)), use_dora=bool(cfg.get("use_dora", False)),
        )
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None


def _check_arrays(path: Path, arrays: dict[str, np.ndarray], expected: dict[str, tuple[int, ...]]) -> None:
    """ValueError naming ``path`` and every missing, unexpected, mis-shaped or non-float tensor."""
    problems = []
    missing = [k for k in expected if k not in arrays]
    unexpected = [k for k in arrays if k not in expected]
    misshaped = [f"{k}: file {tuple(arrays[k].shape)} vs model {expected[k]}"
                 for k in expected if k in arrays and tuple(arrays[k].shape) != expected[k]]
    not_float = [f"{k}: {arrays[k].dtype}" for k in expected if k in arrays and arrays[k].dtype.kind != "f"]
    for label, items in (("missing keys", missing), ("unexpected keys", unexpected),
                         ("mis-shaped", misshaped), ("not floating point", not_float)):
        if items:
            problems.append(f"{label}: " + "; ".join(items))
    if problems:
        raise ValueError(f"{path}: adapter does not fit this model: " + " | ".join(problems))


def load_adapter(model: nn.Module, directory: str | os.PathLike, seed: int = 0, check_base: bool = True,
                 adapter_name: str = DEFAULT_ADAPTER) -> nn.Module:
    """Load an adapter folder into ``model`` (in place); returns ``model``.

    On a model without LoRA, LoRA is applied first from adapter_config.json (r, lora_alpha,
    lora_dropout, target_modules, use_rslora, use_dora).  On a model with LoRA, its layers must have the
    file's r, lora_alpha, use_rslora and use_dora (lora_dropout may differ: it does not change the function).
    Every tensor name and shape must fit, and when the file records its base model (minilora's
    ``save_adapter`` does; PEFT does not), ``base_fingerprint(model)`` must equal the recorded one
    (unless ``check_base=False``; else ``AdapterBaseMismatch``, a ValueError): the same shapes with other base weights
    (another vocabulary,
    task or pretraining) would load without error and compute nonsense.  Otherwise a ValueError
    names the file and what does not fit, and the model is left unchanged.  Merged layers are
    loaded and stay merged.

    ``adapter_name`` other than "default" (PEFT's ``load_adapter(path, adapter_name)``): the folder is loaded as a
    further adapter (``minilora.lora.multi.add_adapter``, then its weights) onto a model that already has its
    default adapter, e.g. ``load_adapter(model, folder / "french", adapter_name="french")`` for a folder that
    ``save_adapter`` or PEFT's ``save_pretrained`` wrote with several adapters.
    """
    directory = Path(directory)
    config_path = directory / CONFIG_NAME
    config = read_adapter_config(directory)
    arrays, metadata = load_arrays(directory / WEIGHTS_NAME)
    if adapter_name != DEFAULT_ADAPTER:
        return _load_named_adapter(model, directory, config, arrays, metadata, seed, check_base, adapter_name)
    if isinstance(config, VeraConfig):
        return _load_vera_adapter(model, directory, config, arrays, metadata, seed, check_base)
    layers = lora_layers(model)
    if layers:
        for name, layer in layers:
            dora = isinstance(layer, DoraLinear)
            if (layer.r != config.r or layer.use_rslora != config.use_rslora or dora != config.use_dora
                    or not math.isclose(layer.scaling, config.scaling, rel_tol=1e-12)):
                raise ValueError(
                    f"{config_path}: adapter has r={config.r}, lora_alpha={config.lora_alpha}, "
                    f"use_rslora={config.use_rslora}, use_dora={config.use_dora} but the model's LoRA layer {name} "
                    f"has r={layer.r}, lora_alpha={layer.lora_alpha}, use_rslora={layer.use_rslora}, use_dora={dora}"
                )
        shapes = [(name, layer.out_features, layer.in_features, layer.r) for name, layer in layers]
    else:
        try:
            targets = find_targets(model, config)
        except ValueError as err:
            raise ValueError(f"{config_path}: adapter does not fit this model: {err}") from None
        shapes = [(name, linear.out_features, linear.in_features, config.r) for name, linear in targets]
    expected = {}
    for name, d, k, r in shapes:
        expected[peft_key(name, "A")] = (r, k)
        expected[peft_key(name, "B")] = (d, r)
        if config.use_dora:
            expected[peft_magnitude_key(name)] = (d,)
    _check_arrays(directory / WEIGHTS_NAME, arrays, expected)
    if check_base:
        check_recorded_base(directory / WEIGHTS_NAME, metadata, model)
    if not layers:
        apply_lora(model, config, seed=seed)
    for name, layer in lora_layers(model):
        was_merged = layer.merged
        layer.unmerge()
        pairs = [(layer.lora_A, peft_key(name, "A")), (layer.lora_B, peft_key(name, "B"))]
        if isinstance(layer, DoraLinear):
            pairs.append((layer.lora_magnitude_vector, peft_magnitude_key(name)))
        for param, key in pairs:
            host = np.ascontiguousarray(arrays[key], dtype=param.dtype)
            param.data = backend.to_device(host.copy(), param.device)
        if was_merged:
            layer.merge()
    return model


def _load_named_adapter(model: nn.Module, directory: Path, config: LoraConfig | VeraConfig,
                        arrays: dict[str, np.ndarray], metadata: dict[str, Any], seed: int, check_base: bool,
                        adapter_name: str) -> nn.Module:
    """``load_adapter`` into a further adapter ``adapter_name``: the same checks, then ``add_adapter`` (when the
    model has no adapter of that name yet; else its r and scaling must be the file's) and the weights copied in."""
    config_path = directory / CONFIG_NAME
    if isinstance(config, VeraConfig):
        raise ValueError(f"{config_path}: a VeRA adapter cannot be loaded as a further adapter {adapter_name!r}; "
                         "expected a LoRA adapter (peft_type 'LORA')")
    if not lora_layers(model):
        raise ValueError(f"{config_path}: load the default adapter first (load_adapter(model, folder)); a further "
                         f"adapter {adapter_name!r} goes onto a model that has LoRA layers")
    try:
        check_plain_adapter("load_adapter", model, config)
        exists = adapter_name in adapter_configs(model)
        if exists:
            layers = [(name, layer) for name, layer in lora_layers(model) if adapter_name in layer.adapter_names()]
            for name, layer in layers:
                held = layer.adapter(adapter_name)
                if held.r != config.r or not math.isclose(held.scaling, config.scaling, rel_tol=1e-12):
                    raise ValueError(f"the model's adapter {adapter_name!r} has r={held.r}, scaling={held.scaling:.6g} "
                                     f"in {name}, the file r={config.r}, scaling={config.scaling:.6g}")
        else:
            layers = layers_for_adapter(model, config, "load_adapter")
    except ValueError as err:
        raise ValueError(f"{config_path}: adapter does not fit this model: {err}") from None
    expected = {}
    for name, layer in layers:
        r = layer.adapter(adapter_name).r if exists else config.r
        expected[peft_key(name, "A")] = (r, layer.in_features)
        expected[peft_key(name, "B")] = (layer.out_features, r)
    _check_arrays(directory / WEIGHTS_NAME, arrays, expected)
    if check_base:
        check_recorded_base(directory / WEIGHTS_NAME, metadata, model)
    if not exists:
        add_adapter(model, adapter_name, config, seed=seed)
    for name, layer in layers:
        was_merged = layer.merged
        layer.unmerge()
        adapter = layer.adapter(adapter_name)
        for param, key in ((adapter.lora_A, peft_key(name, "A")), (adapter.lora_B, peft_key(name, "B"))):
            param.data = backend.to_device(np.ascontiguousarray(arrays[key], dtype=param.dtype).copy(), param.device)
        if was_merged:
            layer.merge()
    return model


def _load_vera_adapter(model: nn.Module, directory: Path, config: VeraConfig, arrays: dict[str, np.ndarray],
                       metadata: dict[str, Any], seed: int, check_base: bool) -> nn.Module:
    """``load_adapter`` for a VeRA file: the same checks (tensor names and shapes, base), then the λ vectors and
    the shared projections are copied in (VeRA applied first on a bare model)."""
    try:
        expected = vera_expected_shapes(model, config)
    except ValueError as err:
        raise ValueError(f"{directory / CONFIG_NAME}: adapter does not fit this model: {err}") from None
    _check_arrays(directory / WEIGHTS_NAME, arrays, expected)
    if check_base:
        check_recorded_base(directory / WEIGHTS_NAME, metadata, model)
    return load_vera_state(model, config, arrays, seed=seed)
