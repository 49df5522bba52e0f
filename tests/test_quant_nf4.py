"""NF4 in NumPy: the code table from normal quantiles, blockwise absmax rounding, packing, double quantisation."""

import math

import numpy as np
import pytest

from minilora import backend
from minilora.quant import NF4_CODE, dequantize_nf4, double_quantize, quantize_nf4
from minilora.quant.nf4 import (
    DYNAMIC_CODE,
    NF4_MIDPOINTS,
    NF4Tensor,
    _linspace32,
    create_dynamic_map,
    normal_ppf,
    quantize_blockwise,
)

# bitsandbytes' hard-coded table (functional.get_4bit_type("nf4")), copied here so this test needs no bitsandbytes
BNB_NF4 = [-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
           -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
           0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0]


def test_the_code_is_derived_from_normal_quantiles_and_equals_bitsandbytes_table():
    assert NF4_CODE.dtype == np.float32 and NF4_CODE.shape == (16,)
    np.testing.assert_allclose(NF4_CODE, BNB_NF4, rtol=0, atol=2e-7)
    assert (NF4_CODE == np.array(BNB_NF4, dtype=np.float32)).all()  # in fact bit for bit
    assert NF4_CODE[7] == 0.0 and (NF4_CODE[8:] > 0).sum() == 8 and (NF4_CODE[:7] < 0).sum() == 7


def test_the_inverse_normal_cdf_inverts_the_cdf():
    for p in (1e-6, 0.025, 0.5, 0.9677083, 0.975, 1 - 1e-9):
        x = normal_ppf(p)
        assert abs(0.5 * math.erfc(-x / math.sqrt(2)) - p) < 1e-15
    assert abs(normal_ppf(0.975) - 1.959963984540054) < 1e-14
    with pytest.raises(ValueError, match=r"p must be in \(0, 1\)"):
        normal_ppf(1.0)


def test_linspace_and_the_dynamic_code_follow_torch_float32_steps():
    assert (_linspace32(0.1, 1, 9) == np.array([0.1, 0.2125, 0.325, 0.4375, 0.55, 0.6625, 0.775, 0.8875, 1.0],
                                               dtype=np.float32)).all()
    code = create_dynamic_map()
    assert code.shape == (256,) and (np.diff(code) > 0).all() and code[-1] == 1.0 and 0.0 in code
    assert (DYNAMIC_CODE == code).all() and abs(code[0] + 0.99296874) < 1e-7


def test_each_value_goes_to_the_nearest_code_value_with_ties_to_the_lower_one():
    # one block: absmax = 1 (the last value), so y = w
    mids = NF4_MIDPOINTS
    w = np.array([0.0, 0.03, -0.03, mids[8], np.nextafter(mids[8], np.float32(1)), -1.0, 0.99, 1.0], np.float32)
    q = quantize_nf4(w, blocksize=32)
    idx = np.stack([q.packed >> 4, q.packed & 15], axis=1).reshape(-1)
    assert idx.tolist() == [7, 7, 7, 8, 9, 0, 15, 15]
    rng = np.random.default_rng(0)
    w = rng.standard_normal(4096).astype(np.float32)
    q = quantize_nf4(w, blocksize=64)
    y = w.reshape(-1, 64) / np.abs(w.reshape(-1, 64)).max(axis=1, keepdims=True)
    nearest = np.abs(y.reshape(-1, 1) - NF4_CODE).argmin(axis=1)
    idx = np.stack([q.packed >> 4, q.packed & 15], axis=1).reshape(-1)
    assert (idx == nearest).mean() > 0.999  # equal except where y·(1/a) and y/a round differently at a midpoint


def test_packing_puts_the_first_element_in_the_high_nibble_and_pads_odd_lengths_with_zero():
    w = np.array([-1.0, 1.0, 0.0], np.float32)  # indices 0, 15, 7 (+ padding 7)
    q = quantize_nf4(w, blocksize=64)
    assert q.packed.dtype == np.uint8 and q.packed.tolist() == [0x0F, 0x77]
    assert q.absmax.tolist() == [1.0] and q.shape == (3,)


@pytest.mark.parametrize("shape,blocksize", [((64, 64), 64), ((33, 97), 64), ((5,), 32), ((300, 7), 4096),
                                             ((128, 256), 256)])
def test_dequantisation_restores_the_shape_within_half_a_code_step(shape, blocksize):
    w = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    q = quantize_nf4(w, blocksize=blocksize)
    back = dequantize_nf4(q)
    assert back.shape == w.shape and back.dtype == np.float32
    absmax = np.repeat(q.absmax, blocksize)[:w.size].reshape(shape)
    half_step = np.diff(NF4_CODE).max() / 2
    assert (np.abs(back - w) <= half_step * absmax + 1e-6).all()
    assert q.packed.size == (w.size + 1) // 2 and q.absmax.size == -(-w.size // blocksize)


def test_bits_per_parameter_are_4_5_and_4_127_with_double_quantisation():
    w = np.random.default_rng(2).standard_normal((1024, 1024)).astype(np.float32)
    assert quantize_nf4(w).bits_per_parameter == 4.5
    dq = quantize_nf4(w, double_quant=True)
    assert dq.bits_per_parameter == pytest.approx(4 + 8 / 64 + 32 / (64 * 256), abs=1e-4)
    assert round(dq.bits_per_parameter, 3) == 4.127


def test_double_quantisation_recovers_the_scales_to_8_bits():
    w = np.random.default_rng(3).standard_normal((512, 512)).astype(np.float32) * 0.02
    plain, dq = quantize_nf4(w), quantize_nf4(w, double_quant=True)
    assert (plain.packed == dq.packed).all() and dq.scales is None
    assert dq.double.codes.dtype == np.uint8 and dq.double.absmax2.size == -(-plain.absmax.size // 256)
    assert dq.double.offset == pytest.approx(plain.absmax.mean(), rel=1e-6)
    np.testing.assert_allclose(dq.absmax, plain.absmax, rtol=2e-2)  # 8-bit codes of the spread around the mean
    exact = double_quantize(plain.absmax, rounding="nearest")
    assert (exact.codes != dq.double.codes).mean() < 0.01  # the CPU look-up table differs only at midpoints


def test_blockwise_8bit_nearest_rounding_and_zero_blocks():
    x = np.concatenate([np.zeros(256, np.float32), np.array([1.0, -1.0, 0.5, 0.0], np.float32)])
    codes, absmax = quantize_blockwise(x, rounding="nearest")
    assert absmax.tolist() == [0.0, 1.0] and (codes[:256] == 0).all()
    assert DYNAMIC_CODE[codes[256]] == 1.0 and DYNAMIC_CODE[codes[259]] == 0.0
    assert DYNAMIC_CODE[codes[257]] == DYNAMIC_CODE[0]  # −1 goes to the nearest code value, −0.99297
    with pytest.raises(ValueError, match="rounding must be"):
        quantize_blockwise(x, rounding="up")


def test_user_mistakes_are_one_line_errors():
    with pytest.raises(ValueError, match="blocksize must be one of 32, 64"):
        quantize_nf4(np.ones(8, np.float32), blocksize=48)
    with pytest.raises(ValueError, match="floating-point"):
        quantize_nf4(np.ones(8, np.int64))
    with pytest.raises(ValueError, match="NaN or infinite"):
        quantize_nf4(np.array([1.0, np.nan], np.float32))
    with pytest.raises(ValueError, match="empty"):
        quantize_nf4(np.zeros(0, np.float32))


def test_all_zero_blocks_dequantise_to_zero():
    w = np.zeros((4, 64), np.float32)
    w[3, :] = 1.0
    assert (dequantize_nf4(quantize_nf4(w)) == w).all()


@pytest.mark.parametrize("double_quant", [False, True])
def test_dequantisation_runs_on_the_device_the_codes_live_on(device, double_quant):
    w = np.random.default_rng(4).standard_normal((40, 70)).astype(np.float32)
    q = quantize_nf4(w, blocksize=64, double_quant=double_quant)
    moved = q.to(device)
    assert isinstance(moved, NF4Tensor) and moved.device == device
    back = dequantize_nf4(moved)
    assert backend.device_of(back) == device
    assert (backend.to_host(back) == dequantize_nf4(q)).all()
    assert moved.nbytes == q.nbytes


def test_a_full_block_multiplies_by_the_reciprocal_and_the_short_last_block_divides():
    # as bitsandbytes: x · (1/a) in a full block, x / a in the short last one; here they fall on either side of the
    # midpoint between 0 and 0.0796 (x / a is exactly the midpoint: a tie, to the lower value 0)
    a, x = np.float32(1.4554425), np.float32(0.05791228)
    assert x / a == NF4_MIDPOINTS[7] < x * (np.float32(1) / a)
    short = quantize_nf4(np.array([a, x], np.float32), blocksize=32)
    full = quantize_nf4(np.concatenate([[a, x], np.zeros(30)]).astype(np.float32), blocksize=32)
    assert short.packed[0] == 0xF7 and full.packed[0] == 0xF8
