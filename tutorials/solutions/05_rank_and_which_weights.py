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


# Adam moves each entry of B by about lr per step whatever the gradient's size, so after the same steps B A is about
# the same whatever α, and ΔW = (α/r)·B A is α/r times it: α = 16 (s = 1) moves fastest, α = 1 (s = 1/16) slowest.
fastest_alpha = 16


# --- wrong answers: tests/test_tutorials.py checks that each one fails its check ---

def _clamped(budget, shapes, r):
    return max(1, min(min(min(d, k) for d, k in shapes), r))


MISTAKES = {
    "rank_for_budget": [
        lambda budget, shapes: _clamped(budget, shapes, math.ceil(budget / sum(d + k for d, k in shapes))),  # ceil
        lambda budget, shapes: _clamped(budget, shapes, round(budget / (128 * len(shapes)))),  # 64 × 64 hard-coded
        lambda budget, shapes: _clamped(budget, shapes, round(budget / sum(d * k for d, k in shapes))),  # d·k
        lambda budget, shapes: max(1, round(budget / sum(d + k for d, k in shapes))),  # no cap at min(d, k)
        lambda budget, shapes: _clamped(budget, shapes, int(budget / sum(d + k for d, k in shapes))),  # floor
        # every matrix priced like the first one: right only when all shapes are the same
        lambda budget, shapes: _clamped(budget, shapes, round(budget / (len(shapes) * sum(shapes[0])))),
    ],
    "seed_mean_std": [
        lambda values: (statistics.fmean(values), statistics.pstdev(values)),  # divides by n
        lambda values: (statistics.fmean(values), statistics.variance(values)),  # the variance, not its root
        lambda values: (statistics.fmean(values), statistics.stdev(values) / math.sqrt(len(values))),  # std error
        lambda values: (statistics.median(values), statistics.stdev(values)),  # the median
    ],
    "fastest_alpha": [1, 4, "same"],
}
