"""What a fine-tuning run with adapters or a prefix saves: the trainable weights and the settings that made them.

PEFT's LoRA files (``adapter_config.json``, ``adapter_model.safetensors``) describe LoRA layers; bottleneck
adapters and minilora's prefixes are not those, so a run writes files of its own:

    alternative_config.json        {"method": "adapter" | "prefix", "settings": {...}, "base_model_name_or_path"}
    alternative_model.safetensors  every trainable weight under its name in the model
                                   (``blocks.0.attn.adapter.down.weight``, ``prefix_encoder.embedding``, ...);
                                   a prefix trained through its MLP is saved in that training form (P', W_1, W_2:
                                   a run can be continued); ``materialize_prefix`` gives the inference form

``load_alternative(model, folder)`` applies the method to a base model with the saved settings, then loads them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from minilora import backend, nn
from minilora.alternatives.bottleneck import AdapterConfig, apply_adapters
from minilora.alternatives.prefix import PrefixConfig, apply_prefix
from minilora.io import atomic_write_json, load_arrays, save_arrays

__all__ = ["ALT_CONFIG_NAME", "ALT_WEIGHTS_NAME", "apply_alternative", "load_alternative", "save_alternative"]

ALT_CONFIG_NAME = "alternative_config.json"
ALT_WEIGHTS_NAME = "alternative_model.safetensors"


def apply_alternative(model: nn.Module, method: str, settings: dict[str, Any], seed: int = 0) -> nn.Module:
    """``apply_adapters`` (method "adapter") or ``apply_prefix`` ("prefix") with ``settings`` as its config; the
    model records both as ``model.alternative`` (what ``save_alternative`` writes)."""
    if method == "adapter":
        model = apply_adapters(model, AdapterConfig(**settings), seed=seed)
    elif method == "prefix":
        model = apply_prefix(model, PrefixConfig(**settings), seed=seed)
    else:
        raise ValueError(f"unknown alternative method {method!r}; expected adapter or prefix")
    model.alternative = {"method": method, "settings": dict(settings)}
    return model


def save_alternative(model: nn.Module, folder: str | os.PathLike, base_model_name_or_path: str | None = None) -> Path:
    """Write the trainable weights of ``model`` (prepared by ``apply_alternative``) and its method and settings
    into ``folder``; returns the weights file's path.  Weights first, the config last, so a config on disk always
    has its weights."""
    if not isinstance(getattr(model, "alternative", None), dict):
        raise ValueError("save_alternative: the model was not prepared by apply_alternative (no adapters or prefix)")
    method, settings = model.alternative["method"], model.alternative["settings"]
    folder = Path(folder)
    weights = {name: np.array(backend.to_host(p.data)) for name, p in model.named_parameters() if p.requires_grad}
    save_arrays(folder / ALT_WEIGHTS_NAME, weights, metadata={"method": method})
    atomic_write_json(folder / ALT_CONFIG_NAME, {"method": method, "settings": settings,
                                                 "base_model_name_or_path": base_model_name_or_path})
    return folder / ALT_WEIGHTS_NAME


def load_alternative(model: nn.Module, folder: str | os.PathLike) -> nn.Module:
    """Apply the saved method to the base ``model`` (in place) and load the saved weights into it."""
    path = Path(folder) / ALT_CONFIG_NAME
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot read {path}: {err}") from None
    model = apply_alternative(model, config["method"], config["settings"])
    arrays, _ = load_arrays(Path(folder) / ALT_WEIGHTS_NAME)
    unknown = sorted(set(arrays) - {name for name, _ in model.named_parameters()})
    if unknown:
        raise ValueError(f"{folder}: weights {unknown[:3]} do not fit this model (another base model?)")
    model.load_state_dict(arrays, strict=False)
    return model
