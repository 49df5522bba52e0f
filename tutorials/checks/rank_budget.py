"""Checks for notebook 05, rank and which weights: the rank a budget buys, mean and spread over seeds,
LoRA's scaling."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from checks import NotYet, exercise, expect_close, expect_equal
from minilora.experiments.adaptation import summarize_seeds
from minilora.experiments.budget import BUDGET_GROUPS, Budget, budget_rank
from minilora.lora import LoraConfig

_SKILLS_SHAPES = {"q_proj": (64, 64), "k_proj": (64, 64), "v_proj": (64, 64), "o_proj": (64, 64),
                  "fc_in": (256, 64), "fc_out": (64, 256)}  # (d, k) = (out, in) of each Linear, per layer


@exercise("05")
def rank_for_budget(answer: Any) -> str:
    """rank_for_budget(budget, shapes): round(budget / Σ(d + k)) over the adapted (d, k) shapes, at least 1 and at
    most the smallest min(d, k)."""
    cases = [(2048, [(64, 64)] * 2, 8), (2048, [(64, 64)] * 4, 4), (100, [(256, 64)], 1), (10**6, [(8, 5)], 5),
             (5 * 23, [(20, 3)], 5)]
    for budget, shapes, _ in cases:
        want = max(1, min(min(min(s) for s in shapes), round(budget / sum(d + k for d, k in shapes))))
        expect_equal(f"rank_for_budget({budget}, {shapes})", answer(budget, list(shapes)), want,
                     "one rank costs Σ(d + k) parameters; round, then keep r between 1 and the smallest min(d, k)")
    budget = Budget().budget("skills")
    for label, targets in BUDGET_GROUPS:  # the skills model's two layers: each target module twice
        shapes = [_SKILLS_SHAPES[t] for t in targets for _ in range(2)]
        expect_equal(f"rank_for_budget({budget}, shapes of {label})", answer(budget, shapes),
                     budget_rank("skills", targets, budget), "the table's ranks come from the same formula")
    return "the same budget buys r = 8 on W_q alone, 4 on W_q and W_v, 2 on all four attention matrices"


@exercise("05")
def seed_mean_std(answer: Any) -> str:
    """seed_mean_std(values) → (mean, sample standard deviation with n − 1), as the sweeps summarise seeds."""
    for values in ([0.91, 0.88, 0.95], [0.5, 0.5], [0.1, 0.7, 0.4, 0.2]):
        got = answer(list(values))
        if not isinstance(got, tuple) or len(got) != 2:
            raise NotYet(f"seed_mean_std({values}) should return a tuple (mean, std), got {got!r}")
        want = summarize_seeds(values)
        expect_close(f"the mean of {values}", got[0], want["mean"])
        if not math.isclose(float(got[1]), want["std"], rel_tol=1e-6, abs_tol=1e-12):
            hint = " (that is the population std, dividing by n; seeds are a sample: divide by n − 1)" if math.isclose(
                float(got[1]), float(np.std(values)), rel_tol=1e-6) else ""
            raise NotYet(f"the std of {values} is {got[1]:.6g}, expected {want['std']:.6g}{hint}")
    return "three seeds give a mean and a spread; a gap smaller than the spread is not a finding"


@exercise("05")
def update_scaling(answer: Any) -> str:
    """update_scaling(alpha, r, rslora): LoRA's s in ΔW = s·B A, α/r or (rsLoRA) α/√r."""
    for alpha, r, rslora in ((1.0, 1, False), (1.0, 16, False), (1.0, 16, True), (8.0, 4, True), (16.0, 64, False)):
        want = LoraConfig(r=r, lora_alpha=alpha, use_rslora=rslora).scaling
        expect_close(f"update_scaling({alpha}, {r}, rslora={rslora})", answer(alpha, r, rslora), want)
    return "with α = 1, rsLoRA's update at r = 64 is 8× plain LoRA's (1/8 vs 1/64)"
