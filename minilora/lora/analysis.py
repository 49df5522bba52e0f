"""What a LoRA update learns: the linear algebra of the LoRA paper's Section 7, in one place.

Two questions about trained adapters (Hu et al. 2021, arXiv 2106.09685, Section 7):

* Do two adapters learn the same directions?  The rows of A (r × k) span the input directions the update
  reads.  Take the right-singular vectors of each A, U = (columns of Vᵀ from A = U_A Σ Vᵀ); then

      φ(A₁, A₂, i, j) = ‖U₁[:, :i]ᵀ U₂[:, :j]‖²_F / min(i, j)       ∈ [0, 1]

  is 1 when one top subspace contains the other and 0 when they are orthogonal.  Two *random* subspaces of
  dimensions i and j in R^k overlap by E[φ] = max(i, j) / k (``chance_similarity``), the floor to compare with.

* Does ΔW amplify directions W already has?  With U (d × r), Vᵀ (r × k) the top-r singular directions of ΔW,

      amplification = ‖ΔW‖_F / ‖Uᵀ W V‖_F

  (the paper writes ‖UᵀWVᵀ‖_F with V as rows).  ‖UᵀWV‖_F measures how much of W lies in ΔW's directions: if
  ΔW only rescales W's top directions, the factor is small; if ΔW points where W is weak, it is large.

These functions analyse saved weights, so they work on the host in float64 NumPy; Tensors and device arrays
are copied to the host first.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minilora import backend
from minilora.engine.tensor import Tensor

__all__ = ["subspace_similarity", "subspace_similarity_grid", "chance_similarity", "amplification_factor",
           "singular_directions", "projection_norm"]


def _host_matrix(x: Any, name: str) -> np.ndarray:
    """``x`` (Tensor, device array or array-like) as a float64 host matrix; ValueError if it is not 2-D."""
    m = np.asarray(x.numpy() if isinstance(x, Tensor) else backend.to_host(x), dtype=np.float64)
    if m.ndim != 2:
        raise ValueError(f"{name} must be a 2-D matrix, got shape {m.shape}")
    if not np.all(np.isfinite(m)):
        raise ValueError(f"{name} has NaN or infinite entries")
    return m


def _numerical_rank(m: np.ndarray, like: Any) -> int:
    """rank(M): singular values above σ_max · max(d, k) · ε, with ε the machine epsilon of ``like``'s own dtype.

    NumPy's default uses float64's ε, but a float32 product B A is rounded to float32: its rounding noise
    (≈ 1e-8 · σ_max) makes it full rank at float64's precision.  Integer and list inputs count as float64.
    """
    dtype = np.dtype(getattr(like, "dtype", np.float64))
    eps = np.finfo(dtype if dtype.kind == "f" else np.float64).eps
    s = np.linalg.svd(m, compute_uv=False)
    return int(np.sum(s > s[0] * max(m.shape) * eps)) if s.size and s[0] > 0 else 0


def _right_singular_vectors(a: np.ndarray) -> np.ndarray:
    """U (k × r'): the right-singular vectors of A (r × k) as columns, by decreasing singular value."""
    _, _, vt = np.linalg.svd(a, full_matrices=False)
    return vt.T


def _check_dim(name: str, value: Any, most: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= most:
        raise ValueError(f"subspace_similarity: {name} must be an integer in 1..{most} ({what}), got {value!r}")
    return int(value)


def _pair(a1: Any, a2: Any) -> tuple[np.ndarray, np.ndarray]:
    """The right-singular vectors of two A matrices with the same number of columns k."""
    m1, m2 = _host_matrix(a1, "A1"), _host_matrix(a2, "A2")
    if m1.shape[1] != m2.shape[1]:
        raise ValueError(f"subspace_similarity: A1 {m1.shape} and A2 {m2.shape} must have the same number of "
                         f"columns k (both r × k)")
    return _right_singular_vectors(m1), _right_singular_vectors(m2)


def subspace_similarity(a1: Any, a2: Any, i: int, j: int) -> float:
    """Normalised subspace similarity φ(A₁, A₂, i, j) = ‖U₁[:, :i]ᵀ U₂[:, :j]‖²_F / min(i, j).

    A₁ (r₁ × k) and A₂ (r₂ × k) are LoRA ``lora_A`` matrices; U is the matrix of right-singular vectors of
    each (columns, by decreasing singular value).  1 ≤ i ≤ min(r₁, k), 1 ≤ j ≤ min(r₂, k).  φ = 1 when the
    top-i and top-j subspaces are nested, 0 when orthogonal, max(i, j) / k on average for random ones.
    """
    u1, u2 = _pair(a1, a2)
    i = _check_dim("i", i, u1.shape[1], "at most A1's rank bound min(r1, k)")
    j = _check_dim("j", j, u2.shape[1], "at most A2's rank bound min(r2, k)")
    overlap = u1[:, :i].T @ u2[:, :j]  # (i, j): cosines between the two sets of directions
    return float(np.sum(overlap**2) / min(i, j))


def subspace_similarity_grid(a1: Any, a2: Any) -> np.ndarray:
    """φ(A₁, A₂, i, j) for every i = 1..r₁ and j = 1..r₂ as an (r₁, r₂) array (entry [i-1, j-1]).

    One SVD each and one product: with C = (U₁ᵀ U₂)² elementwise, ‖U₁[:, :i]ᵀ U₂[:, :j]‖²_F is the sum of
    C's top-left i × j block, a 2-D cumulative sum.  Equal to calling ``subspace_similarity`` r₁·r₂ times.
    """
    u1, u2 = _pair(a1, a2)
    block_sums = np.cumsum(np.cumsum((u1.T @ u2) ** 2, axis=0), axis=1)
    i = np.arange(1, u1.shape[1] + 1)[:, None]
    j = np.arange(1, u2.shape[1] + 1)[None, :]
    return block_sums / np.minimum(i, j)


def chance_similarity(i: int, j: int, k: int) -> float:
    """E[φ] for a uniformly random i-dimensional and j-dimensional subspace of R^k: max(i, j) / k.

    With P₁, P₂ the orthogonal projections, ‖U₁ᵀU₂‖²_F = tr(P₁P₂) and E[P₂] = (j/k)·I, so
    E‖U₁ᵀU₂‖²_F = tr(P₁)·j/k = i·j/k; dividing by min(i, j) gives max(i, j)/k.
    """
    for name, value in (("i", i), ("j", j)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= k:
            raise ValueError(f"chance_similarity: {name} must be an integer in 1..k={k}, got {value!r}")
    return max(i, j) / k


def singular_directions(m: Any, r: int) -> tuple[np.ndarray, np.ndarray]:
    """The top-r singular directions of M (d × k): U (d × r) and Vᵀ (r × k), from M = U Σ Vᵀ."""
    mat = _host_matrix(m, "M")
    if isinstance(r, bool) or not isinstance(r, (int, np.integer)) or not 1 <= r <= min(mat.shape):
        raise ValueError(f"singular_directions: r must be an integer in 1..{min(mat.shape)}, got {r!r}")
    u, _, vt = np.linalg.svd(mat, full_matrices=False)
    return u[:, :r], vt[:r]


def projection_norm(w: Any, u: np.ndarray, vt: np.ndarray) -> float:
    """‖Uᵀ W V‖_F: how much of W (d × k) lies in the directions U (d × r) on the left and Vᵀ (r × k) on the right."""
    mat = _host_matrix(w, "W")
    if u.shape[0] != mat.shape[0] or vt.shape[1] != mat.shape[1]:
        raise ValueError(f"projection_norm: U {u.shape} and Vᵀ {vt.shape} do not fit W {mat.shape}")
    return float(np.linalg.norm(u.T @ mat @ vt.T))


def amplification_factor(delta_w: Any, w: Any, r: int | None = None) -> float:
    """‖ΔW‖_F / ‖Uᵀ W V‖_F, with U (d × r), Vᵀ (r × k) the top-r singular directions of ΔW.

    r defaults to the rank of ΔW (a LoRA update BA has rank ≤ its r), counted at the precision of ΔW's own
    dtype: singular values above σ_max · max(d, k) · ε, so a float32 B A has rank r, not min(d, k).  A ΔW
    that rescales W's own top directions, ΔW = ε·U_W Σ_W V_Wᵀ restricted to r directions, has factor exactly ε;
    a ΔW in directions where W is weak has a large factor (the paper: ≈ 21.5 for r = 4 on GPT-3's W_q).
    """
    dw, mat = _host_matrix(delta_w, "delta_w"), _host_matrix(w, "w")
    if dw.shape != mat.shape:
        raise ValueError(f"amplification_factor: delta_w {dw.shape} and w {mat.shape} must have the same shape")
    rank = _numerical_rank(dw, delta_w) if r is None else r
    if rank == 0:
        raise ValueError("amplification_factor: delta_w is zero (rank 0); there are no directions to compare")
    u, vt = singular_directions(dw, rank)
    projected = projection_norm(mat, u, vt)
    if projected == 0.0:
        raise ValueError("amplification_factor: W has no component in ΔW's directions (‖UᵀWV‖_F = 0); factor infinite")
    return float(np.linalg.norm(dw) / projected)
