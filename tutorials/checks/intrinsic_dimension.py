"""Checks for notebook 07, intrinsic dimension: the toy problem's d_int predicted from A, d90 from a curve, a
prediction of d90(random) / d90(pretrained) against the noise floor, and the verdict of a trend against the floor."""

from __future__ import annotations

import json
import math
from numbers import Real
from pathlib import Path
from typing import Any

import numpy as np

from checks import NotYet, exercise, expect_equal
from minilora.experiments.d90 import crossing, trend
from minilora.experiments.toy_intrinsic import ToyProblem, toy_intrinsic_dimension

FIGURES = Path(__file__).resolve().parents[2] / "figures"  # the shipped full results of `minilora intrinsic`


def _toy_cases(D: int = 60) -> list[tuple[str, ToyProblem]]:
    """Toy problems L(θ) = ‖A θ − b‖² with a reachable b (b = A θ* for a random θ*), named by how A was built.

    The names say how the rows were made, never how many of them are independent.
    """
    rng = np.random.default_rng(7)

    def groups(k: int) -> np.ndarray:  # k disjoint sum constraints over D entries, as in Li et al.'s toy
        a = np.zeros((k, D))
        for g in range(k):
            a[g, g * (D // k) : (g + 1) * (D // k)] = 1.0
        return a

    overlapping = np.zeros((4, D))
    for g in range(4):
        overlapping[g, 10 * g : 10 * g + 25] = 1.0  # groups that share entries, still independent
    five, four, three = groups(5), groups(4), groups(3)
    matrices = [
        ("Li et al.'s toy: disjoint sum constraints", groups(10)),
        ("some constraints repeated word for word", np.vstack([five, five[:3]])),
        ("one constraint is the sum of two others, one is another scaled by 2",
         np.vstack([four, four[0] + four[1], 2.0 * four[2]])),
        ("overlapping groups of entries", overlapping),
        ("one constraint is a difference of two others", np.vstack([three, three[0] - three[2]])),
        ("one constraint written in other units (a tenth of a sum)", np.vstack([four[:3], 0.1 * four[3]])),
    ]
    cases = []
    for name, a in matrices:
        theta_star = rng.standard_normal(D)  # a point that meets every constraint: b is reachable
        cases.append((name, ToyProblem(a, a @ theta_star, rng.standard_normal(D) / np.sqrt(D))))
    return cases


@exercise("07")
def toy_intrinsic(answer: Any) -> str:
    """toy_intrinsic(A): the smallest d at which a random d-dimensional subspace solves L(θ) = ‖A θ − b‖² (b
    reachable), predicted from A alone; compared with the d the subspace search of ``toy_intrinsic_dimension``
    measures."""
    shown = []
    for name, problem in _toy_cases():
        measured = toy_intrinsic_dimension(problem=problem, max_d=20)
        expect_equal(f"your prediction for A of shape {problem.A.shape} ({name})", answer(problem.A.copy()),
                     measured, "the subspace must reach the set of solutions, and a constraint that the others "
                               "already imply does not make that set any smaller")
        shown.append(f"{problem.A.shape[0]} rows -> d_int {measured}")
    return ("your predictions match the subspace search on every problem (" + "; ".join(shown) + "): d_int is the "
            "number of independent constraints")


_CURVES = [  # (dims, seed-mean metric, target, a hint that is true for this curve and does not give d90 away)
    ([256, 512, 1024, 2048], [0.20, 0.55, 0.80, 0.91], 0.826,
     "interpolate on log d between the first hit and the d just below it: the fraction of the way from the miss's "
     "value to the hit's is the fraction of the way from log d_miss to log d_hit"),
    ([64, 128], [0.90, 0.95], 0.81, "when the first d already reaches the target there is no miss below it"),
    ([512, 1024, 2048], [0.1, 0.3, 0.6], 0.8, "a curve that never reaches the target has no d90 (return None)"),
    ([16, 32, 64, 128], [0.0, 0.1, 0.3, 0.5], 0.5, "a value equal to the target reaches it"),
    ([1024, 2048, 4096, 8192, 16384], [0.60, 0.80, 0.76, 0.85, 0.80], 0.78,
     "d90 is the first d that reaches the target, even when a larger d falls below it again; the miss to "
     "interpolate from is the point just below that first hit"),
]


@exercise("07")
def d90_from_curve(answer: Any) -> str:
    """d90_from_curve(dims, values, target): the first d reaching ``target``, interpolated on log d; None if never."""
    for dims, values, target, hint in _CURVES:
        want = crossing(dims, values, target)
        got = answer(list(dims), list(values), target)
        what = f"d90_from_curve({dims}, {values}, {target})"
        if want is None or got is None:
            expect_equal(what, got, want, hint)
        elif not isinstance(got, Real) or not math.isclose(float(got), want, rel_tol=1e-6):
            raise NotYet(f"{what} is {got!r}, which is not right; hint: {hint}")
    return "d90 sits between the first d that reached the target and the d just below it, on a log scale"


def _shipped(name: str) -> dict[str, Any]:
    path = FIGURES / f"intrinsic-{name}.json"
    if not path.is_file():
        raise NotYet(f"{path} is missing: `minilora intrinsic --out figures` writes it")
    return json.loads(path.read_text())


@exercise("07")
def random_over_pretrained(answer: Any) -> str:
    """random_over_pretrained: a predicted d90(random init) / d90(pretrained), right when it lands on the same side of
    the noise floor as the full run's measured ratio (beyond it upward, within it, or beyond it downward)."""
    if isinstance(answer, bool) or not isinstance(answer, Real):
        raise NotYet(f"random_over_pretrained should be a number (your predicted ratio d90(random) / "
                     f"d90(pretrained)), got {answer!r}")
    ratio = float(answer)
    if not math.isfinite(ratio) or ratio <= 0:
        raise NotYet(f"random_over_pretrained is {answer!r}; a ratio of two dimensions is a positive number")
    result = _shipped("pretrained-vs-random")
    measured, floor = result["random_over_pretrained"], result["noise_floor"]["ratio"]

    def side(r: float) -> int:  # +1 beyond the floor upward, -1 beyond it downward, 0 within it
        return 1 if r > floor else -1 if r < 1 / floor else 0

    if side(ratio) != side(measured):
        direction = ("fewer dimensions than the pretrained model" if ratio < 1 else
                     "more dimensions than the pretrained model" if ratio > 1 else "as many dimensions")
        raise NotYet(f"your ratio {ratio:g} says the random GPT needs {direction}, "
                     f"{'beyond' if side(ratio) else 'within'} the noise floor of {floor:.2f}x; the full run "
                     f"disagrees. Hint: read the two curves' d90 in the figure above and divide them in the order "
                     f"the name says (random over pretrained)")
    return (f"you predicted {ratio:g}x; the full run measured {measured:.2f}x against a noise floor of {floor:.2f}x: "
            f"{describe_side(side(measured))}")


def describe_side(side: int) -> str:
    """What a ratio d90(random) / d90(pretrained) on that side of the floor means."""
    return {1: "the random GPT needs more dimensions, by more than two pretraining runs of one recipe differ",
            0: "the two differ by no more than two pretraining runs of one recipe do",
            -1: "the random GPT needs fewer dimensions, by more than the floor"}[side]


_TRENDS = [  # (d90 before, d90 after, noise floor): cases from the full run and the edges of the rule
    (10167.0, 1144.0, 2.66),  # along pretraining, first snapshot -> shipped model
    (372.0, 1144.0, 2.66),  # width 32 -> 64
    (1144.0, 591.0, 2.66),  # width 64 -> 128
    (4838.0, 9247.0, 2.66),  # step 500 -> 1,000
    (2000.0, 1000.0, 1.5),
    (300.0, 100.0, 3.0),  # exactly the floor: what two replicas already differ by
    (100.0, 300.0, 3.0),
    (100.0, 400.0, 3.0),
]
VERDICTS = ("falls", "rises", "within the noise floor")


def _verdict(before: float, after: float, floor: float) -> str:
    """The package's judgement (``d90.trend``): falls beyond the floor, rises beyond it, or neither."""
    forward, backward = trend(["before", "after"], [before, after], floor), trend(["a", "b"], [after, before], floor)
    return "falls" if forward["holds"] else "rises" if backward["holds"] else "within the noise floor"


@exercise("07")
def trend_verdict(answer: Any) -> str:
    """trend_verdict(d90_before, d90_after, floor): "falls" when d90 falls by more than the noise floor (ratio
    before / after > floor), "rises" when it rises by more (after / before > floor), else "within the noise floor"."""
    for before, after, floor in _TRENDS:
        got = answer(before, after, floor)
        if got not in VERDICTS:
            raise NotYet(f"trend_verdict({before:g}, {after:g}, {floor:g}) returned {got!r}; return one of {VERDICTS}")
        expect_equal(f"trend_verdict({before:g}, {after:g}, {floor:g})", got, _verdict(before, after, floor),
                     "the floor is a ratio (the largest replica's d90 over the smallest), so compare a ratio with "
                     "it, in whichever direction d90 moved; a change only as large as the floor is one two replicas "
                     "already show")
    return "a trend means something only when its ratio is larger than the spread of one recipe's replicas"
