"""Solutions to the exercises of 10_qlora (try them yourself first)."""

import math

import numpy as np

from minilora.quant import NF4_CODE


def nf4_bytes(shape: tuple, blocksize: int = 64, double_quant: bool = False) -> int:
    """⌈n/2⌉ bytes of packed codes, plus per block a float32 absmax (4 bytes), or with double quantisation an 8-bit
    code per block, a float32 scale per 256 blocks and one float32 mean."""
    n = math.prod(shape)
    blocks = -(-n // blocksize)
    packed = -(-n // 2)
    if not double_quant:
        return packed + 4 * blocks
    return packed + blocks + 4 * -(-blocks // 256) + 4


def nf4_roundtrip(w: np.ndarray, blocksize: int = 64) -> np.ndarray:
    """Flatten, cut into blocks, divide by each block's absmax, round to the nearest NF4 value, multiply back."""
    flat = np.asarray(w, dtype=np.float32).reshape(-1)
    out = np.empty_like(flat)
    for start in range(0, flat.size, blocksize):
        block = flat[start:start + blocksize]
        absmax = np.abs(block).max()
        y = block / absmax if absmax > 0 else block
        nearest = np.abs(y[:, None] - NF4_CODE[None, :]).argmin(axis=1)
        out[start:start + blocksize] = NF4_CODE[nearest] * absmax
    return out.reshape(np.shape(w))


def max_rounding_error(absmax):
    """Half the widest gap between neighbouring NF4 values, times the block's absmax."""
    return np.asarray(absmax, dtype=np.float64) * float(np.diff(NF4_CODE).max()) / 2


def _global_absmax(w, blocksize=64):
    """One scale for the whole array: blocks ignored."""
    flat = np.asarray(w, dtype=np.float32).reshape(-1)
    a = np.abs(flat).max()
    return (NF4_CODE[np.abs(flat[:, None] / a - NF4_CODE[None, :]).argmin(axis=1)] * a).reshape(np.shape(w))


def _column_blocks(w, blocksize=64):
    """Blocks cut from the transposed (column-major) array."""
    w = np.asarray(w, dtype=np.float32)
    return nf4_roundtrip(w.T.copy(), blocksize).T if w.ndim == 2 else nf4_roundtrip(w, blocksize)


def _blockwise(w, blocksize, code):
    """Absmax blocks of ``blocksize`` values, each y = block / absmax replaced by ``code(y)``, times absmax again."""
    flat = np.asarray(w, dtype=np.float32).reshape(-1)
    out = np.empty_like(flat)
    for start in range(0, flat.size, blocksize):
        block = flat[start:start + blocksize]
        a = np.abs(block).max()
        out[start:start + blocksize] = code(block / a) * a
    return out.reshape(np.shape(w))


def _rounded_down(w, blocksize=64):
    """The code value just below y instead of the nearest one."""
    return _blockwise(w, blocksize, lambda y: NF4_CODE[np.clip(np.searchsorted(NF4_CODE, y, side="right") - 1, 0, 15)])


def _uniform_code(w, blocksize=64):
    """The uniform 4-bit code (15 levels −7a/7 … 7a/7) instead of NF4."""
    return _blockwise(w, blocksize, lambda y: np.round(7 * y) / 7)


def _fractional_bytes(shape, blocksize=64, double_quant=False):
    """n/2 + 4n/b: half bytes and parts of blocks counted as if they were stored."""
    n = math.prod(shape)
    return n / 2 + 4 * n / blocksize


def _no_mean(shape, blocksize=64, double_quant=False):
    """Double quantisation without the one float32 mean."""
    return nf4_bytes(shape, blocksize, double_quant) - (4 if double_quant else 0)


def _no_second_level(shape, blocksize=64, double_quant=False):
    """Double quantisation without the float32 scale per 256 blocks."""
    blocks = -(-math.prod(shape) // blocksize)
    return nf4_bytes(shape, blocksize, double_quant) - (4 * -(-blocks // 256) if double_quant else 0)


def _blocks_rounded_down(shape, blocksize=64, double_quant=False):
    """n // b blocks: the short last block gets no scale."""
    n = math.prod(shape)
    return -(-n // 2) + 4 * (n // blocksize)


_GAPS = np.diff(NF4_CODE.astype(np.float64))

# Common mistakes: tests/test_tutorials.py checks that each one fails its check.
MISTAKES = {
    "nf4_bytes": [_fractional_bytes, _no_mean, _no_second_level, _blocks_rounded_down],
    "nf4_roundtrip": [_global_absmax, _column_blocks, _rounded_down, _uniform_code],
    "max_rounding_error": [
        lambda absmax: np.asarray(absmax, dtype=np.float64) * _GAPS[-1] / 2,   # the positive end's gap only
        lambda absmax: np.asarray(absmax, dtype=np.float64) * _GAPS.max(),      # the whole gap, not half
        lambda absmax: np.asarray(absmax, dtype=np.float64) * _GAPS.min() / 2,  # the smallest gap
        lambda absmax: np.asarray(absmax, dtype=np.float64) / 14,               # a uniform code's half step
    ],
}
