"""GPT model files: a model's weights and architecture in one safetensors file.

Arrays are named ``model.<parameter path>``; the metadata holds the architecture (``GPTConfig``) as JSON.
Loading builds the GPT it describes and checks every name and shape, saying which ones do not fit.
(The resumable training state of any Module is ``minilora/train_state.py``.)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from minilora.io import load_arrays, save_arrays, strip_prefix
from minilora.models.gpt import GPT, GPTConfig

__all__ = ["save_model", "load_model", "resolve_model_path", "snapshot_path"]

FORMAT = "minilora-checkpoint-v1"
MODEL_FILE = "model.safetensors"
SNAPSHOT_DIR = "steps"  # a run folder's snapshots along training: steps/step-<S>.safetensors


def snapshot_path(folder: str | os.PathLike, step: int) -> Path:
    """Where a run saves its weights after ``step`` steps: ``<folder>/steps/step-<step>.safetensors``."""
    return Path(folder) / SNAPSHOT_DIR / f"step-{step}.safetensors"


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
        raise ValueError(f"{path} is not a minilora model checkpoint (metadata format {meta.get('format')!r}, "
                         f"expected {FORMAT!r})")
    try:
        config = GPTConfig(**meta["config"])
    except (TypeError, ValueError) as err:  # unknown or invalid architecture fields
        raise ValueError(f"{path}: bad model config in metadata: {err}") from None
    model = GPT(config, device=device)
    try:
        model.load_state_dict(strip_prefix(arrays, "model."))
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    return model
