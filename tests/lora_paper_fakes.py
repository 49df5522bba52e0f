"""Tiny settings of the LoRA-paper experiments and made-up outcomes with known answers (no training)."""

from __future__ import annotations

from typing import Any

import numpy as np

from minilora.experiments.budget import BUDGET_GROUPS, Budget
from minilora.experiments.rank_sweep import RankSweep
from minilora.experiments.similarity import Similarity
from minilora.experiments.sweep import spec_key

QUICK = (("n_eval", 10),)
TINY: dict[str, Any] = {
    "rank": RankSweep(tasks=(("reverse-shift", "skills"), ("first-names", "names")), ranks=(1, 2), steps=2,
                      skill_task_kwargs=QUICK),
    "budget": Budget(tasks=(("subtract", "skills"),), groups=(BUDGET_GROUPS[0], BUDGET_GROUPS[4], BUDGET_GROUPS[6]),
                     steps=2, skill_task_kwargs=QUICK),
    "similarity": Similarity(small_rank=2, large_rank=4, amplification_ranks=(2,), steps=2, skill_task_kwargs=QUICK),
}
K = 64  # in_features of W_q and W_v of the skills model


def constructed_a(rank: int, seed: int) -> np.ndarray:
    """A (rank × K) whose two strongest rows are 10·(the first two columns of a seed's random orthonormal basis)
    and whose others are 0.1·(the next columns): the top-2 subspace depends on the seed only, not on the rank."""
    q, _ = np.linalg.qr(np.random.default_rng(100 + seed).standard_normal((K, K)))
    scale = np.array([10.0, 9.0] + [0.1] * (rank - 2))[:rank]
    return scale[:, None] * q[:, :rank].T


def fake_result(job: dict[str, Any]) -> dict[str, Any]:
    """A made-up result: value = 0.1·rank (0.5 for full, 0 for none) + 0.01·seed; kept A from ``constructed_a``."""
    run = job["run"]
    r, seed = run["settings"].get("r"), run["train"]["seed"]
    value = {"none": 0.0, "full": 0.5}.get(run["method"], 0.1 * (r or 0)) + 0.01 * seed
    kept = {}
    for path in job["keep"]:
        b = np.random.default_rng(7).standard_normal((K, r)) * 0.01  # (d, r) with d = K for W_q, W_v
        kept[path] = {"A": constructed_a(r, seed).tolist(), "B": b.tolist()}
    return {"metric": "accuracy", "value": value, "trainable_params": 10 * (r or 0), "scaling": 1.0,
            "final_loss": 1.0, "seconds": 0.5, "kept": kept}


def fake_outcomes(experiments: dict[str, Any]) -> list[dict[str, Any]]:
    """``run_sweep``-shaped outcomes of every spec of ``experiments``, from ``fake_result``."""
    specs = [spec for e in experiments.values() for spec in e.specs()]
    return [{"spec": spec, "result": fake_result(spec), "key": spec_key(spec)} for spec in specs]


def fake_results(experiments: dict[str, Any] = TINY) -> dict[str, dict[str, Any]]:
    """name → the experiment's JSON, summarised from fake outcomes (what ``lora_paper`` would write)."""
    outcomes = fake_outcomes(experiments)
    sweep = {"specs": len(outcomes), "computed": len(outcomes), "wall_seconds": 1.0, "jobs": 1, "executor": None,
             "fast": False, "threads": {}}
    return {name: {**e.summarize(outcomes), "sweep": sweep} for name, e in experiments.items()}
