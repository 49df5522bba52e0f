"""One adaptation run as a spec: what the LoRA-paper sweeps (rank, budget, similarity) hand to ``run_sweep``.

A spec is a plain dict that says everything about a run, so that ``run_adaptation(spec)`` can run it in any
worker process and give the same numbers:

    {"task": "sort", "task_kwargs": {}, "base": "skills", "method": "lora",      # "none" | "full" | "lora"
     "rank": 8, "alpha": 1.0, "rslora": false, "targets": ["q_proj", ...],       # LoRA only (None otherwise)
     "steps": 400, "batch_size": 64, "lr": 0.01, "seed": 0, "keep": []}

The seed sets LoRA's A initialisation and the order of the training batches (these models and adapters
use no dropout, so nothing else is random).  ``keep`` names LoRA layers whose A and B are returned, for the
analyses of what ΔW learns.  ``summarize_seeds`` turns the per-seed results into mean and spread.
"""

from __future__ import annotations

import statistics
from typing import Any, Mapping, Sequence

from minilora.data import get_task
from minilora.experiments.sweep import spec_key
from minilora.experiments.runs import DEFAULT_TARGETS, load_base
from minilora.lora import LoraConfig, apply_lora, count_parameters, lora_layers
from minilora.train import TrainConfig, train

__all__ = ["ADAPTATION_METHODS", "adaptation_spec", "run_adaptation", "summarize_seeds", "own_outcomes"]

ADAPTATION_METHODS = ("none", "full", "lora")


def adaptation_spec(task: str, base: str, method: str, seed: int, steps: int, lr: float, rank: int | None = None,
                    alpha: float | None = None, rslora: bool = False, targets: Sequence[str] = DEFAULT_TARGETS,
                    batch_size: int = 64, task_kwargs: Mapping[str, Any] | None = None,
                    keep: Sequence[str] = ()) -> dict[str, Any]:
    """The spec of one run (see the module docstring); LoRA fields are None for "none" and "full"."""
    if method not in ADAPTATION_METHODS:
        raise ValueError(f"unknown adaptation method {method!r}; expected one of {ADAPTATION_METHODS}")
    lora = method == "lora"
    if lora and rank is None:
        raise ValueError("adaptation_spec: method 'lora' needs a rank")
    return {"task": task, "task_kwargs": dict(task_kwargs or {}), "base": base, "method": method,
            "rank": int(rank) if lora else None, "alpha": (None if alpha is None else float(alpha)) if lora else None,
            "rslora": bool(rslora) if lora else None, "targets": list(targets) if lora else None,
            "steps": int(steps) if method != "none" else 0, "batch_size": int(batch_size),
            "lr": float(lr) if method != "none" else None, "seed": int(seed) if method != "none" else 0,
            "keep": list(keep) if lora else []}


def run_adaptation(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Run one spec: load the base, choose what trains, train, evaluate on the task's held-out set.

    Returns {"metric", "value" (the task's headline metric), "trainable_params", "scaling" (LoRA's s),
    "final_loss" (mean training loss of the last 5% of steps), "seconds", "kept": {layer: {"A", "B"}}}.
    """
    task = get_task(spec["task"], **spec["task_kwargs"])
    model = load_base(spec["base"])
    method, scaling = spec["method"], None
    if method == "lora":
        config = LoraConfig(r=spec["rank"], alpha=spec["alpha"], target_modules=tuple(spec["targets"]),
                            use_rslora=spec["rslora"])
        apply_lora(model, config, seed=spec["seed"])
        scaling = config.scaling
    elif method == "full":
        model.requires_grad_(True)
    elif method != "none":
        raise ValueError(f"unknown adaptation method {method!r}; expected one of {ADAPTATION_METHODS}")
    final_loss, seconds = None, 0.0
    if method == "none":
        metrics = task.evaluate(model)
    else:
        steps = spec["steps"]
        config = TrainConfig(steps=steps, batch_size=spec["batch_size"], lr=spec["lr"], warmup_steps=max(1, steps // 20),
                             weight_decay=0.0, seed=spec["seed"])
        result = train(model, task, config, desc=f"{method} {spec['task']}")
        losses = [h["loss"] for h in result.history]
        final_loss, seconds, metrics = statistics.fmean(losses[-max(1, steps // 20):]), result.seconds, result.final_metrics
    layers = dict(lora_layers(model))
    missing = [name for name in spec["keep"] if name not in layers]
    if missing:
        raise ValueError(f"keep: {missing} are not LoRA layers of this run; LoRA layers: {sorted(layers)}")
    kept = {name: {"A": layers[name].lora_A.numpy().tolist(), "B": layers[name].lora_B.numpy().tolist()}
            for name in spec["keep"]}
    return {"metric": task.metric, "value": float(metrics[task.metric]),
            "trainable_params": count_parameters(model).trainable if method != "none" else 0,
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
