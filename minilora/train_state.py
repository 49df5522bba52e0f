"""The resumable training state of any Module: weights, optimizer moments, step, RNG states and history.

One safetensors file holds arrays named ``model.<parameter path>`` and ``optim.<parameter path>.<buffer>``;
its metadata holds ``state`` (the step, the random generators' states, the history so far) as JSON.  It
knows Modules and Optimizers, not which model they are, so pretraining, full fine-tuning, LoRA and subspace
runs all resume the same way.
"""

from __future__ import annotations

import os
from typing import Any

from minilora.io import load_arrays, load_metadata, save_arrays, strip_prefix
from minilora.nn import Module
from minilora.optim import Optimizer

__all__ = ["save_training_state", "load_training_state", "read_training_state", "TRAIN_STATE_FORMAT"]

TRAIN_STATE_FORMAT = "minilora-checkpoint-v1-train"


def save_training_state(path: str | os.PathLike, model: Module, optimizer: Optimizer, state: dict[str, Any]) -> None:
    """Write weights, optimizer moments and ``state`` (step, RNG states, history) for ``resume``."""
    names = {id(p): name for name, p in model.named_parameters()}
    arrays = {f"model.{k}": v for k, v in model.state_dict().items()}
    arrays.update({f"optim.{k}": v for k, v in optimizer.state_dict(names).items()})
    save_arrays(path, arrays, {"format": TRAIN_STATE_FORMAT, **state})


def _check_format(path: str | os.PathLike, meta: dict[str, Any]) -> None:
    if meta.get("format") != TRAIN_STATE_FORMAT:
        raise ValueError(f"{path} is not a minilora training checkpoint (format {meta.get('format')!r})")


def read_training_state(path: str | os.PathLike) -> dict[str, Any]:
    """The ``state`` of a training checkpoint without loading its arrays (to check a resume before any work)."""
    meta = load_metadata(path)
    _check_format(path, meta)
    return meta


def load_training_state(path: str | os.PathLike, model: Module, optimizer: Optimizer) -> dict[str, Any]:
    """Restore what ``save_training_state`` wrote into ``model`` and ``optimizer``; returns ``state``."""
    arrays, meta = load_arrays(path)
    _check_format(path, meta)
    try:
        model.load_state_dict(strip_prefix(arrays, "model."))
        optimizer.load_state_dict(strip_prefix(arrays, "optim."), dict(model.named_parameters()))
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    return meta
