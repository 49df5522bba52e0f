"""d90: the smallest subspace dimension d at which training reaches 90% of a baseline, and the search for it.

Li et al. (2018) train only z ∈ R^d in θ = θ0 + P z and call the smallest d that reaches 90% of a
baseline's performance the intrinsic dimension d90.  Here the baseline is full fine-tuning on the same
task and budget, and "reaches" is measured on the *mean over seeds* of the held-out metric (higher is
better):

    target = fraction · baseline                 (fraction = 0.9)
    d90    = the smallest evaluated d with mean(d) ≥ target, interpolated on log d between the last
             miss d_m and that first hit d_h:
             log d90 = log d_m + (target − m(d_m)) / (m(d_h) − m(d_m)) · (log d_h − log d_m)

The search evaluates d on powers of two, moving up from a miss and down from a hit until a miss sits
right below the first hit, then refines that octave with ``refine`` geometrically spaced points.  It is
a pure function of the results so far (``next_dims``), so a resumed sweep replays it exactly.
A run whose loss went non-finite (diverged) counts as a miss at its learning rate, never as an error.

A trend in d90 (pretrained against random, along pretraining, across widths) means something only when it is larger
than the *noise floor*: how much d90 moves between pretraining runs of one recipe (``noise_floor``, the ratio of the
largest to the smallest d90 of the pretraining-seed replicas).  ``trend`` compares a trend's ratio with it.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "FRACTION",
    "choose_lr",
    "crossing",
    "effective_metric",
    "is_power_of_two",
    "median_d90",
    "describe_trend",
    "next_dims",
    "noise_floor",
    "target_of",
    "trend",
]

FRACTION = 0.9


def target_of(baseline: float, fraction: float = FRACTION) -> float:
    """The metric a subspace run must reach: target = fraction · baseline (a ValueError if fraction ∉ (0, 1])."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"d90: fraction must be in (0, 1], got {fraction!r}")
    if not math.isfinite(baseline) or baseline <= 0:
        raise ValueError(f"d90: the baseline metric must be a positive finite number, got {baseline!r}")
    return fraction * baseline


def effective_metric(metric: float | None, diverged: bool) -> float:
    """A run's metric for d90 purposes: the metric, or −inf when the run diverged (a miss at every target)."""
    if diverged or metric is None or not math.isfinite(metric):
        return -math.inf
    return float(metric)


def crossing(dims: Sequence[float], values: Sequence[float], target: float) -> float | None:
    """d90 of one curve: the first d (in increasing order) with value ≥ target, interpolated on log d.

    log d90 = log d_m + (target − v_m) / (v_h − v_m) · (log d_h − log d_m), with d_h the first hit and
    d_m the grid point just below it.  The first grid point itself when it already hits (d90 ≤ that d);
    None when no point reaches the target.
    """
    if len(dims) != len(values):
        raise ValueError(f"crossing: {len(dims)} dims but {len(values)} values")
    points = sorted(zip(dims, values))
    for i, (d_hit, v_hit) in enumerate(points):
        if v_hit >= target:
            if i == 0:
                return float(d_hit)
            d_miss, v_miss = points[i - 1]
            if not math.isfinite(v_miss):  # a diverged miss: no slope to interpolate on, take the hit
                return float(d_hit)
            frac = (target - v_miss) / (v_hit - v_miss)
            return math.exp(math.log(d_miss) + frac * (math.log(d_hit) - math.log(d_miss)))
    return None


def median_d90(per_seed: Sequence[float | None]) -> float | None:
    """The median of per-seed d90 values; a seed that never reached the target counts as +∞ (None if the median is)."""
    if not per_seed:
        raise ValueError("median_d90: no seeds")
    value = statistics.median([math.inf if v is None else v for v in per_seed])
    return None if math.isinf(value) else float(value)


def choose_lr(metric_by_lr: Mapping[float, float]) -> float:
    """The learning rate with the highest effective metric (−inf for a diverged run); ties go to the smaller lr.

    Feed it metrics on the *validation* split (the intrinsic experiments do): a choice made on the test split
    would flatter the numbers reported on that same split.
    """
    if not metric_by_lr:
        raise ValueError("choose_lr: no learning rates were tried")
    return min(metric_by_lr, key=lambda lr: (-metric_by_lr[lr], lr))


def is_power_of_two(d: int) -> bool:
    """True for 1, 2, 4, 8, ..."""
    return d >= 1 and d & (d - 1) == 0


def next_dims(done: Mapping[int, float], target: float, start: Sequence[int], lo: int, hi: int,
              refine: int = 1) -> list[int]:
    """The dimensions to evaluate next, given the mean metric ``done[d]`` of every d evaluated so far; [] when done.

    1. Nothing yet: the ``start`` powers of two (a guess near the crossing, consecutive).
    2. No power of two hits: the next one up (2·max), unless it passes ``hi`` (then the target is out of reach).
    3. The first hit h has no evaluated h/2: evaluate h/2, unless it is below ``lo`` (then d90 ≤ h).
    4. Otherwise refine the octave (h/2, h): round(h/2 · 2^(j/(refine+1))) for j = 1..refine.
    """
    if not start or any(not is_power_of_two(d) for d in start):
        raise ValueError(f"next_dims: start must be powers of two, got {list(start)!r}")
    if not 1 <= lo <= hi:
        raise ValueError(f"next_dims: expected 1 <= lo <= hi, got lo={lo}, hi={hi}")
    if any(not lo <= d <= hi for d in start):
        raise ValueError(f"next_dims: start {list(start)!r} must lie within [lo, hi] = [{lo}, {hi}]")
    if not done:
        return sorted(set(start))
    powers = sorted(d for d in done if is_power_of_two(d))
    hits = [d for d in powers if done[d] >= target]
    if not hits:
        up = 2 * powers[-1] if powers else min(start)
        return [up] if up <= hi else []
    first_hit = hits[0]
    below = first_hit // 2
    if below < lo or first_hit == 1:
        return []
    if below not in done:
        return [below]
    inside = {round(below * 2 ** (j / (refine + 1))) for j in range(1, refine + 1)}
    return sorted(d for d in inside if below < d < first_hit and d not in done)


def noise_floor(d90s: Mapping[str, float | None]) -> dict[str, Any]:
    """How much d90 moves between pretraining runs of one recipe: ratio = max d90 / min d90 over the replicas.

    ``d90s`` maps a replica's label to its d90 (None: not reached).  The ratio is None with fewer than two replicas
    or when one never reached its target (the spread is then unknown, not zero).
    """
    values = list(d90s.values())
    known = len(values) >= 2 and all(v is not None and v > 0 for v in values)
    return {"d90s": dict(d90s), "ratio": max(values) / min(values) if known else None,
            "min": min(values) if known else None, "max": max(values) if known else None}


def trend(labels: Sequence[Any], d90s: Sequence[float | None], floor: float | None) -> dict[str, Any]:
    """A trend of d90 along ``labels`` (in the order d90 is expected to fall), judged against the noise floor.

    ratio = d90(first) / d90(last) (> 1: d90 falls as expected); the trend holds beyond the noise floor when
    ratio > floor, by the factor ``beyond`` = ratio / floor.  Each consecutive pair gets the same judgement
    (``steps``), and ``monotone`` says whether d90 falls at every step.  None where a d90 or the floor is unknown.
    """
    if len(labels) != len(d90s) or len(d90s) < 2:
        raise ValueError(f"trend: expected at least two labels with one d90 each, got {list(labels)} and {list(d90s)}")

    def judge(a: float | None, b: float | None) -> dict[str, Any]:
        ratio = a / b if a is not None and b is not None else None
        beyond = ratio / floor if ratio is not None and floor is not None else None
        return {"ratio": ratio, "beyond": beyond, "holds": None if beyond is None else beyond > 1.0}

    steps = [{"from": labels[i], "to": labels[i + 1], **judge(d90s[i], d90s[i + 1])} for i in range(len(d90s) - 1)]
    known = all(st["ratio"] is not None for st in steps)
    return {"labels": list(labels), "d90s": list(d90s), "noise_floor": floor, **judge(d90s[0], d90s[-1]),
            "monotone": all(st["ratio"] > 1.0 for st in steps) if known else None, "steps": steps}


def describe_trend(name: str, result: Mapping[str, Any]) -> str:
    """One line: the trend's ratio against the noise floor, computed (``trend``'s result), e.g. for a table."""
    first, last = result["labels"][0], result["labels"][-1]
    if result["ratio"] is None:
        return f"{name}: d90 {first} -> {last}: not measurable (a d90 was not reached)"
    text = f"{name}: d90 {first} / {last} = {result['ratio']:.2f}x"
    if result["beyond"] is None:
        return text + "; noise floor unknown"
    verdict = "holds" if result["holds"] else "does NOT hold"
    text += (f" vs noise floor {result['noise_floor']:.2f}x: {verdict} beyond it "
             f"({result['beyond']:.2f}x the floor{'; d90 rises instead' if result['ratio'] < 1 else ''})")
    if len(result["steps"]) > 1:
        beyond = sum(bool(st["holds"]) for st in result["steps"])
        text += (f"; {'falls at every step' if result['monotone'] else 'not monotone'}, "
                 f"{beyond}/{len(result['steps'])} steps beyond the floor")
    return text
