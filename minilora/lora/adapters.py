"""Adapter files in PEFT's format: ``adapter_config.json`` + ``adapter_model.safetensors``.

An adapter is only the A and B matrices (and the config that says where they go), a tiny file
next to the base model.  minilora writes the same files as Hugging Face PEFT, so they can be read
by PEFT (with a base model of matching module names), and PEFT LoRA adapters for a model with
minilora's module names can be read here.  Tensor names:

    base_model.model.<module path>.lora_A.weight   (r, k)
    base_model.model.<module path>.lora_B.weight   (d, r)

Both files are written atomically from host arrays (a GPU-trained adapter loads without CuPy).
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
from minilora.lora.layer import LoraConfig, LoRALinear

__all__ = [
    "CONFIG_NAME", "WEIGHTS_NAME", "peft_key", "adapter_config", "adapter_state_dict", "save_adapter",
    "read_adapter_config", "load_adapter",
]

CONFIG_NAME = "adapter_config.json"
WEIGHTS_NAME = "adapter_model.safetensors"
_PREFIX = "base_model.model."
# init_lora_weights values whose adapters only make sense on a base model that PEFT itself changed
_BASE_CHANGING_INITS = ("pissa", "olora", "loftq", "corda", "eva")


def peft_key(module_name: str, matrix: str) -> str:
    """PEFT's tensor name for matrix "A" or "B" of the layer at ``module_name``."""
    return f"{_PREFIX}{module_name}.lora_{matrix}.weight"


def _layers_or_raise(model: nn.Module, what: str) -> list[tuple[str, LoRALinear]]:
    layers = require_lora_layers(model, what)
    if any(not name for name, _ in layers):
        raise ValueError(f"{what}: the model is a bare LoRALinear; adapters are saved from a model that contains it")
    return layers


def adapter_state_dict(model: nn.Module) -> dict[str, np.ndarray]:
    """PEFT tensor name → C-contiguous host copy of every lora_A (r, k) and lora_B (d, r).

    A merged model has the same A and B (merging changes only the base weight), so this is
    the un-merged adapter either way.
    """
    arrays = {}
    for name, layer in _layers_or_raise(model, "adapter_state_dict"):
        arrays[peft_key(name, "A")] = np.ascontiguousarray(backend.to_host(layer.lora_A.data)).copy()
        arrays[peft_key(name, "B")] = np.ascontiguousarray(backend.to_host(layer.lora_B.data)).copy()
    return arrays


def adapter_config(model: nn.Module, base_model_name_or_path: str | None = None, task_type: str | None = None) -> dict[str, Any]:
    """The ``adapter_config.json`` dictionary for ``model``'s LoRA layers, with PEFT's keys (sorted, as PEFT writes).

    Hyper-parameters come from the layers (which must agree); target_modules from
    ``model.lora_config`` (set by ``apply_lora``), else the layers' last name components.
    ``task_type``: PEFT's task, e.g. "CAUSAL_LM" for a GPT, or None.
    """
    layers = _layers_or_raise(model, "save_adapter")
    first = layers[0][1]
    for name, layer in layers[1:]:
        if (layer.r, layer.lora_alpha, layer.use_rslora) != (first.r, first.lora_alpha, first.use_rslora):
            raise ValueError(
                f"save_adapter: LoRA layers disagree ({layers[0][0]}: r={first.r}, alpha={first.lora_alpha}, "
                f"rslora={first.use_rslora}; {name}: r={layer.r}, alpha={layer.lora_alpha}, rslora={layer.use_rslora}); "
                "one adapter file holds one r and alpha"
            )
    config = model.__dict__.get("lora_config")
    if isinstance(config, LoraConfig):
        targets = list(config.target_modules)
    else:
        targets = sorted({name.rsplit(".", 1)[-1] for name, _ in layers})
    return {
        "alpha_pattern": {},
        "auto_mapping": None,
        "base_model_name_or_path": base_model_name_or_path,
        "bias": "none",
        "fan_in_fan_out": False,
        "inference_mode": True,
        "init_lora_weights": "gaussian" if first.init == "gaussian" else True,  # PEFT's True is kaiming-uniform
        "layer_replication": None,
        "layers_pattern": None,
        "layers_to_transform": None,
        "loftq_config": {},
        "lora_alpha": first.lora_alpha,
        "lora_dropout": first.lora_dropout.p,
        "megatron_config": None,
        "megatron_core": "megatron.core",
        "modules_to_save": None,
        "peft_type": "LORA",
        "r": first.r,
        "rank_pattern": {},
        "revision": None,
        "target_modules": targets,
        "task_type": task_type,
        "use_dora": False,
        "use_rslora": first.use_rslora,
    }


def save_adapter(model: nn.Module, directory: str | os.PathLike, base_model_name_or_path: str | None = None,
                 task_type: str | None = None) -> Path:
    """Write ``model``'s adapter to ``directory`` (created if needed): adapter_config.json and
    adapter_model.safetensors, each atomically (temporary file, then rename).  Returns the directory.

    The config is turned into JSON text before anything is written (a value JSON cannot hold
    raises here, leaving no file behind); then the weights are written and the config last, so a
    config on disk always has weights.
    """
    directory = Path(directory)
    config = adapter_config(model, base_model_name_or_path, task_type)
    try:
        config_text = json.dumps(config, indent=2) + "\n"  # the layout atomic_write_json writes
    except (TypeError, ValueError) as err:
        raise ValueError(f"save_adapter: the adapter config cannot be written as JSON ({err}); nothing was written") from None
    save_arrays(directory / WEIGHTS_NAME, adapter_state_dict(model), metadata={"format": "minilora-lora-adapter-v1"})
    atomic_write_bytes(directory / CONFIG_NAME, config_text.encode())
    return directory


def _unsupported(path: Path, key: str, value: Any, why: str) -> ValueError:
    return ValueError(f"{path}: {key}={value!r} is not supported by minilora ({why})")


def read_adapter_config(directory: str | os.PathLike) -> LoraConfig:
    """Read ``adapter_config.json`` into a LoraConfig; ValueError naming the file when it is missing,
    not JSON, not a LoRA adapter, or uses a PEFT feature minilora does not implement."""
    path = Path(directory) / CONFIG_NAME
    if not path.is_file():
        raise ValueError(f"{path}: no such file (an adapter folder holds {CONFIG_NAME} and {WEIGHTS_NAME})")
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: not a valid JSON file ({err})") from None
    if not isinstance(cfg, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(cfg).__name__}")
    if cfg.get("peft_type", "LORA") != "LORA":
        raise ValueError(f"{path}: peft_type is {cfg['peft_type']!r}, expected 'LORA'")
    for key in ("r", "target_modules"):
        if key not in cfg:
            raise ValueError(f"{path}: missing key {key!r}")
    targets = cfg["target_modules"]
    if not isinstance(targets, list):
        raise _unsupported(path, "target_modules", targets, "expected a list of module names; PEFT reads a string as a regex")
    for key, plain in (("bias", "none"), ("fan_in_fan_out", False), ("use_dora", False), ("lora_bias", False)):
        if cfg.get(key, plain) not in (plain, None):
            raise _unsupported(path, key, cfg[key], f"only {plain!r}")
    for key in ("rank_pattern", "alpha_pattern", "modules_to_save", "layers_to_transform", "layer_replication"):
        if cfg.get(key):
            raise _unsupported(path, key, cfg[key], "one r and alpha for all target modules")
    init = cfg.get("init_lora_weights", True)
    if isinstance(init, str) and init.lower().startswith(_BASE_CHANGING_INITS):
        raise _unsupported(path, "init_lora_weights", init, "this initialisation also changes the base weights")
    try:
        return LoraConfig(
            r=cfg["r"], alpha=cfg.get("lora_alpha", 8),  # 8 is PEFT's default lora_alpha
            dropout=cfg.get("lora_dropout", 0.0) or 0.0, target_modules=tuple(targets),
            init="gaussian" if str(init).lower() == "gaussian" else "kaiming", use_rslora=bool(cfg.get("use_rslora", False)),
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


def load_adapter(model: nn.Module, directory: str | os.PathLike, seed: int = 0) -> nn.Module:
    """Load an adapter folder into ``model`` (in place); returns ``model``.

    On a model without LoRA, LoRA is applied first from adapter_config.json (r, lora_alpha,
    lora_dropout, target_modules, use_rslora).  On a model with LoRA, its layers must have the
    file's r, alpha and rsLoRA setting (dropout may differ: it does not change the function).
    Every tensor name and shape must fit; otherwise a ValueError names the file and the offending
    keys, and the model is left unchanged.  Merged layers are loaded and stay merged.
    """
    directory = Path(directory)
    config_path = directory / CONFIG_NAME
    config = read_adapter_config(directory)
    arrays, _ = load_arrays(directory / WEIGHTS_NAME)
    layers = lora_layers(model)
    if layers:
        for name, layer in layers:
            if (layer.r != config.r or layer.use_rslora != config.use_rslora
                    or not math.isclose(layer.scaling, config.scaling, rel_tol=1e-12)):
                raise ValueError(
                    f"{config_path}: adapter has r={config.r}, lora_alpha={config.lora_alpha}, "
                    f"use_rslora={config.use_rslora} but the model's LoRA layer {name} has r={layer.r}, "
                    f"alpha={layer.lora_alpha}, use_rslora={layer.use_rslora}"
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
    _check_arrays(directory / WEIGHTS_NAME, arrays, expected)
    if not layers:
        apply_lora(model, config, seed=seed)
    for name, layer in lora_layers(model):
        was_merged = layer.merged
        layer.unmerge()
        for param, matrix in ((layer.lora_A, "A"), (layer.lora_B, "B")):
            host = np.ascontiguousarray(arrays[peft_key(name, matrix)], dtype=param.dtype)
            param.data = backend.to_device(host.copy(), param.device)
        if was_merged:
            layer.merge()
    return model
