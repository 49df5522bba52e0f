"""Does a tiny rank suffice?  The LoRA paper's Table 6 with seeds: accuracy against r, with α/r and α/√r.

For each task: the base model without fine-tuning, full fine-tuning, and LoRA at every rank r (on the same
modules) with a fixed α and two scalings of the update ΔW = s·B A:

    plain   s = α / r          (the paper: α is "the first r we try" and not tuned)
    rsLoRA  s = α / sqrt(r)    (Kalajdzievski 2023: α/r shrinks the update of large ranks too much)

With α = 1 both start at s = 1 for r = 1 (where the learning rate was tuned) and part as r grows.  Every
trained configuration runs once per seed; the JSON holds each seed's value and their mean and spread.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from minilora.data.skills import SKILLS
from minilora.experiments.adaptation import (
    REPORTED_ON,
    adaptation_spec,
    own_outcomes,
    run_of,
    summarize_seeds,
)
from minilora.experiments.methods import DEFAULT_TARGETS
from minilora.experiments.results import RANK_SWEEP_FILE

__all__ = ["RANK_SWEEP_FILE", "RankSweep"]

SCALINGS = {False: "alpha/r", True: "alpha/sqrt(r)"}


@dataclass(frozen=True)
class RankSweep:
    """The settings of a rank sweep; ``specs()`` lists its runs, ``summarize(outcomes)`` builds its JSON.

    ``tasks`` are (task, pretrained base) pairs; ``task_kwargs`` go to ``get_task`` for skill tasks
    (e.g. {"n_eval": 100} for a quicker evaluation).  Ranks must be ≤ min(d, k) of every target.
    """

    tasks: tuple[tuple[str, str], ...] = (("reverse-shift", "skills"), ("sort", "skills"), ("first-names", "names"))
    ranks: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
    seeds: tuple[int, ...] = (0, 1, 2)
    steps: int = 400
    lr_full: float = 3e-3
    lr_lora: float = 1e-2
    alpha: float = 1.0
    targets: tuple[str, ...] = DEFAULT_TARGETS
    batch_size: int = 64
    skill_task_kwargs: tuple[tuple[str, Any], ...] = ()

    def _kwargs(self, task: str) -> dict[str, Any]:
        """``skill_task_kwargs`` for a skill task; none for the names tasks (their held-out set is fixed)."""
        return dict(self.skill_task_kwargs) if task in SKILLS else {}

    def specs(self) -> list[dict[str, Any]]:
        """none (once per task: evaluation is deterministic), then per seed: full, LoRA plain and rsLoRA per rank
        (rsLoRA at r = 1 is the plain run: α/√1 = α/1, so it is not run twice)."""
        specs = []
        for task, base in self.tasks:
            common = {"task": task, "base": base, "batch_size": self.batch_size, "task_kwargs": self._kwargs(task)}
            specs.append(adaptation_spec(method="none", seed=0, steps=0, lr=1.0, **common))
            for seed in self.seeds:
                specs.append(adaptation_spec(method="full", seed=seed, steps=self.steps, lr=self.lr_full, **common))
                for rslora in (False, True):
                    for r in self.ranks:
                        if rslora and r == 1:
                            continue
                        settings = {"r": r, "lora_alpha": self.alpha, "use_rslora": rslora,
                                    "target_modules": self.targets}
                        specs.append(adaptation_spec(method="lora", seed=seed, steps=self.steps, lr=self.lr_lora,
                                                     settings=settings, **common))
        return specs

    def summarize(self, outcomes: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """The JSON of the sweep: one row per (task, method, scaling, rank) with per-seed values, mean and spread.

        ``outcomes`` are ``run_sweep``'s entries for ``specs()`` (others are ignored).  The rsLoRA row at r = 1 reuses
        the plain runs.
        """
        by_key: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
        for o in own_outcomes(self.specs(), outcomes):
            by_key[_row_key(o)].append(o)
        rows = []
        for task, _ in self.tasks:
            groups = [("none", None, None), ("full", None, None)]
            groups += [("lora", rslora, r) for rslora in (False, True) for r in self.ranks]
            for method, rslora, r in groups:
                found = by_key.get((task, method, False if rslora is not None and r == 1 else rslora, r), [])
                if not found:
                    raise ValueError(f"rank sweep: no runs for {task} {method} r={r} rslora={rslora}")
                first = found[0]["result"]
                rows.append({"task": task, "method": method, "rank": r,
                             "scaling": None if rslora is None else SCALINGS[rslora],
                             "s": first["scaling"],
                             "metric": first["metric"], "trainable_params": first["trainable_params"],
                             "seeds": [run_of(o)["train"]["seed"] for o in found],
                             **summarize_seeds([o["result"]["value"] for o in found]),
                             "final_loss": (None if method == "none"
                                            else summarize_seeds([o["result"]["final_loss"] for o in found])["mean"]),
                             "seconds": summarize_seeds([o["result"]["seconds"] for o in found])["mean"]})
        return {"experiment": "rank-sweep", "settings": {**asdict(self), "task_kwargs": dict(self.skill_task_kwargs)},
                "reported_on": REPORTED_ON, "rows": rows}


def _row_key(outcome: dict[str, Any]) -> tuple[str, str, bool | None, int | None]:
    run = run_of(outcome)
    return run["task"], run["method"], run["settings"].get("use_rslora"), run["settings"].get("r")
