"""Checks for notebook 10, QLoRA: the bytes NF4 stores, blockwise absmax by hand, the worst rounding of a merge."""

from __future__ import annotations

from typing import Any

import numpy as np

from checks import NotYet, exercise, expect_close, expect_equal
from minilora.quant import NF4_CODE, dequantize_nf4, quantize_nf4

# (shape, blocksize, double_quant): even and odd sizes, a short last block, more than 256 blocks (a second
# double-quantisation scale), and a block size other than 64
_BYTE_CASES = [((64, 64), 64, False), ((3, 5), 64, False), ((3, 5), 64, True), ((100, 1000), 64, True),
               ((257, 3), 128, False), ((300, 61), 32, True), ((7,), 64, False), ((1024, 1024), 64, True)]


@exercise("10")
def nf4_bytes(answer: Any) -> str:
    """nf4_bytes(shape, blocksize, double_quant) = quantize_nf4(w, blocksize, double_quant).nbytes for any w of that
    shape: ⌈n/2⌉ packed bytes + 4·⌈n/b⌉ (float32 scales), or + ⌈n/b⌉ (8-bit codes) + 4·⌈⌈n/b⌉/256⌉ + 4 with double
    quantisation."""
    for shape, blocksize, double_quant in _BYTE_CASES:
        w = np.ones(shape, np.float32)
        want = quantize_nf4(w, blocksize, double_quant).nbytes
        got = answer(shape, blocksize, double_quant)
        if isinstance(got, float) and got.is_integer():
            got = int(got)
        expect_equal(f"nf4_bytes({shape}, blocksize={blocksize}, double_quant={double_quant})", got, want,
                     "count whole bytes and whole blocks: half a byte or part of a block is still stored; with "
                     "double quantisation count the 8-bit codes, the float32 second-level scales and the one "
                     "float32 mean")
    return ("⌈n/2⌉ bytes of codes + 4 bytes per block (or 1 byte per block + 4 per 256 blocks + 4): "
            "a 1024 × 1024 matrix stores 540,932 bytes against 4,194,304 in float32")


@exercise("10")
def nf4_roundtrip(answer: Any) -> str:
    """nf4_roundtrip(w, blocksize) = dequantize_nf4(quantize_nf4(w, blocksize)): blockwise absmax over the
    row-major flattened array, nearest NF4 value, times the block's absmax."""
    rng = np.random.default_rng(7)
    cases = [(rng.standard_normal((8, 64)).astype(np.float32), 64),
             (rng.normal(0, 0.05, (5, 30)).astype(np.float32), 64),        # 150 numbers: a short last block
             (rng.standard_normal((16, 24)).astype(np.float32) * np.linspace(0.1, 3, 24, dtype=np.float32), 32),
             (rng.standard_normal(200).astype(np.float32), 128),
             (np.vstack([np.zeros((1, 64), np.float32), rng.standard_normal((2, 64)).astype(np.float32)]), 64)]
    # the last case: a block of zeros (a pruned row), whose absmax is 0: it must come back as zeros
    for w, blocksize in cases:
        want = dequantize_nf4(quantize_nf4(w, blocksize))
        got = answer(w.copy(), blocksize)
        if got is None:
            raise NotYet("nf4_roundtrip returned None; return the dequantised array")
        expect_close(f"nf4_roundtrip(w of shape {w.shape}, blocksize={blocksize})", got, want, atol=1e-6, rtol=1e-6)
    return "ŵ = NF4_CODE[nearest] · absmax of the block, blocks over the flattened array: what quantize_nf4 stores"


@exercise("10")
def max_rounding_error(answer: Any) -> str:
    """max_rounding_error(absmax) = absmax · max_j (c_{j+1} − c_j) / 2: half the widest gap of the NF4 code."""
    half_gap = float(np.diff(NF4_CODE.astype(np.float64)).max() / 2)
    for absmax in (1.0, 0.25, np.array([0.5, 2.0, 0.03])):
        got = answer(absmax)
        if got is None:
            raise NotYet("max_rounding_error returned None; return a number (or an array for an array of absmaxes)")
        try:
            got = np.asarray(got, dtype=np.float64)
        except (TypeError, ValueError):
            raise NotYet(f"max_rounding_error({absmax!r}) returned {got!r}, not a number") from None
        want = np.asarray(absmax, dtype=np.float64) * half_gap
        if got.shape != want.shape:
            raise NotYet(f"max_rounding_error({absmax!r}) returned shape {got.shape}; return one bound per absmax "
                         f"(shape {want.shape})")
        if not np.allclose(got, want, rtol=1e-4, atol=0):
            raise NotYet(f"max_rounding_error({absmax!r}) = {np.round(got, 5)}, which is not right; hint: a weight "
                         "is rounded to the nearer of the two code values around it; which pair of neighbours leaves "
                         "it the most room? (NF4_CODE is not symmetric)")
    return (f"half the widest NF4 gap, {half_gap:.4f} × absmax (between −1 and the next value: the negative side "
            "has 7 values, the positive 8)")
