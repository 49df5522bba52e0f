"""One run of the intrinsic-dimension sweeps (``intrinsic.py`` runs many): a zoo model, "random" or a model file,
prepared by a method of the registry and trained; the test metric reported, the validation metric to choose on."""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping
from typing import Any

from minilora.data import get_task
from minilora.experiments.methods import get_method
from minilora.experiments.runs import load_base
from minilora.experiments.spec import RunSpec
from minilora.models.gpt import GPT
from minilora.models.zoo import RECIPES, pretrained, zoo_member
from minilora.train import TrainingDiverged, train

__all__ = ["RANDOM", "SELECTED_ON", "SHIPPED", "STEP", "base_model", "pretrain_metric", "run_one", "zoo_base"]

SELECTED_ON = "validation"  # the split every choice is made on (every method's learning rate)
RANDOM = "random"  # base name: the skills architecture from random initialisation (seeded by the run's seed)
SHIPPED = "skills"  # the zoo family every base comes from
STEP = "@step="  # a base "<recipe>@step=S": the snapshot of that recipe's run after S steps


def zoo_base(step: int | None = None, n_embd: int | None = None, pretrain_seed: int | None = None) -> str:
    """The base name of a zoo model of the skills family, as run specs store it: the recipe's name ("skills",
    "skills-width-32", "skills-seed-1"), or "<recipe>@step=S" for a snapshot of its run before the last step.

    The shipped model is "skills" whichever way it is asked for (n_embd=64, step=9000, pretrain_seed=0), so every
    experiment that uses it shares its runs.  A combination the zoo lacks is a one-line ValueError.
    """
    member, step = zoo_member(SHIPPED, n_embd=n_embd, step=step, pretrain_seed=pretrain_seed)
    return member if step is None or step == RECIPES[member].steps else f"{member}{STEP}{step}"


def base_model(base: str, seed: int) -> Any:
    """The model a run starts from: a zoo name (``zoo_base``), a model file, or "random": the skills architecture
    with init seed ``seed``."""
    if base == RANDOM:
        return GPT(load_base(SHIPPED).config, seed=seed)
    if STEP in base:
        name, step = base.split(STEP)
        return pretrained(name, step=int(step))
    return load_base(base)


def pretrain_metric(base: str) -> float:
    """How well a zoo base does its own pretraining task (the skills recipe's task, test split): where along its
    pretraining a snapshot stands, or whether a replica met the shipped model's criterion."""
    task = get_task(RECIPES[SHIPPED].task)
    return float(task.evaluate(base_model(base, 0), split="test")[task.metric])


def _train_result(model: Any, spec: RunSpec) -> dict[str, Any]:
    """Train ``model``'s trainable parameters on the spec's task and budget: the test metric (what is reported), the
    validation metric (what the learning rate is chosen on), and whether it diverged."""
    task = get_task(spec.task, **spec.task_kwargs)
    start = time.perf_counter()
    try:
        result = train(model, task, spec.train, desc=f"{spec.method} {spec.settings.get('d', '')}")
    except TrainingDiverged as err:  # a non-finite loss: a miss at this lr, not a failed sweep
        return {"metric": None, "validation_metric": None, "metric_name": task.metric, "diverged": True,
                "diverged_at": err.step, "final_loss": None, "seconds": time.perf_counter() - start,
                "trainable": model.num_parameters(trainable_only=True)}
    losses = [h["loss"] for h in result.history]
    metric = result.final_metrics[task.metric]
    validation = task.evaluate(model, split=SELECTED_ON)[task.metric]
    return {"metric": float(metric), "validation_metric": float(validation), "metric_name": task.metric,
            "diverged": False, "diverged_at": None,
            "final_loss": statistics.fmean(losses[-max(1, len(losses) // 20):]), "seconds": result.seconds,
            "trainable": result.trainable_parameters}


def run_one(job: Mapping[str, Any]) -> dict[str, Any]:
    """Run one job of the intrinsic-dimension sweeps in this process (the sweep's ``run_one``).

    {"run": a RunSpec}: the base (a zoo name, "random" or a model file) prepared by the run's method (the registry:
    "subspace" θ = θ0 + P z, "full", "lora") and trained.  Everything is seeded by the run's seed.
    """
    spec = RunSpec.from_json(job["run"])
    model = base_model(spec.base, spec.train.seed)
    total = model.num_parameters()
    model = get_method(spec.method).prepare(model, spec.settings, seed=spec.train.seed)
    return {**_train_result(model, spec), "D": total}
