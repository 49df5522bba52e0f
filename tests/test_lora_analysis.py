"""What ΔW learns: subspace similarity and amplification, checked on matrices whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

import minilora as ml
from minilora.lora import (
    amplification_factor,
    chance_similarity,
    projection_norm,
    singular_directions,
    subspace_similarity,
    subspace_similarity_grid,
)


def _orthonormal(rng: np.random.Generator, n: int, m: int) -> np.ndarray:
    """n × m with orthonormal columns (QR of a Gaussian matrix)."""
    q, _ = np.linalg.qr(rng.standard_normal((n, m)))
    return q


def test_identical_subspaces_have_similarity_one_for_every_i_and_j():
    a = np.random.default_rng(0).standard_normal((6, 20))
    assert subspace_similarity(a, a, 6, 6) == pytest.approx(1.0)
    np.testing.assert_allclose(subspace_similarity_grid(a, a), np.ones((6, 6)), atol=1e-12)


def test_a_change_of_basis_keeps_the_row_space():
    rng = np.random.default_rng(1)
    a1 = rng.standard_normal((5, 16))
    m = rng.standard_normal((5, 5)) + 5 * np.eye(5)  # invertible
    a2 = m @ a1  # same row space, different singular vectors inside it
    assert subspace_similarity(a1, a2, 5, 5) == pytest.approx(1.0)
    grid = subspace_similarity_grid(a1, a2)
    np.testing.assert_allclose(grid[:, -1], 1.0, atol=1e-12)  # any top-i of A1 lies inside all of A2's span
    assert grid[0, 0] < 0.99  # the top single directions differ: M reorders them


def test_orthogonal_subspaces_have_similarity_zero():
    basis = _orthonormal(np.random.default_rng(2), 12, 8).T  # 8 orthonormal rows in R^12
    rng = np.random.default_rng(3)
    a1 = rng.standard_normal((4, 4)) @ basis[:4]
    a2 = rng.standard_normal((3, 4)) @ basis[4:]  # rank 3 inside the other 4 directions
    assert subspace_similarity(a1, a2, 4, 3) == pytest.approx(0.0, abs=1e-12)


def test_partial_overlap_has_the_counted_value():
    """Top-2 of A1 = {e0, e1}; A2 = {e1, e2}: one shared direction of two, φ = 1/2."""
    a1 = np.zeros((2, 5))
    a1[0, 0], a1[1, 1] = 3.0, 2.0
    a2 = np.zeros((2, 5))
    a2[0, 1], a2[1, 2] = 3.0, 2.0
    assert subspace_similarity(a1, a2, 2, 2) == pytest.approx(0.5)
    assert subspace_similarity(a1, a2, 1, 1) == pytest.approx(0.0)  # e0 vs e1
    assert subspace_similarity(a1, a2, 2, 1) == pytest.approx(1.0)  # e1 lies in span{e0, e1}


@pytest.mark.parametrize(("i", "j"), [(1, 1), (2, 8), (8, 3), (16, 16)])
def test_random_subspaces_overlap_by_chance_max_i_j_over_k(i, j):
    k, rng = 48, np.random.default_rng(4)
    samples = [subspace_similarity(rng.standard_normal((16, k)), rng.standard_normal((16, k)), i, j)
               for _ in range(300)]
    assert chance_similarity(i, j, k) == max(i, j) / k
    assert np.mean(samples) == pytest.approx(max(i, j) / k, abs=4 * np.std(samples) / np.sqrt(300) + 1e-3)


def test_grid_equals_pointwise_similarity():
    rng = np.random.default_rng(5)
    a1, a2 = rng.standard_normal((4, 10)), rng.standard_normal((6, 10))
    grid = subspace_similarity_grid(a1, a2)
    assert grid.shape == (4, 6)
    for i in range(1, 5):
        for j in range(1, 7):
            assert grid[i - 1, j - 1] == pytest.approx(subspace_similarity(a1, a2, i, j))


def test_similarity_takes_tensors_on_any_device(device):
    rng = np.random.default_rng(6)
    a1, a2 = rng.standard_normal((3, 8)), rng.standard_normal((5, 8))
    t1, t2 = ml.tensor(a1, device=device), ml.tensor(a2, device=device)
    assert subspace_similarity(t1, t2.data, 3, 4) == pytest.approx(subspace_similarity(a1, a2, 3, 4))
    b, w = rng.standard_normal((8, 3)), rng.standard_normal((8, 8))
    delta = ml.tensor(b, device=device) @ t1  # ΔW = B A computed on the device
    assert amplification_factor(delta, ml.tensor(w, device=device).data) == pytest.approx(
        amplification_factor(b @ a1, w))


def test_bad_similarity_arguments_are_clear_errors():
    a = np.ones((3, 8))
    with pytest.raises(ValueError, match="i must be an integer in 1..3"):
        subspace_similarity(a, a, 4, 1)
    with pytest.raises(ValueError, match="j must be"):
        subspace_similarity(a, a, 1, 0)
    with pytest.raises(ValueError, match="same number of columns"):
        subspace_similarity(a, np.ones((3, 9)), 1, 1)
    with pytest.raises(ValueError, match="2-D"):
        subspace_similarity(np.ones(8), a, 1, 1)
    with pytest.raises(ValueError, match="i must be an integer in 1..k=8"):
        chance_similarity(9, 1, 8)


def _w_with_spectrum(rng: np.random.Generator, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """W = U diag(s) Vᵀ with random orthonormal U, V; returns (W, U, V)."""
    u, v = _orthonormal(rng, s.size, s.size), _orthonormal(rng, s.size, s.size)
    return u @ np.diag(s) @ v.T, u, v


@pytest.mark.parametrize("eps", [0.5, -2.0])
def test_amplifying_w_own_top_directions_has_factor_eps(eps):
    """ΔW = ε·U_r Σ_r V_rᵀ: ΔW's directions are W's top r, so ‖UᵀWV‖ = ‖Σ_r‖ and ‖ΔW‖ = |ε|·‖Σ_r‖."""
    s = np.linspace(10.0, 0.1, 16)
    w, u, v = _w_with_spectrum(np.random.default_rng(7), s)
    r = 4
    delta = eps * u[:, :r] @ np.diag(s[:r]) @ v[:, :r].T
    assert amplification_factor(delta, w) == pytest.approx(abs(eps))
    assert amplification_factor(delta, w, r=r) == pytest.approx(abs(eps))


def test_amplifying_directions_w_does_not_emphasise_has_a_large_factor():
    """ΔW = ε·Σ over W's bottom r directions: ‖UᵀWV‖ = ‖(s_{k-r+1..k})‖, factor ε√r / ‖s_bottom‖."""
    s = np.geomspace(10.0, 0.01, 16)  # W is weak in its bottom directions
    w, u, v = _w_with_spectrum(np.random.default_rng(8), s)
    r, eps = 4, 0.5
    delta = eps * u[:, -r:] @ v[:, -r:].T
    expected = eps * np.sqrt(r) / np.linalg.norm(s[-r:])
    assert amplification_factor(delta, w) == pytest.approx(expected)
    assert amplification_factor(delta, w) > 10 * amplification_factor(eps * u[:, :r] @ v[:, :r].T, w)


def test_rank_defaults_to_the_rank_of_a_lora_update():
    rng = np.random.default_rng(9)
    b, a, w = rng.standard_normal((12, 3)), rng.standard_normal((3, 10)), rng.standard_normal((12, 10))
    assert amplification_factor(b @ a, w) == pytest.approx(amplification_factor(b @ a, w, r=3))
    assert amplification_factor(b @ a, w) != pytest.approx(amplification_factor(b @ a, w, r=2))


def test_rank_of_a_float32_lora_update_is_its_r(device):
    """B A rounded in float32 is full rank at float64's precision; the default r must still be the LoRA rank."""
    rng = np.random.default_rng(11)
    b, a = rng.standard_normal((12, 3)).astype(np.float32), rng.standard_normal((3, 10)).astype(np.float32)
    w = rng.standard_normal((12, 10))
    delta = ml.tensor(b, device=device) @ ml.tensor(a, device=device)  # float32 (12, 10), rank 3 up to rounding
    assert np.linalg.matrix_rank(delta.numpy().astype(np.float64)) == 10  # what float64's tolerance sees
    assert amplification_factor(delta, w) == pytest.approx(amplification_factor(delta, w, r=3))
    assert amplification_factor(delta.data, w) == pytest.approx(amplification_factor(delta, w, r=3))


def test_singular_directions_and_projection_norm():
    s = np.array([5.0, 3.0, 1.0, 0.5])
    w, u, v = _w_with_spectrum(np.random.default_rng(10), s)
    uu, vt = singular_directions(w, 2)
    assert uu.shape == (4, 2) and vt.shape == (2, 4)
    assert projection_norm(w, uu, vt) == pytest.approx(np.hypot(5.0, 3.0))
    assert projection_norm(w, u[:, 2:], v[:, 2:].T) == pytest.approx(np.hypot(1.0, 0.5))


def test_bad_amplification_arguments_are_clear_errors():
    w = np.ones((4, 5))
    with pytest.raises(ValueError, match="same shape"):
        amplification_factor(np.ones((5, 4)), w)
    with pytest.raises(ValueError, match="zero"):
        amplification_factor(np.zeros((4, 5)), w)
    with pytest.raises(ValueError, match="r must be an integer in 1..4"):
        singular_directions(w, 5)
    with pytest.raises(ValueError, match="NaN"):
        amplification_factor(np.full((4, 5), np.nan), w)
