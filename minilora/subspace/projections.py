"""Random projections P: R^d → R^D for subspace training, θ = θ0 + P z (Li et al. 2018, arXiv 1804.08838).

Every projection is fixed (drawn once from ``seed``), maps z ∈ R^d to P z ∈ R^D with ``matvec`` and a
gradient g ∈ R^D back to Pᵀ g ∈ R^d with ``rmatvec`` (the adjoint: ⟨P z, g⟩ = ⟨z, Pᵀ g⟩), like
``scipy.sparse.linalg.LinearOperator``, and every column of P has unit norm over all D entries, so one
step along z_j moves θ by the same distance for every j, whatever D is.

=====================  ================================  ===================  ==========================
projection             P                                 memory               matvec time
=====================  ================================  ===================  ==========================
``DenseProjection``    N(0, 1) entries, columns scaled   D·d                  O(D·d)
``SparseProjection``   ±1 with density 1/√D (Li, Hastie  ≈ d·√D nonzeros      O(d·√D)
                       & Church 2006), columns scaled
``FastfoodProjection`` (H G Π H B z)[:D], scaled         O(D) per block       O(D log D) per block
=====================  ================================  ===================  ==========================

(a Fastfood block serves n = 2^⌈log2 D⌉ coordinates of z; d > n stacks ⌈d / n⌉ blocks.)

Random numbers are drawn on the host with ``numpy.random.Generator`` and moved to the device of the
array a method is called with (once per device and dtype, then cached), so one seed gives the same P
on every device.  Arithmetic follows the input's dtype: float64 in, float64 out.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from minilora import backend
from minilora.subspace.fwht import fwht, next_power_of_two

__all__ = ["Projection", "DenseProjection", "SparseProjection", "FastfoodProjection", "DENSE_MAX_BYTES",
           "PROJECTIONS", "make_projection"]

Array = Any  # a NumPy or CuPy array

DENSE_MAX_BYTES = 1 << 30  # a dense P above 1 GiB (float32) is refused


def _positive_int(owner: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{owner}: {name} must be a positive integer, got {value!r}")
    return int(value)


class Projection:
    """A fixed random linear map P ∈ R^{D×d} with unit-norm columns: ``matvec(z) = P z``, ``rmatvec(g) = Pᵀ g``.

    Subclasses draw their random numbers on the host in ``__init__`` and implement ``_matvec`` /
    ``_rmatvec`` on arrays of one device, using the dict of device arrays ``_arrays(like)`` returns.
    """

    def __init__(self, D: int, d: int, seed: int = 0) -> None:
        name = type(self).__name__
        self.D = _positive_int(name, "D", D)
        self.d = _positive_int(name, "d", d)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise ValueError(f"{name}: seed must be an integer, got {seed!r}")
        self.seed = int(seed)
        self._device_arrays: dict[tuple[str, str], dict[str, Array]] = {}

    @property
    def shape(self) -> tuple[int, int]:
        """(D, d), the shape of P."""
        return (self.D, self.d)

    def _host_arrays(self) -> dict[str, np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _arrays(self, like: Array) -> dict[str, Array]:
        """The projection's arrays on ``like``'s device, floating-point ones in ``like``'s dtype (cached)."""
        key = (backend.device_of(like), like.dtype.str)
        if key not in self._device_arrays:
            host = self._host_arrays()
            self._device_arrays[key] = {
                name: backend.to_device(a.astype(like.dtype, copy=False) if a.dtype.kind == "f" else a, key[0])
                for name, a in host.items()
            }
        return self._device_arrays[key]

    def _check(self, x: Array, size: int, method: str, what: str) -> None:
        if not hasattr(x, "shape") or tuple(x.shape) != (size,):
            shape = tuple(x.shape) if hasattr(x, "shape") else type(x).__name__
            raise ValueError(f"{type(self).__name__}.{method}: {what} has shape {shape}, expected ({size},)")
        if x.dtype.kind != "f":
            raise TypeError(f"{type(self).__name__}.{method}: {what} must be floating point, got dtype {x.dtype}")

    def matvec(self, z: Array) -> Array:
        """P z: R^d → R^D (z of shape (d,), on any device; the result has z's device and dtype)."""
        self._check(z, self.d, "matvec", "z")
        return self._matvec(z, self._arrays(z))

    def rmatvec(self, g: Array) -> Array:
        """Pᵀ g: R^D → R^d, the adjoint of ``matvec`` (and the gradient map: dL/dz = Pᵀ dL/dθ)."""
        self._check(g, self.D, "rmatvec", "g")
        return self._rmatvec(g, self._arrays(g))

    def _matvec(self, z: Array, a: dict[str, Array]) -> Array:  # pragma: no cover - abstract
        raise NotImplementedError

    def _rmatvec(self, g: Array, a: dict[str, Array]) -> Array:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(D={self.D}, d={self.d}, seed={self.seed})"


class DenseProjection(Projection):
    """P with i.i.d. N(0, 1) entries, each column divided by its norm:  P[:, j] = a_j / ‖a_j‖,  a_j ~ N(0, I_D).

    Stored as float32 (D·d·4 bytes; float64 inputs use a float64 copy, made once); more than
    ``DENSE_MAX_BYTES`` (1 GiB of float32) is refused: use ``SparseProjection`` or ``FastfoodProjection`` then.
    """

    def __init__(self, D: int, d: int, seed: int = 0) -> None:
        super().__init__(D, d, seed)
        nbytes = self.D * self.d * 4
        if nbytes > DENSE_MAX_BYTES:
            raise ValueError(
                f"DenseProjection: P would hold D × d = {self.D:,} × {self.d:,} float32 numbers = "
                f"{nbytes / 2**30:.2f} GiB, more than the {DENSE_MAX_BYTES / 2**30:g} GiB limit; use "
                f"SparseProjection(D, d) (≈ d·√D nonzeros) or FastfoodProjection(D, d) (O(D) memory) instead")
        p = np.random.default_rng(self.seed).standard_normal((self.D, self.d), dtype=np.float32)  # (D, d)
        p /= np.linalg.norm(p, axis=0)
        self.matrix = p  # (D, d) host float32

    def _host_arrays(self) -> dict[str, np.ndarray]:
        return {"P": self.matrix}

    def _matvec(self, z: Array, a: dict[str, Array]) -> Array:
        return a["P"] @ z  # (D, d) @ (d,) -> (D,)

    def _rmatvec(self, g: Array, a: dict[str, Array]) -> Array:
        return a["P"].T @ g  # (d, D) @ (D,) -> (d,)


class SparseProjection(Projection):
    """A very sparse random projection (Li, Hastie & Church 2006), as in Li et al.'s intrinsic-dimension code.

    Each entry is nonzero with probability s = 1/√D, then ±1 with equal odds; every column is divided by
    its norm, so the nonzeros of column j are ±1/√n_j with n_j ~ Binomial(D, 1/√D) (a column that drew no
    nonzero gets one, at a random row, so that it can have unit norm).  Stored as coordinates
    (``rows``, ``cols``, ``values``): ≈ d·√D numbers.  matvec: (P z)_i = Σ_{k: rows_k = i} values_k · z[cols_k].
    """

    def __init__(self, D: int, d: int, seed: int = 0) -> None:
        super().__init__(D, d, seed)
        rng = np.random.default_rng(self.seed)
        counts = np.maximum(rng.binomial(self.D, 1.0 / math.sqrt(self.D), size=self.d), 1)  # (d,) nonzeros per column
        self.rows = np.concatenate([rng.choice(self.D, size=int(k), replace=False) for k in counts])  # (nnz,)
        self.cols = np.repeat(np.arange(self.d), counts)  # (nnz,)
        signs = rng.integers(0, 2, size=self.rows.size) * 2.0 - 1.0
        self.values = (signs / np.sqrt(counts[self.cols])).astype(np.float32)  # (nnz,)
        self._row_table: np.ndarray | None = None

    @property
    def nnz(self) -> int:
        """Number of nonzero entries of P."""
        return int(self.rows.size)

    def row_table(self) -> np.ndarray:
        """(D, m) host indices into the nonzeros: row i lists the nonzeros of row i of P, padded with ``nnz``.

        m is the largest number of nonzeros in one row.  With c = values ⊙ z[cols] followed by one 0,
        (P z)_i = Σ_j c[table[i, j]]: a matvec by gathering (``composed.project_composed``).  Built once.
        """
        if self._row_table is None:
            order = np.argsort(self.rows, kind="stable")                 # nonzeros grouped by row
            counts = np.bincount(self.rows, minlength=self.D)            # (D,)
            starts = np.cumsum(counts) - counts                          # (D,) where each row's group begins
            slot = np.arange(max(int(counts.max()), 1))                  # (m,)
            inside = slot < counts[:, None]                              # (D, m)
            self._row_table = np.where(inside, order[np.minimum(starts[:, None] + slot, self.nnz - 1)], self.nnz)
        return self._row_table

    def _host_arrays(self) -> dict[str, np.ndarray]:
        return {"rows": self.rows, "cols": self.cols, "values": self.values}

    def _matvec(self, z: Array, a: dict[str, Array]) -> Array:
        xp = backend.get_xp(z)
        contributions = a["values"] * z[a["cols"]]  # (nnz,)
        return xp.bincount(a["rows"], weights=contributions, minlength=self.D).astype(z.dtype)  # (D,)

    def _rmatvec(self, g: Array, a: dict[str, Array]) -> Array:
        xp = backend.get_xp(g)
        contributions = a["values"] * g[a["rows"]]  # (nnz,)
        return xp.bincount(a["cols"], weights=contributions, minlength=self.d).astype(g.dtype)  # (d,)


class FastfoodProjection(Projection):
    """The Fastfood transform (Le, Sarlós & Smola 2013) as a projection:  P z = s · (H G Π H B z̃)[:D].

    n = the next power of two ≥ D; z̃ is z padded with zeros to length n; H is the unnormalised n × n
    Walsh–Hadamard matrix (``fwht``); B a diagonal of random signs ±1; Π a random permutation;
    G a diagonal of N(0, 1) numbers; s = 1 / √(D · ‖G‖²).  Time O(n log n), memory O(n).

    Why s makes columns unit norm: column j before truncation is H G Π h_j b_j (h_j = column j of H, entries ±1),
    whose squared norm is exactly n · ‖G‖² (H Hᵀ = n I); keeping the first D of n rows keeps D/n of it on average,
    D · ‖G‖², so the norm of a column is 1 up to a relative spread of ≈ √((n − D)/(2·n·D)): 0.1% for D = 10^5
    (n = 2^17), 2.6% for D = 300 (n = 512), and exactly 1 when D = n.

    When d > n, z is cut into ⌈d / n⌉ chunks, each with its own independent (B, Π, G, s) block, and the
    blocks' outputs are summed:  P z = Σ_b P_b z_b.  Attributes (host arrays, one row per block):
    ``signs`` (blocks, n) = diag B, ``perm`` (blocks, n) = Π with (Π v)_i = v[perm_i], ``gauss`` (blocks, n) = diag G,
    ``scale`` (blocks,) = s.
    """

    def __init__(self, D: int, d: int, seed: int = 0) -> None:
        super().__init__(D, d, seed)
        self.n = next_power_of_two(self.D)
        self.blocks = -(-self.d // self.n)
        rng = np.random.default_rng(self.seed)
        self.signs = rng.integers(0, 2, size=(self.blocks, self.n)) * 2.0 - 1.0  # (blocks, n)
        self.perm = np.stack([rng.permutation(self.n) for _ in range(self.blocks)])  # (blocks, n)
        self.gauss = rng.standard_normal((self.blocks, self.n))  # (blocks, n)
        self.scale = 1.0 / np.sqrt(self.D * (self.gauss**2).sum(axis=1))  # (blocks,)

    def _host_arrays(self) -> dict[str, np.ndarray]:
        offsets = np.arange(self.blocks)[:, None] * self.n  # gather from the flattened (blocks·n,) array
        support = self.support
        return {"signs": self.signs, "perm": (self.perm + offsets).reshape(-1),
                "inverse_perm": (np.argsort(self.perm, axis=1) + offsets).reshape(-1),
                "scaled_gauss": self.gauss * self.scale[:, None],
                # the fast matvec gathers from a table of s numbers per block: index perm_i mod s (int32)
                "perm_in_support": (self.perm % support + np.arange(self.blocks)[:, None] * support)
                .reshape(-1).astype(np.int32),
                "signs_in_support": np.ascontiguousarray(self.signs[:, :support])}

    @property
    def support(self) -> int:
        """s = 2^⌈log2 min(d, n)⌉: z̃ is zero past its first min(d, n) entries, so only H_s ever meets it."""
        return next_power_of_two(min(self.d, self.n))

    def _matvec(self, z: Array, a: dict[str, Array]) -> Array:
        """P z with the first H applied at size s only (see ``matvec_textbook`` for the same map at full size n).

        z̃ (length n = m·s) is zero past its first s entries, and H_n = H_m ⊗ H_s (the bits of an index split
        into its high and low part), whose first column block is H_m[:, 0] ⊗ H_s = 1 ⊗ H_s.  So
        H_n B z̃ = (h, h, ..., h), m copies of h = H_s (B z̃)[:s], and Π of it is a gather from h alone:
        (Π H B z̃)_i = h[perm_i mod s].  Cost: one FWHT of size s (not n) and a gather from a table of s numbers
        (it stays in the cache), then the second FWHT of size n as before.
        """
        xp = backend.get_xp(z)
        s = self.support
        padded = xp.zeros((self.blocks, s), dtype=z.dtype)  # (blocks, s)
        padded.reshape(-1)[: self.d] = z
        h = fwht(padded * a["signs_in_support"])  # H_s B z̃                 (blocks, s)
        v = xp.take(h.reshape(-1), a["perm_in_support"]).reshape(self.blocks, self.n)  # Π H_n B z̃  (blocks, n)
        v = fwht(v * a["scaled_gauss"])  # s H G Π H B z̃             (blocks, n)
        return v[0, : self.D].copy() if self.blocks == 1 else v[:, : self.D].sum(axis=0)  # (D,)

    def _rmatvec(self, g: Array, a: dict[str, Array]) -> Array:
        """Pᵀ g with the last H applied at size s only (``rmatvec_textbook``: the same map at full size n).

        Only the first d ≤ s entries of B H Πᵀ u survive, and the first s rows of H_n = H_m ⊗ H_s are
        H_m[0, :] ⊗ H_s = (H_s, H_s, ..., H_s):  (H_n y)[:s] = H_s Σ_a y[a·s : (a + 1)·s].  So Πᵀ u is folded into
        one piece of length s (the sum of its m pieces) and the second FWHT runs at size s instead of n.
        """
        xp = backend.get_xp(g)
        s, m = self.support, self.n // self.support
        padded = xp.zeros((self.blocks, self.n), dtype=g.dtype)  # the adjoint of truncation  (blocks, n)
        padded[:, : self.D] = g
        u = fwht(padded) * a["scaled_gauss"]  # s G H g̃                       (blocks, n)
        y = xp.take(u.reshape(-1), a["inverse_perm"]).reshape(self.blocks, m, s)  # Πᵀ s G H g̃  (blocks, m, s)
        w = fwht(y.sum(axis=1)) * a["signs_in_support"]  # (B H Πᵀ s G H g̃)[:s]  (blocks, s)
        return w.reshape(-1)[: self.d].copy()  # (d,)

    def matvec_textbook(self, z: Array) -> Array:
        """P z computed as written, s · (H G Π H B z̃)[:D] with both FWHTs at size n: the twin of ``matvec``."""
        self._check(z, self.d, "matvec_textbook", "z")
        a = self._arrays(z)
        xp = backend.get_xp(z)
        padded = xp.zeros((self.blocks, self.n), dtype=z.dtype)  # (blocks, n)
        padded.reshape(-1)[: self.d] = z
        v = fwht(padded * a["signs"])  # H B z̃                       (blocks, n)
        v = v.reshape(-1)[a["perm"]].reshape(self.blocks, self.n)  # Π H B z̃       (blocks, n)
        v = fwht(v * a["scaled_gauss"])  # s H G Π H B z̃             (blocks, n)
        return v[0, : self.D].copy() if self.blocks == 1 else v[:, : self.D].sum(axis=0)  # (D,)

    def rmatvec_textbook(self, g: Array) -> Array:
        """Pᵀ g = B H Πᵀ s G H g̃, cut to d, with both FWHTs at size n: the twin of ``rmatvec``."""
        self._check(g, self.D, "rmatvec_textbook", "g")
        a = self._arrays(g)
        xp = backend.get_xp(g)
        padded = xp.zeros((self.blocks, self.n), dtype=g.dtype)  # the adjoint of truncation  (blocks, n)
        padded[:, : self.D] = g
        u = fwht(padded) * a["scaled_gauss"]  # s G H g̃           (blocks, n)
        u = u.reshape(-1)[a["inverse_perm"]].reshape(self.blocks, self.n)  # Πᵀ s G H g̃
        u = fwht(u) * a["signs"]  # B H Πᵀ s G H g̃                (blocks, n)
        return u.reshape(-1)[: self.d].copy()  # (d,)


PROJECTIONS: dict[str, type[Projection]] = {
    "dense": DenseProjection, "sparse": SparseProjection, "fastfood": FastfoodProjection,
}


def make_projection(kind: str, D: int, d: int, seed: int = 0) -> Projection:
    """The projection named ``kind`` ("dense", "sparse" or "fastfood") of shape (D, d), drawn from ``seed``."""
    if kind not in PROJECTIONS:
        raise ValueError(f"unknown projection {kind!r}; expected one of {sorted(PROJECTIONS)}")
    return PROJECTIONS[kind](D, d, seed)
