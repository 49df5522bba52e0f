"""Random projections P: R^d → R^D: adjoints, the Fastfood matrix, unit columns, seeds, devices, the FWHT."""

import numpy as np
import pytest

import minilora as ml
from minilora import backend
from minilora.subspace import DENSE_MAX_BYTES, DenseProjection, FastfoodProjection, SparseProjection, make_projection
from minilora.subspace.function import Project
from minilora.subspace.fwht import fwht, fwht_butterfly, hadamard, kronecker_factors, next_power_of_two

KINDS = [DenseProjection, SparseProjection, FastfoodProjection]


def sylvester(n):
    """H_n built independently of the package: Kronecker powers of [[1, 1], [1, -1]]."""
    h = np.ones((1, 1))
    while h.shape[0] < n:
        h = np.kron(np.array([[1.0, 1.0], [1.0, -1.0]]), h)
    return h


def columns(projection, dtype=np.float64):
    """The explicit matrix P, one matvec per column (host float64)."""
    eye = np.eye(projection.d, dtype=dtype)
    return np.stack([backend.to_host(projection.matvec(e)) for e in eye], axis=1)


# -- the fast Walsh-Hadamard transform -----------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 4, 8, 32, 64, 512, 4096])
def test_fwht_equals_the_hadamard_matrix(device, n):
    x = np.random.default_rng(n).standard_normal((3, n))
    y = backend.to_host(fwht(backend.to_device(x, device)))
    np.testing.assert_allclose(y, x @ sylvester(n).T, rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("n", [1, 2, 8, 32, 2**11, 2**17])
def test_fwht_equals_the_butterfly(device, n):
    """The Kronecker-factored ``fwht`` against its textbook twin, the butterfly.

    Integer-valued inputs: every partial sum is an integer below 2^53, so both are exact and agree bit for
    bit.  Random reals: the two add the same numbers in another order, so they agree to rounding only.
    """
    rng = np.random.default_rng(n)
    ints = rng.integers(-8, 9, (2, n)).astype(np.float64)
    np.testing.assert_array_equal(backend.to_host(fwht_butterfly(backend.to_device(ints, device))),
                                  backend.to_host(fwht(backend.to_device(ints, device))))
    x = rng.standard_normal((3, 1, n)).astype(np.float32)   # any leading axes are a batch
    y = backend.to_host(fwht_butterfly(backend.to_device(x, device)))
    assert y.shape == x.shape and y.dtype == np.float32
    np.testing.assert_allclose(y, backend.to_host(fwht(backend.to_device(x, device))), rtol=1e-4,
                               atol=1e-4 * np.sqrt(n))
    if n <= 512:
        np.testing.assert_allclose(y, x @ sylvester(n).T, rtol=1e-4, atol=1e-4 * np.sqrt(n))
    with pytest.raises(ValueError, match="power-of-two length, got 12"):
        fwht_butterfly(np.zeros(12))


def test_fwht_twice_is_n_times_identity():
    x = np.random.default_rng(0).standard_normal(2**15)
    np.testing.assert_allclose(fwht(fwht(x)), 2**15 * x, rtol=1e-10, atol=1e-8)


def test_kronecker_factors_multiply_to_n_and_stay_small():
    for bits in range(0, 21):
        factors = kronecker_factors(2**bits)
        assert int(np.prod(factors)) == 2**bits
        assert all(f <= 16 for f in factors)
    assert hadamard(8).shape == (8, 8) and next_power_of_two(37) == 64 and next_power_of_two(64) == 64
    with pytest.raises(ValueError, match="power of two"):
        fwht(np.zeros(12))


# -- every projection ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("D, d", [(37, 5), (1000, 64), (37, 150), (1, 3)])
def test_adjoint_identity(device, kind, D, d):
    """⟨P z, g⟩ = ⟨z, Pᵀ g⟩ in float64, D not a power of two (d > padded D stacks Fastfood blocks)."""
    rng = np.random.default_rng(D + d)
    projection = kind(D, d, seed=1)
    z = backend.to_device(rng.standard_normal(d), device)
    g = backend.to_device(rng.standard_normal(D), device)
    pz, ptg = projection.matvec(z), projection.rmatvec(g)
    assert backend.device_of(pz) == device and pz.shape == (D,) and pz.dtype == np.float64
    assert backend.device_of(ptg) == device and ptg.shape == (d,)
    left = (pz * g).sum().item()
    right = (z * ptg).sum().item()
    assert abs(left - right) <= 1e-12 * max(1.0, abs(left))


@pytest.mark.parametrize("D, d", [(37, 5), (64, 64), (100, 300), (1000, 20)])
def test_fastfood_equals_its_explicit_matrix(D, d):
    """P = stack over blocks b of  s_b (H G_b Π_b H B_b)[:D, :]  (block b serves z[b·n:(b+1)·n]), cut to d columns."""
    p = FastfoodProjection(D, d, seed=4)
    h = sylvester(p.n)
    blocks = []
    for b in range(p.blocks):
        permutation = np.eye(p.n)[p.perm[b]]  # (Π v)_i = v[perm_i]
        block = p.scale[b] * h @ np.diag(p.gauss[b]) @ permutation @ h @ np.diag(p.signs[b])
        blocks.append(block[:D])
    explicit = np.concatenate(blocks, axis=1)[:, :d]
    np.testing.assert_allclose(columns(p), explicit, rtol=1e-10, atol=1e-12)
    g = np.random.default_rng(0).standard_normal(D)
    np.testing.assert_allclose(p.rmatvec(g), explicit.T @ g, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("D, d", [(37, 5), (1000, 20), (5000, 3000), (100, 300), (64, 64), (1, 3)])
def test_fastfood_equals_its_textbook_twin(device, D, d):
    """The fast path (first / last FWHT at the support size s = 2^⌈log2 min(d, n)⌉, H_n = H_m ⊗ H_s) against
    s · (H G Π H B z̃)[:D] with both FWHTs at size n: the same map, summed in another order (float64: to 1e-12)."""
    p = FastfoodProjection(D, d, seed=7)
    rng = np.random.default_rng(D * d)
    z = backend.to_device(rng.standard_normal(d), device)
    g = backend.to_device(rng.standard_normal(D), device)
    for fast, textbook in ((p.matvec(z), p.matvec_textbook(z)), (p.rmatvec(g), p.rmatvec_textbook(g))):
        assert backend.device_of(fast) == device and fast.shape == textbook.shape and fast.dtype == np.float64
        np.testing.assert_allclose(backend.to_host(fast), backend.to_host(textbook), rtol=1e-12, atol=1e-12)
    assert p.support == min(p.n, next_power_of_two(d))


def test_fastfood_columns_have_unit_norm_at_scale():
    """Fastfood, D = 10^5 (padded to 2^17), d = 1000: every column's norm over the D entries within 2% of 1."""
    norms = np.linalg.norm(columns(FastfoodProjection(100_000, 1000, seed=0)), axis=0)
    assert np.abs(norms - 1).max() < 0.02


@pytest.mark.parametrize("kind, D, d", [(DenseProjection, 5000, 300), (SparseProjection, 20_000, 300),
                                        (SparseProjection, 3, 50), (FastfoodProjection, 4000, 9000),
                                        (FastfoodProjection, 4096, 300)])
def test_columns_have_unit_norm(kind, D, d):
    """Dense and sparse columns are normalised exactly (float32 storage); Fastfood's in expectation, with relative
    spread √((n − D)/(2nD)) (0.2% at D = 4000, n = 4096, here over three stacked blocks) and exactly when D = n."""
    norms = np.linalg.norm(columns(kind(D, d, seed=2)), axis=0)
    tolerance = 1e-9 if D == 4096 else 0.02 if kind is FastfoodProjection else 1e-5
    assert np.abs(norms - 1).max() < tolerance


def test_sparse_density_is_one_over_sqrt_D():
    D, d = 40_000, 500
    p = SparseProjection(D, d, seed=0)
    density = p.nnz / (D * d)
    assert abs(density - 1 / np.sqrt(D)) < 0.05 / np.sqrt(D)
    values = np.abs(p.values)
    assert np.all(values > 0)
    assert len({(r, c) for r, c in zip(p.rows[:5000].tolist(), p.cols[:5000].tolist())}) == 5000  # no repeats


@pytest.mark.parametrize("kind", KINDS)
def test_seeded_and_the_same_on_every_device(device, kind):
    z = np.random.default_rng(0).standard_normal(40)
    a = kind(300, 40, seed=7).matvec(z)
    b = kind(300, 40, seed=7).matvec(z)
    c = kind(300, 40, seed=8).matvec(z)
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)
    on_device = kind(300, 40, seed=7).matvec(backend.to_device(z, device))
    np.testing.assert_allclose(backend.to_host(on_device), a, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_float32_in_float32_out(kind):
    p = kind(100, 10)
    assert p.matvec(np.ones(10, dtype=np.float32)).dtype == np.float32
    assert p.rmatvec(np.ones(100, dtype=np.float32)).dtype == np.float32


@pytest.mark.parametrize("kind", KINDS)
def test_projection_function_gradcheck(device, kind):
    """The Function δ = P z has backward Pᵀ g: checked against finite differences in float64."""
    projection = kind(23, 6, seed=3)
    z = ml.tensor(backend.to_device(np.random.default_rng(1).standard_normal(6), device), requires_grad=True)
    assert ml.gradcheck(lambda t: Project.apply(t, projection=projection), z)


def test_a_dense_projection_too_large_is_refused_with_its_size():
    with pytest.raises(ValueError, match=r"1,000,000 × 10,000 .* 37\.25 GiB.*SparseProjection.*FastfoodProjection"):
        DenseProjection(1_000_000, 10_000)
    D = DENSE_MAX_BYTES // 4 // 1000 + 1  # one row over the limit at d = 1000
    with pytest.raises(ValueError, match="GiB"):
        DenseProjection(D, 1000)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="D must be a positive integer"):
        FastfoodProjection(0, 3)
    with pytest.raises(ValueError, match="d must be a positive integer"):
        SparseProjection(10, 2.5)
    with pytest.raises(ValueError, match=r"z has shape \(4,\), expected \(3,\)"):
        DenseProjection(10, 3).matvec(np.zeros(4))
    with pytest.raises(ValueError, match=r"g has shape \(3, 1\), expected \(10,\)"):
        FastfoodProjection(10, 3).rmatvec(np.zeros((3, 1)))
    with pytest.raises(TypeError, match="floating point"):
        FastfoodProjection(10, 3).matvec(np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="unknown projection 'gaussian'"):
        make_projection("gaussian", 10, 3)
    assert repr(make_projection("fastfood", 10, 3, seed=2)) == "FastfoodProjection(D=10, d=3, seed=2)"
