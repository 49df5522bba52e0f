"""Which weights to adapt when the budget is fixed: the LoRA paper's Table 5 with seeds.

The same number of trainable parameters is spent on different weight types.  A rank-r adapter on a d×k
matrix costs r(d + k), so a budget P on the matrices M buys

    r = round(P / Σ_{m ∈ M} (d_m + k_m))       (at least 1)

On this model W_q, W_k, W_v, W_o are 64×64 (d + k = 128 per layer) and fc_in / fc_out are 256×64 and 64×256
(d + k = 320 each), so the attention rows halve r each time the number of types doubles (8, 4, 2), while the
MLP rows get the nearest whole rank (the table reports each row's exact parameter count).
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from minilora.experiments.adaptation import (
    REPORTED_ON,
    adaptation_spec,
    own_outcomes,
    run_of,
    summarize_seeds,
)
from minilora.experiments.results import BUDGET_FILE
from minilora.experiments.runs import load_base
from minilora.lora import LoraConfig, find_targets

__all__ = ["BUDGET_FILE", "BUDGET_GROUPS", "Budget", "budget_rank"]

ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP = ("fc_in", "fc_out")
# (label, adapted modules), in the paper's order, then the MLP rows this model needs
BUDGET_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("W_q", ("q_proj",)), ("W_k", ("k_proj",)), ("W_v", ("v_proj",)), ("W_o", ("o_proj",)),
    ("W_q, W_v", ("q_proj", "v_proj")), ("W_q, W_k, W_v, W_o", ATTENTION),
    ("MLP (fc_in, fc_out)", MLP), ("attention + MLP", ATTENTION + MLP),
)


@functools.cache
def _cost_per_rank(base: str, targets: tuple[str, ...]) -> tuple[int, int]:
    """(Σ (d + k) over the matched Linears of ``base``, min(d, k) over them): the parameters one rank costs."""
    model = load_base(base)
    layers = find_targets(model, LoraConfig(r=1, target_modules=tuple(targets)))
    shapes = [layer.weight.shape for _, layer in layers]
    return sum(d + k for d, k in shapes), min(min(shape) for shape in shapes)


def budget_rank(base: str, targets: Sequence[str], budget: int) -> int:
    """The rank that spends ``budget`` trainable parameters on ``targets``: round(budget / Σ(d + k)), ≥ 1."""
    cost, most = _cost_per_rank(base, tuple(targets))
    return max(1, min(most, round(budget / cost)))


@dataclass(frozen=True)
class Budget:
    """Settings of the fixed-budget table; the budget is ``reference_rank`` on ``reference_targets``
    (8 on W_q: 8 · 2 layers · 128 = 2,048 parameters on the skills model)."""

    tasks: tuple[tuple[str, str], ...] = (("reverse-shift", "skills"), ("subtract", "skills"))
    groups: tuple[tuple[str, tuple[str, ...]], ...] = BUDGET_GROUPS
    reference_targets: tuple[str, ...] = ("q_proj",)
    reference_rank: int = 8
    seeds: tuple[int, ...] = (0, 1, 2)
    steps: int = 400
    lr: float = 1e-2
    batch_size: int = 64
    skill_task_kwargs: tuple[tuple[str, Any], ...] = ()

    def budget(self, base: str) -> int:
        """The number of trainable parameters every row spends (up to rounding of r)."""
        return self.reference_rank * _cost_per_rank(base, self.reference_targets)[0]

    def specs(self) -> list[dict[str, Any]]:
        """One LoRA run (α = r, so s = 1 at every rank) per task, group and seed."""
        specs = []
        for task, base in self.tasks:
            budget = self.budget(base)
            for _, targets in self.groups:
                r = budget_rank(base, targets, budget)
                for seed in self.seeds:
                    specs.append(adaptation_spec(task, base, "lora", seed=seed, steps=self.steps, lr=self.lr,
                                                 settings={"r": r, "target_modules": targets},
                                                 batch_size=self.batch_size,
                                                 task_kwargs=dict(self.skill_task_kwargs)))
        return specs

    def summarize(self, outcomes: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """The JSON of the table: one row per (task, group) with the rank, exact parameter count, per-seed values,
        mean and spread."""
        found: dict[tuple[str, tuple[str, ...]], list[dict[str, Any]]] = defaultdict(list)
        for o in own_outcomes(self.specs(), outcomes):
            run = run_of(o)
            found[(run["task"], tuple(run["settings"]["target_modules"]))].append(o)
        rows = []
        for task, base in self.tasks:
            for label, targets in self.groups:
                runs = found[(task, tuple(targets))]
                first = runs[0]["result"]
                rows.append({"task": task, "group": label, "targets": list(targets),
                             "rank": run_of(runs[0])["settings"]["r"],
                             "budget": self.budget(base), "trainable_params": first["trainable_params"],
                             "metric": first["metric"], "seeds": [run_of(o)["train"]["seed"] for o in runs],
                             **summarize_seeds([o["result"]["value"] for o in runs])})
        settings = {**asdict(self), "task_kwargs": dict(self.skill_task_kwargs)}
        return {"experiment": "budget", "settings": settings, "reported_on": REPORTED_ON, "rows": rows}
