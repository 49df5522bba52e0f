"""A tiny LoRA-family setting and made-up outcomes with known answers (no training), shared by the family tests."""

from __future__ import annotations

from typing import Any

from minilora.data import PRETRAIN_SKILLS
from minilora.experiments.family import LoraFamily
from minilora.experiments.sweep import spec_key

LRS = (1e-3, 1e-2, 1e-1)
TINY = LoraFamily(tasks=(("reverse-shift", "skills"), ("first-names", "names")), arms=("full", "lora", "lora-fa"),
                  lrs=LRS, ranks=(1, 4), seeds=(0, 1, 2), steps=2, skill_task_kwargs=(("n_eval", 10),),
                  retained_n_eval=5)


def fake_result(job: dict[str, Any], diverge: tuple[str, float] | None = None) -> dict[str, Any]:
    """Validation is best at lr 1e-2 (full: 1e-3), test is best at lr 1e-1: a choice made on test would differ.
    Seeds add 0.01·seed to test; retained accuracy falls with lr.  ``diverge`` = (method, lr) diverges."""
    run = job["run"]
    method, lr, seed = run["method"], run["train"]["lr"], run["train"]["seed"]
    names = run["task"] == "first-names"
    if method == "none":
        value, validation = 0.2, 0.2
    elif diverge is not None and (method, lr) == diverge:
        return {"metric": "bits_per_char" if names else "accuracy", "value": None, "validation": None,
                "retained": None, "diverged": True, "trainable_params": 10, "optimizer_bytes": 80, "step_ms": None,
                "final_loss": None, "seconds": 0.0, "kept": {}, "scaling": None}
    else:
        best_val = 1e-3 if method == "full" else 1e-2
        validation = 0.9 if lr == best_val else 0.5
        value = (0.95 if lr == 1e-1 else 0.6) + 0.01 * seed
    if names:  # bits per char: lower is better
        value, validation = 4 - value, 4 - validation
    r = run["settings"].get("r", 0)
    retained = None if names else {s: 1.0 if method == "none" else 1.0 - lr for s in PRETRAIN_SKILLS}
    return {"metric": "bits_per_char" if names else "accuracy", "value": value, "validation": validation,
            "retained": retained, "diverged": False, "trainable_params": 100 * (r or 10),
            "optimizer_bytes": 800 * (r or 10), "step_ms": 5.0, "final_loss": 1.0, "seconds": 1.0, "kept": {},
            "scaling": None}


def fake_outcomes(family: LoraFamily = TINY, diverge: tuple[str, float] | None = None) -> list[dict[str, Any]]:
    """``run_sweep``-shaped outcomes of both phases from ``fake_result``."""
    grid = [{"spec": s, "result": fake_result(s, diverge), "key": spec_key(s)} for s in family.grid_specs()]
    seeds = [{"spec": s, "result": fake_result(s, diverge), "key": spec_key(s)} for s in family.seed_specs(grid)]
    return grid + seeds


def fake_family_result(family: LoraFamily = TINY) -> dict[str, Any]:
    """The JSON ``lora_family`` would write for the fake outcomes."""
    outcomes = fake_outcomes(family)
    return {**family.summarize(outcomes), "sweep": {"specs": len(outcomes), "computed": len(outcomes),
                                                    "wall_seconds": 1.0, "jobs": 1}}
