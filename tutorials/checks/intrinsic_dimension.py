"""Checks for notebook 07, intrinsic dimension: d90 from a curve, the toy problem's d_int, a dense P's memory."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from checks import NotYet, exercise, expect_equal
from minilora.experiments.d90 import crossing
from minilora.experiments.toy_intrinsic import ToyProblem, toy_intrinsic_dimension
from minilora.subspace import DenseProjection

_CURVES = [  # (dims, seed-mean metric, target)
    ([256, 512, 1024, 2048], [0.20, 0.55, 0.80, 0.91], 0.826),
    ([64, 128], [0.90, 0.95], 0.81),  # the first d already reaches the target
    ([512, 1024, 2048], [0.1, 0.3, 0.6], 0.8),  # never reached
    ([16, 32, 64, 128, 256], [0.0, 0.1, 0.5, 0.85, 0.9], 0.45),
]


@exercise("07")
def d90_from_curve(answer: Any) -> str:
    """d90_from_curve(dims, values, target): the first d reaching ``target``, interpolated on log d; None if never."""
    for dims, values, target in _CURVES:
        want = crossing(dims, values, target)
        got = answer(list(dims), list(values), target)
        if want is None or got is None:
            expect_equal(f"d90_from_curve({dims}, {values}, {target})", got, want,
                         "None only when no d reaches the target; a first point that reaches it is d90 itself")
        elif not math.isclose(float(got), want, rel_tol=1e-6):
            raise NotYet(f"d90_from_curve({dims}, {values}, {target}) is {got:.6g}, expected {want:.6g}; hint: "
                         f"interpolate between the last miss and the first hit on log d, not on d")
    return "d90 sits between the last d that missed and the first that reached 90%, on a log scale"


def _toy(groups: int, duplicated: int, D: int = 60) -> ToyProblem:
    """A toy problem with ``groups`` disjoint sum constraints, then ``duplicated`` repeats of the first ones."""
    size = D // groups
    a = np.zeros((groups, D))
    for g in range(groups):
        a[g, g * size : (g + 1) * size] = 1.0
    b = np.arange(1.0, groups + 1)
    a, b = np.vstack([a, a[:duplicated]]), np.concatenate([b, b[:duplicated]])  # repeated rows: no new constraint
    return ToyProblem(a, b, np.random.default_rng(groups).standard_normal(D) / np.sqrt(D))


@exercise("07")
def toy_intrinsic(answer: Any) -> str:
    """toy_intrinsic(A): the intrinsic dimension of L(θ) = ‖A θ − b‖² (a consistent b): the rank of A."""
    for groups, duplicated in ((10, 0), (4, 0), (5, 3), (3, 2)):
        problem = _toy(groups, duplicated)
        want = toy_intrinsic_dimension(problem=problem, max_d=20)
        expect_equal(f"toy_intrinsic(A) for A of shape {problem.A.shape} ({groups} distinct constraints)",
                     answer(problem.A.copy()), want,
                     "a repeated constraint removes no new direction: count the independent rows")
    return "d_int = the number of independent constraints (the codimension of the solution set): rank A"


@exercise("07")
def dense_projection_bytes(answer: Any) -> str:
    """dense_projection_bytes(D, d): the bytes DenseProjection stores for P (D × d, float32)."""
    for D, d in ((1000, 10), (300, 7), (64, 64)):
        expect_equal(f"dense_projection_bytes({D}, {d})", answer(D, d), DenseProjection(D, d).matrix.nbytes,
                     "P has D·d entries, each a float32")
    big = answer(110_720, 10_000)
    if not isinstance(big, (int, np.integer)):
        raise NotYet(f"dense_projection_bytes should return a whole number of bytes (an int), got {big!r}")
    gib = big / 2**30
    return f"the skills GPT at d = 10,000 would need {gib:.1f} GiB for a dense P; Fastfood keeps O(D) numbers"
