"""Solutions to the exercises of 05_rank_and_which_weights (try them yourself first)."""

import math
import statistics


def rank_for_budget(budget, shapes):
    """A rank-r adapter on a d×k matrix costs r(d + k): r = round(budget / Σ(d + k)), kept in 1..min(d, k)."""
    cost = sum(d + k for d, k in shapes)
    return max(1, min(min(min(d, k) for d, k in shapes), round(budget / cost)))


def seed_mean_std(values):
    """The mean and the sample standard deviation (n − 1 in the denominator): seeds are a sample of all seeds."""
    return statistics.fmean(values), statistics.stdev(values)


def update_scaling(alpha, r, rslora):
    """s = α / r (the LoRA paper) or α / √r (rsLoRA, Kalajdzievski 2023)."""
    return alpha / math.sqrt(r) if rslora else alpha / r


# one plausible mistake per exercise: tests/test_tutorials.py checks that each says "not yet"
MISTAKES = {
    "rank_for_budget": lambda budget, shapes: max(1, round(budget / sum(d * k for d, k in shapes))),  # d·k, not d + k
    "seed_mean_std": lambda values: (statistics.fmean(values), statistics.pstdev(values)),  # divides by n
    "update_scaling": lambda alpha, r, rslora: alpha / r,  # rsLoRA forgotten
}
