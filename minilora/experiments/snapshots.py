"""Pretraining with snapshots: the skills recipe rerun (or at another width or length), saving its weights at chosen
steps, for the intrinsic-dimension experiments along pretraining and across widths."""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import reduce
from pathlib import Path
from typing import Any

import numpy as np

from minilora.data import get_task
from minilora.experiments.runs import load_base
from minilora.models.checkpoint import save_model
from minilora.models.configs import model_config
from minilora.models.gpt import GPT
from minilora.train import TrainConfig, train

__all__ = ["pretrain_with_snapshots"]


def pretrain_with_snapshots(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Pretrain a GPT with the spec's recipe settings, saving its weights at each of ``spec["snapshots"]`` steps."""
    task = get_task(spec["task"])
    config = model_config(spec["size"], task.tokenizer.vocab_size, block_size=spec["block_size"], n_embd=spec["n_embd"])
    model = GPT(config, seed=spec["seed"])
    folder = Path(spec["dir"])
    snapshots = sorted(spec["snapshots"])
    files: dict[str, str] = {}
    metrics: dict[str, float] = {}

    def keep(step: int, evaluation: dict[str, Any]) -> None:
        if step in snapshots:
            path = folder / f"step-{step}.safetensors"
            save_model(path, model, extra={"pretrain_step": step})
            files[str(step)], metrics[str(step)] = str(path), float(evaluation[task.metric])

    train_config = TrainConfig(steps=spec["steps"], batch_size=spec["batch_size"], lr=spec["lr"],
                               warmup_steps=spec["warmup"], weight_decay=spec["weight_decay"], seed=spec["seed"],
                               eval_every=reduce(math.gcd, snapshots))
    train(model, task, train_config, desc=f"pretrain n_embd={spec['n_embd']}", on_eval=keep)
    shipped = _equals_shipped(model) if spec.get("compare_shipped") else None
    return {"files": files, "metrics": metrics, "parameters": model.num_parameters(), "equals_shipped": shipped}


def _equals_shipped(model: Any) -> bool:
    """Whether ``model``'s weights are bit for bit those of the shipped skills model."""
    shipped = load_base("skills").state_dict()
    mine = model.state_dict()
    return shipped.keys() == mine.keys() and all(np.array_equal(shipped[k], mine[k]) for k in mine)
