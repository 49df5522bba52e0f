"""Checks for notebook 05, rank and which weights: mean and spread over seeds, the rank a budget buys, and what α
does to a large rank's training."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

import minilora as ml
from checks import NotYet, exercise, expect_close, expect_equal
from minilora.experiments.adaptation import summarize_seeds
from minilora.experiments.budget import BUDGET_GROUPS, Budget, budget_rank
from minilora.lora import LoraConfig, apply_lora
from minilora.models import GPT, GPTConfig
from minilora.train import TrainConfig, make_optimizer, train_step

_SKILLS_SHAPES = {"q_proj": (64, 64), "k_proj": (64, 64), "v_proj": (64, 64), "o_proj": (64, 64),
                  "fc_in": (256, 64), "fc_out": (64, 256)}  # (d, k) = (out, in) of each Linear, per layer


@exercise("05")
def seed_mean_std(answer: Any) -> str:
    """seed_mean_std(values) → (mean, sample standard deviation with n − 1), as the sweeps summarise seeds."""
    for values in ([0.91, 0.88, 0.95], [0.5, 0.5], [0.1, 0.7, 0.4, 0.2]):
        got = answer(list(values))
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            raise NotYet(f"seed_mean_std({values}) should return a pair (mean, std), got {got!r}")
        want = summarize_seeds(values)
        expect_close(f"the mean of {values}", got[0], want["mean"])
        if not math.isclose(float(got[1]), want["std"], rel_tol=1e-6, abs_tol=1e-12):
            hint = (" (that is the population std, dividing by n; seeds are a sample: divide by n − 1)"
                    if math.isclose(float(got[1]), float(np.std(values)), rel_tol=1e-6) else
                    "; hint: the spread of the seeds themselves, in the units of the values, with n − 1")
            raise NotYet(f"the std of {values} is {got[1]:.6g}, expected {want['std']:.6g}{hint}")
    return "three seeds give a mean and a spread; a gap smaller than the spread is not a finding"


@exercise("05")
def rank_for_budget(answer: Any) -> str:
    """rank_for_budget(budget, shapes): round(budget / Σ(d + k)) over the adapted (d, k) shapes, at least 1 and at
    most the smallest min(d, k)."""
    cases = [(2048, [(64, 64)] * 2), (2048, [(64, 64)] * 4),
             (2048, [(64, 256)] * 2),  # 3.2: rounds down
             (1000, [(64, 64)] * 3),  # 2.6: rounds up
             (3000, [(256, 64), (64, 256)]),  # wide matrices: one rank costs 320 each
             (2000, [(64, 64), (256, 64)]),  # mixed shapes: 4.46 (every matrix priced like the first: 7.8)
             (100, [(256, 64)]), (10**6, [(8, 5)]), (5 * 23, [(20, 3)])]
    for budget, shapes in cases:
        want = max(1, min(min(min(s) for s in shapes), round(budget / sum(d + k for d, k in shapes))))
        expect_equal(f"rank_for_budget({budget}, {shapes})", answer(budget, list(shapes)), want,
                     "one rank costs d + k on each adapted matrix; take the nearest whole rank, then keep it "
                     "between 1 and the smallest min(d, k)")
    budget = Budget().budget("skills")
    for label, targets in BUDGET_GROUPS:  # the skills model's two layers: each target module twice
        shapes = [_SKILLS_SHAPES[t] for t in targets for _ in range(2)]
        expect_equal(f"rank_for_budget({budget}, shapes of {label})", answer(budget, shapes),
                     budget_rank("skills", targets, budget), "the table's ranks come from the same formula")
    return "the same budget buys r = 8 on W_q alone, 4 on W_q and W_v, 2 on all four attention matrices"


ALPHAS = (1, 4, 16)


def _delta_norms(steps: int = 3) -> dict[int, float]:
    """‖ΔW‖_F of W_q after a few AdamW steps at the same learning rate, r = 16, α in ALPHAS (a tiny GPT)."""
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 20, size=(4, 17))
    norms = {}
    for alpha in ALPHAS:
        model = apply_lora(GPT(GPTConfig(vocab_size=20, block_size=16, n_layer=1, n_head=2, n_embd=32), seed=0),
                           LoraConfig(r=16, lora_alpha=alpha), seed=0).train()
        optimizer = make_optimizer(model, TrainConfig(lr=1e-2, weight_decay=0.0))
        for _ in range(steps):
            train_step(model, optimizer, tokens[:, :-1], ml.tensor(tokens[:, 1:]), grad_clip=0.0)
        norms[alpha] = float(np.linalg.norm(model.blocks[0].attn.q_proj.delta_weight()))
    return norms


@exercise("05")
def fastest_alpha(answer: Any) -> str:
    """fastest_alpha: at r = 16 with s = α/r and one learning rate, which α in (1, 4, 16) makes the loss fall
    fastest at first, or "same" if α does not matter."""
    if answer != "same" and answer not in ALPHAS:
        raise NotYet(f"fastest_alpha is {answer!r}; write one of {list(ALPHAS)} (a number) or \"same\"")
    norms = _delta_norms()
    if answer != max(ALPHAS):
        raise NotYet("not what training shows; hint: Adam moves each entry of B by about the learning rate per step, "
                     "however large its gradient, and ΔW = (α/r)·B A")
    shown = ", ".join(f"α = {a}: {n:.3g}" for a, n in norms.items())
    return (f"‖ΔW‖ of W_q after 3 steps: {shown}. With α fixed, α/r shrinks each direction's scale as r grows, so "
            "a large rank needs a larger α (or lr); rsLoRA's α/√r shrinks it less")
