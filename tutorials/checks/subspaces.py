"""Checks for notebook 06, what LoRA learns: subspace similarity φ, its chance level, the amplification factor."""

from __future__ import annotations

from typing import Any

import numpy as np

from checks import NotYet, exercise, expect_close
from minilora.lora import amplification_factor, chance_similarity, subspace_similarity


def _pairs() -> list[tuple[np.ndarray, np.ndarray]]:
    """(A1, A2) pairs: random, one nested in the other, and of different ranks with a shared direction."""
    rng = np.random.default_rng(6)
    a1, a2 = rng.normal(size=(4, 16)), rng.normal(size=(6, 16))
    nested = np.vstack([10 * a1, 0.1 * rng.normal(size=(3, 16))])  # A1's rows first, then weak extra rows
    shared = np.vstack([a1[:1], rng.normal(size=(2, 16))])
    return [(a1, a2), (a1, nested), (shared, a1)]


@exercise("06")
def phi(answer: Any) -> str:
    """phi(a1, a2, i, j) = ‖U1[:, :i]ᵀ U2[:, :j]‖²_F / min(i, j), U the right-singular vectors of each A (r × k)."""
    for a1, a2 in _pairs():
        for i, j in ((1, 1), (2, 3), (a1.shape[0], a2.shape[0]), (1, a2.shape[0])):
            want = subspace_similarity(a1, a2, i, j)
            got = answer(a1.copy(), a2.copy(), i, j)
            try:
                expect_close(f"phi(A1 {a1.shape}, A2 {a2.shape}, i={i}, j={j})", got, want, atol=1e-8)
            except NotYet as why:
                raise NotYet(f"{why}; hint: the directions A reads are its right-singular vectors, the rows of Vᵀ "
                             f"from np.linalg.svd(A, full_matrices=False), ordered by singular value") from None
    return "φ = 1 for nested subspaces, 0 for orthogonal ones, and max(i, j)/k on average for random ones"


@exercise("06")
def chance_phi(answer: Any) -> str:
    """chance_phi(i, j, k): E[φ] of a random i-dimensional and a random j-dimensional subspace of R^k."""
    for i, j, k in ((1, 1, 64), (8, 64, 64), (4, 16, 64), (3, 2, 10), (5, 5, 1000)):
        expect_close(f"chance_phi({i}, {j}, {k})", answer(i, j, k), chance_similarity(i, j, k), atol=1e-12)
    rng = np.random.default_rng(0)
    draws = [subspace_similarity(rng.normal(size=(3, 12)), rng.normal(size=(5, 12)), 3, 5) for _ in range(400)]
    return (f"for i = 3, j = 5, k = 12 the formula says {answer(3, 5, 12):.3f}; "
            f"400 random draws average {np.mean(draws):.3f}")


@exercise("06")
def amplification(answer: Any) -> str:
    """amplification(delta_w, w, r) = ‖ΔW‖_F / ‖Uᵀ W V‖_F with U, Vᵀ the top-r singular directions of ΔW."""
    rng = np.random.default_rng(7)
    w = rng.normal(size=(12, 8))
    cases = [0.3 * rng.normal(size=(12, 2)) @ rng.normal(size=(2, 8)),
             0.01 * rng.normal(size=(12, 1)) @ rng.normal(size=(1, 8))]
    u, s, vt = np.linalg.svd(w, full_matrices=False)
    cases.append(0.5 * (u[:, :2] * s[:2]) @ vt[:2])  # W's own top directions, scaled: factor 0.5
    for delta in cases:
        r = int(np.linalg.matrix_rank(delta))
        expect_close(f"amplification(ΔW of rank {r}, W, r={r})", answer(delta.copy(), w.copy(), r),
                     amplification_factor(delta, w, r=r), atol=1e-8, rtol=1e-6)
    return "ΔW = 0.5 × W's own top-2 part has factor 0.5; a ΔW along W's weak directions has a large one"
