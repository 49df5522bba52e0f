"""Solutions to the exercises of 07_intrinsic_dimension (try them yourself first)."""

import math

import numpy as np


def d90_from_curve(dims, values, target):
    """The first d with value ≥ target; between the last miss (d_m, v_m) and that hit (d_h, v_h):
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


def toy_intrinsic(A):
    """Each independent constraint removes one direction from the solution set: d_int = rank A."""
    return int(np.linalg.matrix_rank(A))


def dense_projection_bytes(D, d):
    """D·d float32 numbers, 4 bytes each."""
    return 4 * D * d


def _d90_linear(dims, values, target):
    """Interpolated on d instead of log d."""
    points = sorted(zip(dims, values))
    for i, (d_hit, v_hit) in enumerate(points):
        if v_hit >= target:
            if i == 0:
                return float(d_hit)
            d_miss, v_miss = points[i - 1]
            return d_miss + (target - v_miss) / (v_hit - v_miss) * (d_hit - d_miss)
    return None


# one plausible mistake per exercise: tests/test_tutorials.py checks that each says "not yet"
MISTAKES = {
    "d90_from_curve": _d90_linear,
    "toy_intrinsic": lambda A: A.shape[0],  # every row counted, repeated ones too
    "dense_projection_bytes": lambda D, d: 8 * D * d,  # float64
}
