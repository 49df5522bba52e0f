"""Checks for notebook 06, what LoRA learns: subspace similarity φ by hand, the amplification factor with the rank of
ΔW found, and φ against a full-rank A predicted."""

from __future__ import annotations

from typing import Any

import numpy as np

from checks import NotYet, exercise, expect_close
from minilora.lora import amplification_factor, subspace_similarity


def _pairs() -> list[tuple[np.ndarray, np.ndarray]]:
    """(A1, A2) pairs: random, one nested in the other, and of different ranks with a shared direction."""
    rng = np.random.default_rng(6)
    a1, a2 = rng.normal(size=(4, 16)), rng.normal(size=(6, 16))
    nested = np.vstack([10 * a1, 0.1 * rng.normal(size=(3, 16))])  # A1's rows first, then weak extra rows
    shared = np.vstack([a1[:1], rng.normal(size=(2, 16))])
    return [(a1, a2), (a1, nested), (shared, a1)]


@exercise("06")
def phi(answer: Any) -> str:
    """phi(a1, a2, i, j) = ‖V1[:, :i]ᵀ V2[:, :j]‖²_F / min(i, j), V the right-singular vectors of each A (r × k),
    A = U Σ Vᵀ (the paper writes them U_A)."""
    for a1, a2 in _pairs():
        # i < j, i = j and i > j: min(i, j) is not always i
        for i, j in ((1, 1), (2, 3), (a1.shape[0], a2.shape[0]), (1, a2.shape[0]), (3, 2), (a1.shape[0], 1)):
            want = subspace_similarity(a1, a2, i, j)
            got = answer(a1.copy(), a2.copy(), i, j)
            try:
                expect_close(f"phi(A1 {a1.shape}, A2 {a2.shape}, i={i}, j={j})", got, want, atol=1e-8)
            except NotYet as why:
                raise NotYet(f"{why}; hint: np.linalg.svd(A, full_matrices=False) returns U, Σ, Vᵀ; the directions "
                             "A reads in R^k are the rows of Vᵀ (k numbers each, strongest first), and φ divides "
                             "a squared Frobenius norm by min(i, j)") from None
    return "φ = 1 for nested subspaces, 0 for orthogonal ones, and max(i, j)/k on average for random ones"


def _lora_like(rng: np.random.Generator, d: int, k: int, r: int, scale: float = 0.1) -> np.ndarray:
    """B A of rank r (float64), as a LoRA update."""
    return scale * rng.normal(size=(d, r)) @ rng.normal(size=(r, k))


@exercise("06")
def amplification(answer: Any) -> str:
    """amplification(delta_w, w) = ‖ΔW‖_F / ‖Uᵀ W V‖_F with U, Vᵀ the top-r singular directions of ΔW and r the rank
    of ΔW (found by the answer, not given)."""
    rng = np.random.default_rng(7)
    w = rng.normal(size=(12, 8))
    u, s, vt = np.linalg.svd(w, full_matrices=False)
    repeated = np.repeat(_lora_like(rng, 3, 8, 2), 4, axis=0)  # (12, 8): rows repeated four times, rank 2
    left, _ = np.linalg.qr(rng.normal(size=(12, 2)))
    right, _ = np.linalg.qr(rng.normal(size=(8, 2)))
    weak_second = (left * [1.0, 0.02]) @ right.T  # rank 2, its second direction 50 times weaker than its first
    cases = [_lora_like(rng, 12, 8, 2, 0.3), _lora_like(rng, 12, 8, 1, 0.01), repeated,
             0.5 * (u[:, :2] * s[:2]) @ vt[:2],  # W's own top directions, scaled: factor 0.5
             _lora_like(rng, 12, 8, 3, 1e-6),  # an update early in training: every singular value tiny, rank 3
             weak_second]
    for delta in cases:
        r = int(np.linalg.matrix_rank(delta))
        try:
            expect_close(f"amplification(ΔW of rank {r}, W)", answer(delta.copy(), w.copy()),
                         amplification_factor(delta, w), atol=1e-8, rtol=1e-6)
        except NotYet as why:
            raise NotYet(f"{why}; hint: U and V are ΔW's top-r singular directions with r the rank of ΔW, the "
                         "number of its singular values that stand above rounding noise (rows, even distinct ones, "
                         "are not directions); the factor compares ‖ΔW‖_F with the part of W in those directions"
                         ) from None
    return ("ΔW = 0.5 × W's own top-2 part has factor 0.5; a ΔW along W's weak directions has a large one. "
            "r is ΔW's rank: its singular values above rounding noise, not its rows")


@exercise("06")
def phi_full_rank(answer: Any) -> str:
    """phi_full_rank: φ(A_4, A_64, i, 64) for i = 1..4, A_4 any 4 × 64 matrix of rank 4 and A_64 any 64 × 64
    matrix of full rank, predicted as one number."""
    if isinstance(answer, bool) or not isinstance(answer, (int, float, np.floating, np.integer)):
        raise NotYet(f"phi_full_rank is {answer!r}; write one number, your prediction of φ")
    rng = np.random.default_rng(64)
    values = [subspace_similarity(rng.normal(size=(4, 64)), rng.normal(size=(64, 64)), i, 64)
              for i in range(1, 5)]
    if not np.isclose(float(answer), values[0], atol=1e-6):
        raise NotYet(f"{answer!r} is not what φ gives; hint: what subspace of R^64 do the top 64 directions of a "
                     "full-rank 64 × 64 matrix span, and how much of any vector lies in it?")
    return (f"φ = {min(values):.6f} to {max(values):.6f} for every i and any matrices: a rank-64 A in R^64 reads "
            "every direction, so its chance level is 1 too, and a heatmap against it shows nothing learned")
