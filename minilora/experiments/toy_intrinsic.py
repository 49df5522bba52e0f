"""Li et al.'s toy problem: a loss whose intrinsic dimension is exactly 10, found by subspace training.

Li et al. (2018, arXiv 1804.08838, §2) open with a problem where the answer is known: θ ∈ R^1000 and the loss
asks that the first 100 entries sum to 1, the next 100 to 2, ..., the last 100 to 10:

    L(θ) = ‖A θ − b‖²,   A ∈ R^{10×1000},  A[k, 100k : 100(k+1)] = 1,  b = (1, 2, ..., 10).

The solutions form an affine set of dimension 990 (codimension 10, one per independent constraint), so a
random d-dimensional subspace θ = θ0 + P z reaches it exactly when d ≥ 10: the intrinsic dimension is 10.

    >>> toy_intrinsic_dimension()
    10
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from minilora import nn
from minilora.engine.tensor import Tensor
from minilora.io import atomic_write_json
from minilora.subspace import make_projection

__all__ = [
    "ToyFit",
    "ToyLoss",
    "ToyProblem",
    "toy_intrinsic_dimension",
    "toy_problem",
    "toy_subspace_fit",
    "toy_summary",
]

SOLVED_TOLERANCE = 1e-8  # solved: ‖A θ − b‖ ≤ tolerance · ‖A θ0 − b‖


@dataclass(frozen=True)
class ToyProblem:
    """L(θ) = ‖A θ − b‖² with A (constraints × D) summing disjoint groups of entries, b = (1, ..., constraints),
    and a seeded starting point θ0 ~ N(0, 1/D)."""

    A: np.ndarray  # (constraints, D)
    b: np.ndarray  # (constraints,)
    theta0: np.ndarray  # (D,)

    @property
    def D(self) -> int:
        return self.A.shape[1]

    def residual(self, theta: np.ndarray) -> float:
        """‖A θ − b‖."""
        return float(np.linalg.norm(self.A @ theta - self.b))


def toy_problem(D: int = 1000, constraints: int = 10, seed: int = 0) -> ToyProblem:
    """Li et al.'s toy: entries k·D/c ... (k+1)·D/c − 1 of θ must sum to k + 1, for k = 0 .. c − 1 (c = constraints)."""
    if constraints < 1 or D % constraints:
        raise ValueError(f"toy_problem: D = {D} must split into `constraints` = {constraints} equal groups")
    group = D // constraints
    a = np.zeros((constraints, D))
    for k in range(constraints):
        a[k, k * group : (k + 1) * group] = 1.0
    theta0 = np.random.default_rng(seed).standard_normal(D) / np.sqrt(D)
    return ToyProblem(a, np.arange(1.0, constraints + 1), theta0)


@dataclass(frozen=True)
class ToyFit:
    """The best point of one subspace: d, the projection, the relative residual ‖Aθ − b‖ / ‖Aθ0 − b‖ at θ = θ0 + P z,
    whether that is ≤ 1e-8 (solved), and z."""

    d: int
    projection: str
    relative_residual: float
    solved: bool
    z: np.ndarray  # (d,) the least-squares point of the subspace


class ToyLoss(nn.Module):
    """The toy problem as an ``nn.Module``: a Parameter θ (D,) and ``forward() = ‖A θ − b‖²`` (a 0-d Tensor)."""

    def __init__(self, problem: ToyProblem) -> None:
        super().__init__()
        self.A, self.b = Tensor(problem.A), Tensor(problem.b)
        self.theta = nn.Parameter(problem.theta0.copy())  # (D,) float64

    def forward(self) -> Tensor:
        r = self.A @ self.theta - self.b  # (constraints,)
        return (r * r).sum()


def toy_subspace_fit(d: int, projection: str = "dense", seed: int = 0,
                     problem: ToyProblem | None = None) -> ToyFit:
    """Minimise L(θ0 + P z) over z ∈ R^d (P = ``projection`` drawn from ``seed``) and report whether it is solved.

    Closed form instead of SGD, because in the subspace the loss is a quadratic in z:

        L(z) = ‖M z − c‖²,   M = A P  (constraints × d),   c = b − A θ0.

    Its minimum is reached at the least-squares solution z* = M⁺ c, the point gradient descent from z = 0
    converges to (slowly: a random square M is badly conditioned, so thousands of steps would only approach it).
    min L = 0 exactly when c lies in the column space of M, i.e. when rank M = constraints, which a random P
    gives as soon as d ≥ constraints and never before.  M is built from one adjoint product per constraint:
    row k of M is (Pᵀ a_k)ᵀ.  Solved: ‖M z* − c‖ ≤ 1e-8 ‖c‖.  ``SubspaceModel(ToyLoss(problem), d, ...)`` with
    z = ``fit.z`` evaluates the same loss through the engine.
    """
    problem = problem or toy_problem()
    c = problem.b - problem.A @ problem.theta0  # (constraints,)
    p = make_projection(projection, problem.D, d, seed)
    m = np.stack([p.rmatvec(row) for row in problem.A])  # (constraints, d): M = A P
    z, *_ = np.linalg.lstsq(m, c, rcond=None)  # (d,)
    relative = float(np.linalg.norm(m @ z - c) / np.linalg.norm(c))
    return ToyFit(d, projection, relative, relative <= SOLVED_TOLERANCE, z)


def toy_intrinsic_dimension(projection: str = "dense", seed: int = 0, problem: ToyProblem | None = None,
                            max_d: int | None = None) -> int | None:
    """The smallest d at which subspace training solves the toy problem:  min {d : toy_subspace_fit(d).solved}.

    d is scanned upward from 1 to ``max_d`` (default D); each least-squares fit costs a few adjoint products.
    None when no d ≤ max_d solves it.
    """
    problem = problem or toy_problem()
    for d in range(1, (problem.D if max_d is None else max_d) + 1):
        if toy_subspace_fit(d, projection, seed, problem).solved:
            return d
    return None


def toy_summary(max_d: int = 20, projection: str = "dense", seed: int = 0,
                out: str | Path | None = None) -> dict[str, Any]:
    """The toy experiment as a JSON-able dict: the relative residual at every d = 1 .. max_d and d_int.

    Keys: ``D`` (1000), ``constraints`` and ``expected`` (10: the codimension of the solution set, the answer
    d_int must equal), ``projection``, ``seed``, ``d_int`` (``toy_intrinsic_dimension``; None if above max_d),
    ``fits`` = [{d, relative_residual, solved}].  With ``out``, also written there as JSON (atomically).
    """
    problem = toy_problem()
    fits = [toy_subspace_fit(d, projection, seed, problem) for d in range(1, max_d + 1)]
    solved = [f.d for f in fits if f.solved]
    constraints = int(problem.A.shape[0])
    result = {"D": problem.D, "constraints": constraints, "expected": constraints, "projection": projection,
              "seed": seed, "d_int": solved[0] if solved else None,
              "fits": [{"d": f.d, "relative_residual": f.relative_residual, "solved": f.solved} for f in fits]}
    if out is not None:
        atomic_write_json(out, result)
    return result
