"""NF4 byte for byte with bitsandbytes on the CPU: packed codes, block scales, dequantised weights, double quantisation.

Runs with the ``quant`` extra (``pip install -e .[quant]``); skips without it.
"""

import warnings

import numpy as np
import pytest

bnb_functional = pytest.importorskip("bitsandbytes.functional", reason="bitsandbytes not installed (the quant extra)")
torch = pytest.importorskip("torch")

from minilora.quant import NF4_CODE, dequantize_nf4, double_quantize, quantize_nf4  # noqa: E402
from minilora.quant.nf4 import DYNAMIC_CODE, NF4Tensor  # noqa: E402

BLOCKSIZES = (32, 64, 128, 256, 512, 1024, 2048, 4096)
SHAPES = [(64, 64), (128, 96), (33, 97), (7,), (1, 1), (100,), (300, 37), (256, 256)]


def _bnb(w, blocksize, double_quant=False):
    with warnings.catch_warnings():  # bitsandbytes may warn that an optional CPU kernel package is missing
        warnings.simplefilter("ignore")
        return bnb_functional.quantize_4bit(torch.tensor(w), quant_type="nf4", blocksize=blocksize,
                                            compress_statistics=double_quant)


def _weights(shape, seed):
    rng = np.random.default_rng(seed)
    w = (rng.standard_normal(shape) * rng.uniform(0.01, 2.0)).astype(np.float32)
    if w.size >= 128:
        w.reshape(-1)[:64] = 0.0  # an all-zero block
    return w


def test_the_tables_are_bitsandbytes_tables():
    code = bnb_functional.get_4bit_type("nf4", device="cpu").numpy()
    assert (NF4_CODE == code).all()
    assert (DYNAMIC_CODE == bnb_functional.create_dynamic_map().numpy()).all()


@pytest.mark.parametrize("blocksize", BLOCKSIZES)
def test_packed_bytes_and_block_scales_equal_bitsandbytes(blocksize):
    for seed, shape in enumerate(SHAPES):
        w = _weights(shape, seed)
        packed, state = _bnb(w, blocksize)
        q = quantize_nf4(w, blocksize=blocksize)
        assert (q.packed == packed.numpy().reshape(-1)).all(), (shape, blocksize)
        assert (q.absmax == state.absmax.numpy()).all(), (shape, blocksize)


@pytest.mark.parametrize("blocksize", BLOCKSIZES)
def test_dequantised_weights_equal_bitsandbytes(blocksize):
    for seed, shape in enumerate(SHAPES):
        w = _weights(shape, seed)
        packed, state = _bnb(w, blocksize)
        ours = dequantize_nf4(quantize_nf4(w, blocksize=blocksize))
        if shape[-1] % blocksize == 0:
            # dequantize_4bit's CPU kernel (AVX-512) indexes the scales per row, right when rows hold whole blocks
            theirs = bnb_functional.dequantize_4bit(packed, state).numpy()
            assert (ours.reshape(-1) == theirs.reshape(-1)).all(), (shape, blocksize)
        # bitsandbytes' reference (PyTorch) dequantisation: the format's definition, any shape
        reference = torch.tensor(NF4_CODE)[_indices(packed)][:w.size]
        scales = state.absmax.repeat_interleave(blocksize)[:w.size]
        assert (ours.reshape(-1) == (reference * scales).numpy()).all(), (shape, blocksize)


def _indices(packed):
    flat = packed.reshape(-1).to(torch.int64)
    return torch.stack([flat >> 4, flat & 15], dim=1).reshape(-1)


@pytest.mark.parametrize("blocksize", BLOCKSIZES)
def test_double_quantisation_recovers_bitsandbytes_scales(blocksize):
    for seed, shape in enumerate(SHAPES):
        w = _weights(shape, seed)
        packed, state = _bnb(w, blocksize, double_quant=True)
        plain = quantize_nf4(w, blocksize=blocksize)
        # bitsandbytes subtracts torch's float32 mean (its own summation order); given that mean, every byte agrees
        offset = state.offset.item()
        assert offset == pytest.approx(float(plain.absmax.mean(dtype=np.float64)), rel=1e-6, abs=1e-7)
        dq = double_quantize(plain.absmax, offset=offset)
        assert (dq.codes == state.absmax.numpy()).all(), (shape, blocksize)
        assert (dq.absmax2 == state.state2.absmax.numpy()).all(), (shape, blocksize)
        recovered = bnb_functional.dequantize_blockwise(state.absmax, state.state2).numpy() + state.offset.numpy()
        q = NF4Tensor(plain.packed, plain.shape, blocksize, double=dq)
        assert (q.absmax == recovered).all(), (shape, blocksize)
        assert (dequantize_nf4(q).reshape(-1) == _dequantize_reference(packed, recovered, blocksize, w.size)).all()
        # with our own (float64) mean the offsets differ in the last bit: the scales agree to float32 rounding, except
        # a rare one lying at a look-up-table boundary, which moves to the neighbouring 8-bit code (< 0.5%)
        ours = quantize_nf4(w, blocksize=blocksize, double_quant=True)
        assert np.isclose(ours.absmax, recovered, rtol=1e-5, atol=1e-6).mean() > 0.99
        np.testing.assert_allclose(ours.absmax, recovered, rtol=5e-3, atol=1e-6)


def _dequantize_reference(packed, absmax, blocksize, n):
    values = torch.tensor(NF4_CODE)[_indices(packed)][:n]
    return (values * torch.tensor(absmax).repeat_interleave(blocksize)[:n]).numpy()


def test_bitsandbytes_reports_the_error_its_own_test_reports():
    # bitsandbytes' tests quote mean |w − ŵ| for a 1024 x 1024 standard normal matrix: 0.0728 / 0.0803 / 0.0925
    w = np.random.default_rng(0).standard_normal((1024, 1024)).astype(np.float32)
    for blocksize, expected in ((64, 0.0728), (256, 0.0803), (4096, 0.0925)):
        err = np.abs(dequantize_nf4(quantize_nf4(w, blocksize=blocksize)) - w).mean()
        assert err == pytest.approx(expected, abs=2e-3)


def test_ties_and_the_short_last_block_round_as_bitsandbytes():
    a, x = np.float32(1.4554425), np.float32(0.05791228)  # x / a is a midpoint; x · (1/a) lies just above it
    for w in (np.array([a, x], np.float32), np.concatenate([[a, x], np.zeros(30)]).astype(np.float32)):
        packed, state = _bnb(w, 32)
        assert (quantize_nf4(w, blocksize=32).packed == packed.numpy().reshape(-1)).all()
