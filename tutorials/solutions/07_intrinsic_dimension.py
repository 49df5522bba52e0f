"""Solutions to the exercises of 07_intrinsic_dimension (try them yourself first)."""

import math

import numpy as np


def toy_intrinsic(A):
    """Each independent constraint removes one direction from the solution set, so a random subspace reaches it
    exactly when d ≥ the number of independent rows of A: d_int = rank A (repeated, scaled or combined rows add
    nothing)."""
    return int(np.linalg.matrix_rank(A))


def d90_from_curve(dims, values, target):
    """The first d with value ≥ target; between the miss just below it (d_m, v_m) and that hit (d_h, v_h):
    log d90 = log d_m + (target − v_m) / (v_h − v_m) · (log d_h − log d_m)."""
    points = sorted(zip(dims, values))
    for i, (d_hit, v_hit) in enumerate(points):
        if v_hit >= target:
            if i == 0:
                return float(d_hit)
            d_miss, v_miss = points[i - 1]
            frac = (target - v_miss) / (v_hit - v_miss)
            return math.exp(math.log(d_miss) + frac * (math.log(d_hit) - math.log(d_miss)))
    return None


# Predicted before the run: from a random start z has to build every skill the task needs, from a pretrained start
# only the small change from skills it has to the one asked, so d90(random) should be far larger; the full run
# measures 4.58x against a noise floor of 2.66x (any prediction beyond the floor is right).
random_over_pretrained = 4.0


def trend_verdict(d90_before, d90_after, floor):
    """A ratio, compared with the floor (itself a ratio), in the direction d90 moved; equal to the floor is not
    beyond it."""
    if d90_before / d90_after > floor:
        return "falls"
    if d90_after / d90_before > floor:
        return "rises"
    return "within the noise floor"


# ----------------------------------------------------------------------------------- common mistakes


def _distinct_rows(A):
    """Repeated rows removed, but a row that is a sum or a multiple of others still counted."""
    return len(np.unique(A, axis=0))


def _distinct_directions(A):
    """Rows counted up to scale: catches a doubled row, not a sum of two."""
    unit = A / np.linalg.norm(A, axis=1, keepdims=True)
    return len(np.unique(np.round(unit, 12), axis=0))


def _interpolate(dims, values, target, on_log=True, strict=False, last_miss=False, never=None):
    """d90 with one of the usual slips: on d instead of log d, > instead of ≥, the last miss of the whole curve
    instead of the point just below the first hit, or a number instead of None when nothing reaches the target."""
    points = sorted(zip(dims, values))
    hits = [i for i, (_, v) in enumerate(points) if (v > target if strict else v >= target)]
    if not hits:
        return never
    i = hits[0]
    if last_miss:
        misses = [j for j, (_, v) in enumerate(points) if v < target]
        i = misses[-1] + 1 if misses and misses[-1] + 1 < len(points) else i
    if i == 0:
        return float(points[0][0])
    (d_miss, v_miss), (d_hit, v_hit) = points[i - 1], points[i]
    frac = (target - v_miss) / (v_hit - v_miss)
    if on_log:
        return math.exp(math.log(d_miss) + frac * (math.log(d_hit) - math.log(d_miss)))
    return d_miss + frac * (d_hit - d_miss)


def _first_hit(dims, values, target):
    """No interpolation: the first d that reaches the target (what the search measured, not d90)."""
    return next((float(d) for d, v in sorted(zip(dims, values)) if v >= target), None)


def _no_floor(d90_before, d90_after, floor):
    """Any fall is a fall: the noise floor forgotten."""
    return "falls" if d90_before > d90_after else "rises" if d90_after > d90_before else "within the noise floor"


def _difference(d90_before, d90_after, floor):
    """A difference of dimensions compared with a ratio."""
    if d90_before - d90_after > floor:
        return "falls"
    if d90_after - d90_before > floor:
        return "rises"
    return "within the noise floor"


def _floor_one_way(d90_before, d90_after, floor):
    """The floor applied to falls only: any rise counted as a rise."""
    ratio = d90_before / d90_after
    return "falls" if ratio > floor else "rises" if ratio < 1 else "within the noise floor"


def _at_the_floor(d90_before, d90_after, floor):
    """≥ instead of >: a change as large as the floor (what two replicas already differ by) counted as a trend."""
    if d90_before / d90_after >= floor:
        return "falls"
    if d90_after / d90_before >= floor:
        return "rises"
    return "within the noise floor"


# plausible mistakes per exercise: tests/test_tutorials.py checks that each says "not yet"
MISTAKES = {
    "toy_intrinsic": [
        lambda A: A.shape[0],  # every row counted, repeated ones too
        _distinct_rows,
        _distinct_directions,
        lambda A: int(np.linalg.matrix_rank(A)) + 1,  # "d must exceed the number of constraints"
        # singular values counted above a fixed 1 instead of above rounding noise: a small-scale row is dropped
        lambda A: int(np.sum(np.linalg.svd(A, compute_uv=False) > 1.0)),
    ],
    "d90_from_curve": [
        lambda dims, values, target: _interpolate(dims, values, target, on_log=False),  # on d, not log d
        _first_hit,
        lambda dims, values, target: _interpolate(dims, values, target, strict=True),  # > instead of ≥
        lambda dims, values, target: _interpolate(dims, values, target, last_miss=True),
        lambda dims, values, target: _interpolate(dims, values, target, never=float(max(dims))),
        lambda dims, values, target: (lambda hit: None if hit is None else math.sqrt(hit * hit / 2))(
            _first_hit(dims, values, target)),  # the octave's geometric midpoint, whatever the values
    ],
    "random_over_pretrained": [
        0.5,  # "a random network is simpler, so it needs fewer dimensions"
        1.0,  # "d90 is a property of the task, not of the model"
        2.0,  # more, but no more than two pretraining runs of one recipe differ
        1 / 4.58,  # the ratio upside down: pretrained over random
        "4.58",  # a string, not a number
    ],
    "trend_verdict": [_no_floor, _difference, _floor_one_way, _at_the_floor],
}
