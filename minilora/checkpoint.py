"""Checkpoints: a model's weights and architecture (and, while training, everything needed to resume).

One safetensors file holds arrays named ``model.<parameter path>`` (and ``optim.<parameter path>.<buffer>``
for a resumable training checkpoint); its metadata holds the architecture, the step and the random
generators' states as JSON.  Loading checks every name and shape and says which ones do not fit.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from minilora.io import load_arrays, save_arrays
from minilora.models.gpt import GPT, GPTConfig
from minilora.nn import Module
from minilora.optim import Optimizer

__all__ = ["save_model", "load_model", "save_training_state", "load_training_state", "resolve_model_path"]

FORMAT = "minilora-checkpoint-v1"
MODEL_FILE = "model.safetensors"


def _split(arrays: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}


def save_model(path: str | os.PathLike, model: GPT, extra: dict[str, Any] | None = None) -> None:
    """Write a GPT's weights and config to ``path`` (safetensors, atomic, from host arrays)."""
    arrays = {f"model.{k}": v for k, v in model.state_dict().items()}
    meta = {"format": FORMAT, "config": model.config.to_dict(), **(extra or {})}
    save_arrays(path, arrays, meta)


def resolve_model_path(path: str | os.PathLike) -> Path:
    """A model file, or a run folder containing ``model.safetensors``."""
    path = Path(path)
    return path / MODEL_FILE if path.is_dir() else path


def load_model(path: str | os.PathLike, device: str | None = None) -> GPT:
    """Build the GPT described in a checkpoint and load its weights (strict: every name and shape must fit)."""
    path = resolve_model_path(path)
    arrays, meta = load_arrays(path)
    if meta.get("format") != FORMAT or "config" not in meta:
        raise ValueError(f"{path} is not a minilora model checkpoint (metadata format {meta.get('format')!r}, expected {FORMAT!r})")
    try:
        config = GPTConfig(**meta["config"])
    except (TypeError, ValueError) as err:  # unknown or invalid architecture fields
        raise ValueError(f"{path}: bad model config in metadata: {err}") from None
    model = GPT(config, device=device)
    try:
        model.load_state_dict(_split(arrays, "model."))
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    return model


def save_training_state(path: str | os.PathLike, model: Module, optimizer: Optimizer, state: dict[str, Any]) -> None:
    """Write weights, optimizer moments and ``state`` (step, RNG states, history) for ``resume``."""
    names = {id(p): name for name, p in model.named_parameters()}
    arrays = {f"model.{k}": v for k, v in model.state_dict().items()}
    arrays.update({f"optim.{k}": v for k, v in optimizer.state_dict(names).items()})
    save_arrays(path, arrays, {"format": FORMAT + "-train", **state})


def load_training_state(path: str | os.PathLike, model: Module, optimizer: Optimizer) -> dict[str, Any]:
    """Restore what ``save_training_state`` wrote into ``model`` and ``optimizer``; returns ``state``."""
    arrays, meta = load_arrays(path)
    if meta.get("format") != FORMAT + "-train":
        raise ValueError(f"{path} is not a minilora training checkpoint (format {meta.get('format')!r})")
    try:
        model.load_state_dict(_split(arrays, "model."))
        optimizer.load_state_dict(_split(arrays, "optim."), dict(model.named_parameters()))
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    return meta
