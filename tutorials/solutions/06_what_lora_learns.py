"""Solutions to the exercises of 06_what_lora_learns (try them yourself first)."""

import numpy as np


def phi(a1, a2, i, j):
    """A = U Σ Vᵀ; the directions A reads are the rows of Vᵀ (columns of V), strongest first.
    overlap = V1[:, :i]ᵀ V2[:, :j] holds their cosines; φ = ‖overlap‖²_F / min(i, j)."""
    v1 = np.linalg.svd(a1, full_matrices=False)[2].T  # (k, r1)
    v2 = np.linalg.svd(a2, full_matrices=False)[2].T  # (k, r2)
    overlap = v1[:, :i].T @ v2[:, :j]  # (i, j)
    return float(np.sum(overlap**2) / min(i, j))


# 64 independent directions span all of R^64: V2[:, :64] is an orthonormal basis, so ‖V1[:, :i]ᵀ V2‖²_F = i and
# φ = i / min(i, 64) = 1, whatever the matrices.
phi_full_rank = 1.0


def amplification(delta_w, w):
    """r = rank(ΔW) (singular values above rounding noise: np.linalg.matrix_rank); U, Vᵀ its top-r singular
    directions; how much of W lies there is ‖Uᵀ W V‖_F, and the factor is ‖ΔW‖_F over it."""
    r = np.linalg.matrix_rank(delta_w)
    u, _, vt = np.linalg.svd(delta_w, full_matrices=False)
    u, vt = u[:, :r], vt[:r]
    return float(np.linalg.norm(delta_w) / np.linalg.norm(u.T @ w @ vt.T))


# --- wrong answers: tests/test_tutorials.py checks that each one fails its check ---

def _phi_with(vectors, a1, a2, i, j, divide=min, power=2):
    v1, v2 = vectors(a1), vectors(a2)
    return float(np.sum(np.abs(v1[:, :i].T @ v2[:, :j]) ** power) / divide(i, j))


def _right(a):
    return np.linalg.svd(a, full_matrices=False)[2].T


def _phi_left(a1, a2, i, j):
    """The left-singular vectors (r-dimensional: how the rows mix) instead of the directions in R^k."""
    u1, u2 = np.linalg.svd(a1, full_matrices=False)[0], np.linalg.svd(a2, full_matrices=False)[0]
    n = min(u1.shape[0], u2.shape[0])
    return float(np.sum((u1[:n, :i].T @ u2[:n, :j]) ** 2) / min(i, j))


def _phi_columns_of_vt(a1, a2, i, j):
    """The first i columns of Vᵀ instead of its first i rows."""
    return _phi_with(lambda a: np.linalg.svd(a, full_matrices=False)[2], a1, a2, i, j)


def _phi_qr(a1, a2, i, j):
    """An orthonormal basis of A's rows by QR: the right subspace for all rows, but not ordered by strength."""
    return _phi_with(lambda a: np.linalg.qr(a.T)[0], a1, a2, i, j)


def _amplification_with_rank(rank):
    def wrong(delta_w, w):
        r = rank(delta_w)
        u, _, vt = np.linalg.svd(delta_w, full_matrices=False)
        u, vt = u[:, :r], vt[:r]
        with np.errstate(divide="ignore"):  # r = 0 (no direction kept) divides by zero: inf, which the check rejects
            return float(np.linalg.norm(delta_w) / np.linalg.norm(u.T @ w @ vt.T))
    return wrong


MISTAKES = {
    "phi": [
        _phi_left,
        _phi_columns_of_vt,
        _phi_qr,
        lambda a1, a2, i, j: _phi_with(_right, a1, a2, i, j, divide=max),  # max(i, j) instead of min
        lambda a1, a2, i, j: _phi_with(_right, a1, a2, i, j, power=1),  # |cosines|, not squared
        lambda a1, a2, i, j: _phi_with(_right, a1, a2, i, j, divide=lambda i, j: i),  # i, right only when i <= j
    ],
    "phi_full_rank": [4 / 64, 0.0, 0.0625 * 4],  # chance of two 4-dim subspaces; "unrelated"; 16/64
    "amplification": [
        _amplification_with_rank(lambda m: len(np.unique(m, axis=0))),  # distinct rows, not the rank
        _amplification_with_rank(lambda m: int(np.sum(np.linalg.svd(m, compute_uv=False) > 0))),  # rounding noise
        _amplification_with_rank(lambda m: min(m.shape)),  # every direction
        lambda delta_w, w: float(np.linalg.norm(delta_w) / np.linalg.norm(w)),  # all of W
        # an absolute cut-off: a small update (early in training) has no singular value above it
        _amplification_with_rank(lambda m: int(np.sum(np.linalg.svd(m, compute_uv=False) > 1e-3))),
        # a cut-off relative to the largest: a weak but real direction dropped
        _amplification_with_rank(lambda m: int(np.sum((s := np.linalg.svd(m, compute_uv=False)) > 0.1 * s[0]))),
    ],
}
