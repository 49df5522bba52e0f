"""One adaptation run as a sweep job: what the LoRA-paper sweeps (rank, budget, similarity) hand to ``run_sweep``.

A job is a ``RunSpec`` (as JSON) plus what the analyses keep of the trained model, so that ``run_adaptation(job)``
can run it in any worker process and give the same numbers:

    {"run": {"task": "sort", "base": "skills", "method": "lora",          # RunSpec.to_json(): none | full | lora
             "settings": {"r": 8, "lora_alpha": 1.0, "use_rslora": false, "target_modules": [...], ...},
             "train": {"steps": 400, "batch_size": 64, "lr": 0.01, "seed": 0, ...}, "task_kwargs": {}},
     "keep": ["blocks.1.attn.q_proj"]}

The seed sets LoRA's A initialisation and the order of the training batches (these models and adapters
use no dropout, so nothing else is random).  ``keep`` names LoRA layers whose A and B are returned, for the
analyses of what ΔW learns.  ``summarize_seeds`` turns the per-seed results into mean and spread.

A job may also ask for more measurements with a ``"measure"`` key (only jobs that have it get it, so the cached
keys and results of the jobs above never change; ``adaptation_spec(..., measure=...)`` adds it):

    "measure": {"validation": true,          # the metric on the validation split too (to choose settings on)
                "retained_n_eval": 200}      # skill tasks: accuracy on each pretraining skill's test split
                                             # (n_eval inputs each): what fine-tuning kept (0: not measured)

and such a run also reports its cost (trainable numbers, AdamW state bytes, median step time) and reports a
diverged run (NaN loss) as ``"diverged": true`` with no metric, instead of failing the sweep: a learning-rate grid
reaches rates where some methods diverge, and that is a result.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from minilora.backend import to_device
from minilora.data import PRETRAIN_SKILLS, SKILLS, get_task
from minilora.engine.tensor import Tensor
from minilora.experiments.measure import median_ms
from minilora.experiments.methods import get_method
from minilora.experiments.runs import load_base
from minilora.experiments.spec import RunSpec
from minilora.experiments.sweep import spec_key
from minilora.lora import count_parameters, lora_layers, lora_scaling
from minilora.nn import Module
from minilora.train import (
    TrainConfig,
    TrainingDiverged,
    default_warmup_steps,
    make_optimizer,
    train,
    train_step,
)

__all__ = ["MEASURES", "REPORTED_ON", "adaptation_spec", "optimizer_state_bytes", "own_outcomes", "run_adaptation",
           "retained_accuracy", "run_of", "summarize_seeds"]

REPORTED_ON = "test"  # every number of the LoRA-paper analyses is measured on the task's test split
MEASURES = {"validation": False, "retained_n_eval": 0}  # what a job's "measure" may ask for, and the defaults


def adaptation_spec(task: str, base: str, method: str, seed: int, steps: int, lr: float,
                    settings: Mapping[str, Any] | None = None, batch_size: int = 64,
                    task_kwargs: Mapping[str, Any] | None = None, keep: Sequence[str] = (),
                    measure: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The job of one run (see the module docstring): AdamW for ``steps`` steps at peak ``lr``, warm-up
    ``default_warmup_steps(steps)`` then cosine, no weight decay, seeded by ``seed``; ``settings`` are the method's
    (checked by the registry).  "none" trains nothing: its training settings are fixed (one run for every seed).
    ``measure`` (keys of ``MEASURES``) asks for the extra measurements; None leaves the job as it always was."""
    if get_method(method).trains:
        config = TrainConfig(steps=int(steps), batch_size=int(batch_size), lr=float(lr),
                             warmup_steps=default_warmup_steps(int(steps)), weight_decay=0.0, seed=int(seed))
    else:
        config = TrainConfig(batch_size=int(batch_size), seed=0)  # unused: nothing trains
    run = RunSpec.make(task, base, method, config, settings, task_kwargs)
    if keep and method != "lora":
        raise ValueError(f"adaptation_spec: keep names LoRA layers; method {method!r} has none")
    job = {"run": run.to_json(), "keep": list(keep)}
    if measure is not None:
        job["measure"] = _check_measure(measure, task)
    return job


def _check_measure(measure: Mapping[str, Any], task: str) -> dict[str, Any]:
    """``measure`` with ``MEASURES``' defaults filled in; an unknown key or bad value is a one-line ValueError."""
    unknown = [k for k in measure if k not in MEASURES]
    if unknown:
        raise ValueError(f"measure: unknown key {unknown[0]!r}; expected some of {list(MEASURES)}")
    filled = {**MEASURES, **measure}
    if not isinstance(filled["validation"], bool):
        raise ValueError(f"measure: validation must be True or False, got {filled['validation']!r}")  # noqa: TRY004
    n = filled["retained_n_eval"]
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"measure: retained_n_eval must be an integer >= 0, got {n!r}")
    if n and task not in SKILLS:
        raise ValueError(f"measure: retained_n_eval needs a skill task (the pretraining skills are skills), "
                         f"got task {task!r}")
    return filled


def run_of(job: Mapping[str, Any]) -> dict[str, Any]:
    """The run spec (as JSON) of an adaptation job or of a ``run_sweep`` outcome of one."""
    return job["spec"]["run"] if "spec" in job else job["run"]


def run_adaptation(job: Mapping[str, Any]) -> dict[str, Any]:
    """Run one job: load the base, choose what trains (the method registry), train, evaluate on the test split.

    Returns {"metric", "value" (the task's headline metric), "trainable_params", "scaling" (LoRA's s),
    "final_loss" (mean training loss of the last 5% of steps), "seconds", "kept": {layer: {"A", "B"}}}.
    A job with ``"measure"`` (see the module docstring) adds {"validation" (the metric on that split, or None),
    "retained" ({skill: test accuracy} of the pretraining skills, or None), "optimizer_bytes", "step_ms",
    "diverged"}; a diverged run has "value", "validation" and "retained" None.
    """
    spec = RunSpec.from_json(job["run"])
    task = get_task(spec.task, **spec.task_kwargs)
    method = get_method(spec.method)
    model = method.prepare(load_base(spec.base), spec.settings, seed=spec.train.seed)
    measure = job.get("measure")
    scaling = None
    if spec.method == "lora":
        s = spec.settings
        scaling = lora_scaling(s["r"], s["lora_alpha"], s["use_rslora"])
    final_loss, seconds, history = None, 0.0, []
    extra: dict[str, Any] = {}
    if measure is not None:
        extra = {"optimizer_bytes": optimizer_state_bytes(model, task, spec.train) if method.trains else 0,
                 "step_ms": None, "diverged": False}
    if not method.trains:
        metrics = task.evaluate(model, split=REPORTED_ON)
    else:
        try:
            result = train(model, task, spec.train, desc=f"{spec.method} {spec.task}")
        except TrainingDiverged:
            if measure is None:
                raise
            return {"metric": task.metric, "value": None, "trainable_params": method.trainable(model),
                    "scaling": scaling, "final_loss": None, "seconds": 0.0, "kept": {}, **extra,
                    "diverged": True, "validation": None, "retained": None}
        history = result.history
        losses = [h["loss"] for h in history]
        final_loss, seconds, metrics = (statistics.fmean(losses[-max(1, len(losses) // 20):]), result.seconds,
                                        result.final_metrics)
    layers = dict(lora_layers(model))
    missing = [name for name in job["keep"] if name not in layers]
    if missing:
        raise ValueError(f"keep: {missing} are not LoRA layers of this run; LoRA layers: {sorted(layers)}")
    kept = {name: {"A": layers[name].lora_A.numpy().tolist(), "B": layers[name].lora_B.numpy().tolist()}
            for name in job["keep"]}
    if measure is not None:
        extra["step_ms"] = median_ms([h["seconds"] for h in history]) if history else None
        extra["validation"] = (float(task.evaluate(model, split="validation")[task.metric])
                               if measure["validation"] else None)
        extra["retained"] = retained_accuracy(model, measure["retained_n_eval"])
    return {"metric": task.metric, "value": float(metrics[task.metric]),
            "trainable_params": count_parameters(model).trainable if method.trains else 0,
            "scaling": scaling, "final_loss": final_loss, "seconds": seconds, "kept": kept, **extra}


def retained_accuracy(model: Module, n_eval: int) -> dict[str, float] | None:
    """What a fine-tuned skills model kept of pretraining (Biderman et al. 2024, "LoRA learns less and forgets
    less"): {skill: exact-match accuracy on its test split} for each of ``PRETRAIN_SKILLS``, ``n_eval`` held-out
    inputs each (the same inputs for every run); None when ``n_eval`` is 0."""
    if not n_eval:
        return None
    mixture = get_task("pretrain", n_eval=n_eval).evaluate(model, split=REPORTED_ON)
    return {skill: float(mixture["by_skill"][skill]["accuracy"]) for skill in PRETRAIN_SKILLS}


def optimizer_state_bytes(model: Module, task: Any, config: TrainConfig) -> int:
    """Bytes of the run's AdamW state, read from a real optimizer: the run's own (``make_optimizer``, so LoRA+'s
    groups too) after one step at learning rate 0 on one batch (p − 0·update = p: the weights do not move).  AdamW
    keeps m and v for every parameter that gets a gradient: 2 · 4 bytes per trained float32 number, none for a
    frozen one (LoRA-FA's A, a 4-bit base)."""
    optimizer = make_optimizer(model, config)
    for group in optimizer.param_groups:
        group["lr"] = 0.0
    x, y = task.sample_batch(np.random.default_rng(config.seed), config.batch_size)
    model.train()
    train_step(model, optimizer, to_device(x, model.device), Tensor(to_device(y, model.device)), 0.0)
    optimizer.zero_grad()
    return optimizer.state_bytes()


def summarize_seeds(values: Sequence[float]) -> dict[str, Any]:
    """Mean and spread over seeds: {"values", "mean", "std" (sample standard deviation, 0 for one value),
    "min", "max", "n"}."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError("summarize_seeds: no values")
    return {"values": values, "mean": statistics.fmean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values), "n": len(values)}


def own_outcomes(specs: Sequence[Mapping[str, Any]], outcomes: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The entries of ``run_sweep``'s ``outcomes`` that belong to ``specs`` (one sweep may run several
    experiments at once); a ValueError names the first spec without an outcome."""
    by_key = {o["key"]: o for o in outcomes}
    missing = [spec for spec in specs if spec_key(spec) not in by_key]
    if missing:
        raise ValueError(f"no outcome for spec {missing[0]!r} ({len(missing)} missing); run these specs first")
    return [by_key[spec_key(spec)] for spec in specs]
