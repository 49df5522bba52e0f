"""Solutions to the exercises of 06_what_lora_learns (try them yourself first)."""

import numpy as np


def phi(a1, a2, i, j):
    """The right-singular vectors of each A are the rows of Vᵀ; overlap = U1[:, :i]ᵀ U2[:, :j],
    φ = ‖overlap‖²_F / min(i, j)."""
    u1 = np.linalg.svd(a1, full_matrices=False)[2].T  # (k, r1)
    u2 = np.linalg.svd(a2, full_matrices=False)[2].T  # (k, r2)
    overlap = u1[:, :i].T @ u2[:, :j]  # (i, j)
    return float(np.sum(overlap**2) / min(i, j))


def chance_phi(i, j, k):
    """E‖U1ᵀU2‖²_F = i·j/k for random subspaces; divided by min(i, j) that is max(i, j)/k."""
    return max(i, j) / k


def amplification(delta_w, w, r):
    """U, Vᵀ: the top-r singular directions of ΔW; how much of W lies there is ‖Uᵀ W V‖_F."""
    u, _, vt = np.linalg.svd(delta_w, full_matrices=False)
    u, vt = u[:, :r], vt[:r]
    return float(np.linalg.norm(delta_w) / np.linalg.norm(u.T @ w @ vt.T))


def _phi_left(a1, a2, i, j):
    """The left-singular vectors (r-dimensional: the rows' mixing) instead of the directions in R^k."""
    u1, u2 = np.linalg.svd(a1, full_matrices=False)[0], np.linalg.svd(a2, full_matrices=False)[0]
    n = min(u1.shape[0], u2.shape[0])
    return float(np.sum((u1[:n, :i].T @ u2[:n, :j]) ** 2) / min(i, j))


# one plausible mistake per exercise: tests/test_tutorials.py checks that each says "not yet"
MISTAKES = {
    "phi": _phi_left,
    "chance_phi": lambda i, j, k: i * j / k,  # not divided by min(i, j)
    "amplification": lambda delta_w, w, r: float(np.linalg.norm(delta_w) / np.linalg.norm(w)),  # all of W
}
