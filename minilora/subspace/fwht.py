"""The fast Walsh–Hadamard transform (FWHT): y = H x in O(n log n) for n = 2^m, without forming H.

H is the *unnormalised* Sylvester–Hadamard matrix, entries ±1:

    H_1 = [1],   H_2n = [[H_n,  H_n],
                         [H_n, −H_n]],     H_n[i, j] = (−1)^popcount(i AND j),   Hᵀ = H,   H H = n·I.

Why it is fast.  The entry (−1)^popcount(i AND j) factorises over groups of bits of i and j, so H is a
Kronecker product of small Hadamard matrices:  H_n = H_{k_1} ⊗ H_{k_2} ⊗ ... ⊗ H_{k_r}  with n = k_1·...·k_r.
Reshape x (length n, C order) into a tensor X of shape (k_1, ..., k_r); then H x is X with H_{k_a}
applied along every axis a — r small matrix products of total cost 2·n·(k_1 + ... + k_r) multiply-adds
instead of n² (H_{2^17}: 2·2^17·(16+16+8+8+8) ≈ 15 MFLOP, against 1.7·10^10 for the dense product).

The classic butterfly (``fwht_butterfly``: factors of 2, 17 passes of y = [a + b, a − b] for n = 2^17) does
the fewest arithmetic operations but reads and writes the whole vector once per bit, and in NumPy each pass
is a few elementwise calls; factors of 8 or 16 use the BLAS and pass over the data only ⌈m / 4⌉ times.  The
butterfly stays here as the reference that ``fwht`` is tested against (tests/test_subspace_projections.py);
``python -m minilora.bench --subspace`` measures the projections built on ``fwht``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minilora import backend

__all__ = ["fwht", "fwht_butterfly", "hadamard", "kronecker_factors", "next_power_of_two"]

MAX_FACTOR_BITS = 4  # small Hadamard matrices of at most 2^4 = 16 rows (the fastest choice on one CPU core)

_matrices: dict[tuple[str, str, int], Any] = {}  # (device, dtype, k) -> H_k on that device


def next_power_of_two(n: int) -> int:
    """The smallest power of two ≥ n (n ≥ 1):  2^⌈log2 n⌉."""
    if n < 1:
        raise ValueError(f"next_power_of_two: n must be >= 1, got {n}")
    return 1 << (int(n) - 1).bit_length()


def hadamard(n: int) -> np.ndarray:
    """The unnormalised n × n Sylvester–Hadamard matrix (host, float64):  H_2n = [[H_n, H_n], [H_n, −H_n]]."""
    if n < 1 or n & (n - 1):
        raise ValueError(f"hadamard: n must be a power of two, got {n}")
    h = np.ones((1, 1))
    while h.shape[0] < n:
        h = np.block([[h, h], [h, -h]])
    return h


def kronecker_factors(n: int) -> list[int]:
    """Sizes k_1, ..., k_r (powers of two, each ≤ 2^MAX_FACTOR_BITS, as equal as possible) with k_1·...·k_r = n.

    >>> kronecker_factors(2**17)
    [16, 16, 8, 8, 8]
    """
    bits = int(n).bit_length() - 1
    if n < 1 or 1 << bits != n:
        raise ValueError(f"kronecker_factors: n must be a power of two, got {n}")
    parts = -(-bits // MAX_FACTOR_BITS)
    return [1 << (bits // parts + (1 if i < bits % parts else 0)) for i in range(parts)]


def _hadamard_on(k: int, like: Any) -> Any:
    """H_k with ``like``'s dtype on ``like``'s device (built once, cached)."""
    key = (backend.device_of(like), like.dtype.str, k)
    if key not in _matrices:
        _matrices[key] = backend.to_device(hadamard(k).astype(like.dtype), key[0])
    return _matrices[key]


def fwht(x: Any) -> Any:
    """y = H_n x along the last axis of ``x`` (shape (..., n), n a power of two), unnormalised (H H = n·I).

    Leading axes are a batch: every row is transformed.  Works on NumPy and device arrays (matrix
    products only); returns a new array of ``x``'s dtype.
    """
    n = x.shape[-1]
    factors = kronecker_factors(n)
    total = x.size
    pre = total // n  # rows of the batch, then the axes already transformed
    y = x.copy() if not factors else x
    for k in factors:
        h = _hadamard_on(k, x)  # (k, k), symmetric
        post = total // (pre * k)
        if post == 1:
            y = y.reshape(pre, k) @ h  # last axis
        elif pre == 1:
            y = h @ y.reshape(k, post)  # first axis: one large product
        else:
            y = h @ y.reshape(pre, k, post)  # a middle axis: a batch of products
        pre *= k
    return y.reshape(x.shape)


def fwht_butterfly(x: Any) -> Any:
    """y = H_n x along the last axis by the classic butterfly: the textbook twin of ``fwht``, same result.

    log2(n) passes; the pass with half-width h splits every block of 2h values into halves a and b and
    replaces it by [a + b, a − b] (that is H_2 ⊗ I_h applied blockwise; after all passes, H_n):

        h = 1
        while h < n:
            for i in range(0, n, 2 * h):
                a, b = y[i:i + h], y[i + h:i + 2 * h]
                y[i:i + h], y[i + h:i + 2 * h] = a + b, a − b
            h *= 2

    Below, the inner loop runs for all blocks (and all rows of a batch) at once.  n·log2(n) additions.
    """
    n = x.shape[-1]
    if n < 1 or n & (n - 1):
        raise ValueError(f"fwht_butterfly: the last axis must have a power-of-two length, got {n}")
    xp = backend.get_xp(x)
    y = x.reshape(-1, n).copy()                            # (rows, n), a new array even when n = 1
    h = 1
    while h < n:
        blocks = y.reshape(-1, n // (2 * h), 2, h)         # (rows, blocks, halves, h)
        a, b = blocks[:, :, 0, :], blocks[:, :, 1, :]
        y = xp.stack([a + b, a - b], axis=2).reshape(-1, n)
        h *= 2
    return y.reshape(x.shape)
