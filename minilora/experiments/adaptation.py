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
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from minilora.data import get_task
from minilora.experiments.methods import get_method
from minilora.experiments.runs import load_base
from minilora.experiments.spec import RunSpec
from minilora.experiments.sweep import spec_key
from minilora.lora import count_parameters, lora_layers, lora_scaling
from minilora.train import TrainConfig, default_warmup_steps, train

__all__ = ["REPORTED_ON", "adaptation_spec", "own_outcomes", "run_adaptation", "run_of", "summarize_seeds"]

REPORTED_ON = "test"  # every number of the LoRA-paper analyses is measured on the task's test split


def adaptation_spec(task: str, base: str, method: str, seed: int, steps: int, lr: float,
                    settings: Mapping[str, Any] | None = None, batch_size: int = 64,
                    task_kwargs: Mapping[str, Any] | None = None, keep: Sequence[str] = ()) -> dict[str, Any]:
    """The job of one run (see the module docstring): AdamW for ``steps`` steps at peak ``lr``, warm-up
    ``default_warmup_steps(steps)`` then cosine, no weight decay, seeded by ``seed``; ``settings`` are the method's
    (checked by the registry).  "none" trains nothing: its training settings are fixed (one run for every seed)."""
    if get_method(method).trains:
        config = TrainConfig(steps=int(steps), batch_size=int(batch_size), lr=float(lr),
                             warmup_steps=default_warmup_steps(int(steps)), weight_decay=0.0, seed=int(seed))
    else:
        config = TrainConfig(batch_size=int(batch_size), seed=0)  # unused: nothing trains
    run = RunSpec.make(task, base, method, config, settings, task_kwargs)
    if keep and method != "lora":
        raise ValueError(f"adaptation_spec: keep names LoRA layers; method {method!r} has none")
    return {"run": run.to_json(), "keep": list(keep)}


def run_of(job: Mapping[str, Any]) -> dict[str, Any]:
    """The run spec (as JSON) of an adaptation job or of a ``run_sweep`` outcome of one."""
    return job["spec"]["run"] if "spec" in job else job["run"]


def run_adaptation(job: Mapping[str, Any]) -> dict[str, Any]:
    """Run one job: load the base, choose what trains (the method registry), train, evaluate on the test split.

    Returns {"metric", "value" (the task's headline metric), "trainable_params", "scaling" (LoRA's s),
    "final_loss" (mean training loss of the last 5% of steps), "seconds", "kept": {layer: {"A", "B"}}}.
    """
    spec = RunSpec.from_json(job["run"])
    task = get_task(spec.task, **spec.task_kwargs)
    method = get_method(spec.method)
    model = method.prepare(load_base(spec.base), spec.settings, seed=spec.train.seed)
    scaling = None
    if spec.method == "lora":
        s = spec.settings
        scaling = lora_scaling(s["r"], s["lora_alpha"], s["use_rslora"])
    final_loss, seconds = None, 0.0
    if not method.trains:
        metrics = task.evaluate(model, split=REPORTED_ON)
    else:
        result = train(model, task, spec.train, desc=f"{spec.method} {spec.task}")
        losses = [h["loss"] for h in result.history]
        final_loss, seconds, metrics = (statistics.fmean(losses[-max(1, len(losses) // 20):]), result.seconds,
                                        result.final_metrics)
    layers = dict(lora_layers(model))
    missing = [name for name in job["keep"] if name not in layers]
    if missing:
        raise ValueError(f"keep: {missing} are not LoRA layers of this run; LoRA layers: {sorted(layers)}")
    kept = {name: {"A": layers[name].lora_A.numpy().tolist(), "B": layers[name].lora_B.numpy().tolist()}
            for name in job["keep"]}
    return {"metric": task.metric, "value": float(metrics[task.metric]),
            "trainable_params": count_parameters(model).trainable if method.trains else 0,
            "scaling": scaling, "final_loss": final_loss, "seconds": seconds, "kept": kept}


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
