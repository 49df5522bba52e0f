"""NF4, the 4-bit NormalFloat of QLoRA (Dettmers et al. 2023, arXiv 2305.14314), in NumPy, byte for byte with
bitsandbytes.

A pretrained weight matrix looks normal: its numbers are close to N(0, σ²).  Storing it in 4 bits means choosing 16
values and replacing every weight by the nearest one.  NF4 does three things:

1. **Blockwise absmax scaling.**  Cut the flattened weight into blocks of ``blocksize`` (64) numbers and divide each
   block by its largest magnitude, absmax = max |w_i|: every block now lies in [-1, 1], whatever σ was, and one
   outlier spoils only its own block.
2. **A code made of normal quantiles** (``NF4_CODE``).  If the normalised weights are (roughly) normal, the best
   16 values give each of the 16 "bins" the same probability: they are quantiles q_i = Φ⁻¹(p_i) of N(0, 1), rescaled
   so the largest is 1.  Every code value is then used about equally often — no bit is wasted on the empty tails.
3. **Round to the nearest code value**, i.e. compare against the 15 midpoints between neighbouring code values, and
   pack two 4-bit indices into one byte (the first element in the high nibble, as bitsandbytes).

Dequantisation is a table look-up and one multiply: ŵ_i = NF4_CODE[index_i] · absmax_block.

**Double quantisation** (``double_quant=True``) then stores the block scales themselves in 8 bits: each float32
absmax costs 32 bits per 64 weights = 0.5 bit per weight; subtracting their mean and quantising them in blocks of 256
with an 8-bit code (``DYNAMIC_CODE``) costs 8/64 + 32/(64·256) ≈ 0.127 bit per weight (plus the one float32 mean), so
a weight costs 4.127 bits instead of 4.5.

Everything here runs on the host in NumPy (quantisation is done once, when a model is loaded); ``dequantize_nf4``
runs on the device the codes live on (NumPy, CuPy or a test device).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from minilora import backend

__all__ = ["BLOCKSIZES", "DOUBLE_QUANT_BLOCKSIZE", "DYNAMIC_CODE", "NF4_CODE", "NF4_MIDPOINTS", "NF4_OFFSET",
           "DoubleQuant", "NF4Tensor", "create_dynamic_map", "create_normal_map", "dequantize_blockwise",
           "dequantize_nf4", "double_quantize", "normal_ppf", "quantize_blockwise", "quantize_nf4",
           "uniform4_roundtrip"]

BLOCKSIZES = (32, 64, 128, 256, 512, 1024, 2048, 4096)
"""The block sizes bitsandbytes' ``quantize_4bit`` accepts (its default, and QLoRA's, is 64)."""

DOUBLE_QUANT_BLOCKSIZE = 256
"""Double quantisation quantises the block scales in blocks of 256 (bitsandbytes' ``compress_statistics``)."""

NF4_OFFSET = 0.9677083
"""The outermost probability of the NF4 code: q_max = Φ⁻¹(0.9677083) ≈ 1.848.

Φ⁻¹(1) = ∞, so the top quantile cannot be the last one.  QLoRA takes the mean of 1 − 1/(2·15) = 0.96667 and
1 − 1/(2·16) = 0.96875 (the centres of the last bin of a 15- and of a 16-bin split): 0.9677083."""


def normal_ppf(p: float) -> float:
    """Φ⁻¹(p), the quantile function (inverse CDF) of N(0, 1), for 0 < p < 1, by bisection.

    Φ(x) = ½ erfc(−x / √2) is increasing, so halving an interval [lo, hi] with Φ(lo) < p ≤ Φ(hi) finds x with
    Φ(x) = p to the last bit of a float64 in about 60 halvings (``scipy.stats.norm.ppf`` computes the same number with
    a rational approximation; NF4 needs 15 of them, once).
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"normal_ppf: p must be in (0, 1), got {p!r}")
    lo, hi = -40.0, 40.0
    while True:
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):  # the interval holds no float64 between its ends: converged
            return mid
        if 0.5 * math.erfc(-mid / math.sqrt(2.0)) < p:
            lo = mid
        else:
            hi = mid


def _linspace32(start: float, end: float, steps: int) -> np.ndarray:
    """``torch.linspace(start, end, steps)`` in float32, bit for bit: a float32 step h = (end − start) / (steps − 1),
    the first half start + h·i and the second half end − h·(steps − 1 − i), each rounded once to float32 (a fused
    multiply-add), so both ends are exact.  bitsandbytes builds its code tables with it."""
    s, e = float(np.float32(start)), float(np.float32(end))
    h = float((np.float32(e) - np.float32(s)) / np.float32(steps - 1))
    return np.array([s + h * i if i < steps // 2 else e - h * (steps - 1 - i) for i in range(steps)],
                    dtype=np.float64).astype(np.float32)


def create_normal_map(offset: float = NF4_OFFSET) -> np.ndarray:
    """The 16 NF4 code values (float32, sorted, from −1 to 1), derived from N(0, 1) quantiles.

        positive:  q⁺_j = Φ⁻¹(p_j),   p = 8 points from ``offset`` down towards 0.5 (9 evenly spaced, 0.5 dropped)
        negative:  q⁻_j = −Φ⁻¹(p_j),  p = 7 points from ``offset`` down towards 0.5 (8 evenly spaced, 0.5 dropped)
        code = sorted(q⁻ ∪ {0} ∪ q⁺) / max(q⁺)

    Why 8 positive, 7 negative and an exact 0: 4 bits give 16 values.  A symmetric code (±8 values) would have no
    zero, and zero matters (padding, pruned weights, and a block's many near-zero weights should dequantise to 0 not
    to ±0.04); so one value is spent on an exact zero and the other 15 are split 8 / 7.  Dividing by the largest
    quantile maps the code onto [−1, 1], the range of a block divided by its absmax.

    bitsandbytes computes this with ``scipy.stats.norm.ppf`` (``create_normal_map``) and hard-codes the result; with
    the same float32 steps this function gives the same 16 float32 numbers, bit for bit.
    """
    positive = [normal_ppf(float(p)) for p in _linspace32(offset, 0.5, 9)[:-1]]
    negative = [-normal_ppf(float(p)) for p in _linspace32(offset, 0.5, 8)[:-1]]
    values = np.sort(np.array(negative + [0.0] + positive, dtype=np.float32))
    return values / values.max()


def create_dynamic_map(signed: bool = True, max_exponent_bits: int = 7, total_bits: int = 8) -> np.ndarray:
    """The 8-bit *dynamic* code of bitsandbytes (Dettmers 2015, arXiv 1511.04561): 256 sorted float32 values in [−1, 1].

    A dynamic-exponent number is 10^(−e) · f: the more leading zero bits an exponent e takes, the fewer bits are left
    for the fraction f.  For e = 6, 5, ..., 0 the values are the midpoints of 2^(i) (signed) evenly spaced intervals
    of [0.1, 1], times 10^(i − 6) for i = 0..6, each with both signs; plus 0 and 1.  Small magnitudes get
    relative precision, large ones absolute precision — a good code for numbers spread over decades, such as the
    mean-subtracted block scales of double quantisation.
    """
    data: list[float] = []
    non_sign_bits = total_bits - 1
    additional_items = 2 ** (non_sign_bits - max_exponent_bits) - 1
    for i in range(max_exponent_bits):
        items = int(2 ** (i + non_sign_bits - max_exponent_bits) + 1 if signed
                    else 2 ** (i + non_sign_bits - max_exponent_bits + 1) + 1)
        data += _decade(i, items, max_exponent_bits, signed)
    if additional_items > 0:
        data += _decade(max_exponent_bits - 1, additional_items + 1, max_exponent_bits, signed)
    data += [0.0, 1.0]
    data += [0.0] * (2 ** total_bits - len(data))
    return np.sort(np.array(data, dtype=np.float32))


def _decade(i: int, items: int, max_exponent_bits: int, signed: bool) -> list[float]:
    """10^(i − max_exponent_bits + 1) times the midpoints of ``items`` − 1 equal intervals of [0.1, 1] (and their
    negatives when ``signed``), in float32 arithmetic as bitsandbytes (torch) computes them."""
    bounds = _linspace32(0.1, 1, items)
    means = (bounds[:-1] + bounds[1:]) / np.float32(2.0)
    scaled = np.float32(10 ** (-(max_exponent_bits - 1) + i)) * means
    return scaled.tolist() + ((-np.float32(10 ** (-(max_exponent_bits - 1) + i))) * means).tolist() * signed


NF4_CODE: np.ndarray = create_normal_map()
"""The 16 NF4 values, index 0 → −1.0, index 7 → 0.0, index 15 → 1.0 (float32; equal to bitsandbytes' table)."""
NF4_CODE.flags.writeable = False

NF4_MIDPOINTS: np.ndarray = (NF4_CODE[:-1] + NF4_CODE[1:]) / np.float32(2.0)
"""The 15 decision boundaries m_i = (c_i + c_{i+1}) / 2 (float32): x goes to the first i with x ≤ m_i."""
NF4_MIDPOINTS.flags.writeable = False

DYNAMIC_CODE: np.ndarray = create_dynamic_map()
"""The 256-value 8-bit code of double quantisation (float32, sorted, −0.99297 to 1.0; equal to bitsandbytes')."""
DYNAMIC_CODE.flags.writeable = False

LUT_SIZE = 65536
"""bitsandbytes' CPU kernel rounds 8-bit codes through a table of the nearest code value at 65536 points of [−1, 1]."""


# --------------------------------------------------------------------------------------------- 8-bit blocks


def quantize_blockwise(x: np.ndarray, code: np.ndarray = DYNAMIC_CODE, blocksize: int = DOUBLE_QUANT_BLOCKSIZE,
                       rounding: str = "nearest") -> tuple[np.ndarray, np.ndarray]:
    """8-bit blockwise absmax quantisation of a host float32 vector: (indices uint8 (n,), absmax float32 (blocks,)).

    Per block: a = max |x_i| and y_i = clip(x_i · (1 / a), −1, 1) in float32 (an all-zero block: a = 0, index 0), then

    ``rounding="nearest"``: index_i = #{ j : m_j < y_i } with the midpoints m_j = (c_j + c_{j+1}) / 2 — the nearest
        code value, a tie going to the lower one (what the CUDA kernel computes);
    ``rounding="lut"``: bitsandbytes' CPU kernel (0.50): y is first snapped to the nearest of 65536 grid points
        g_k = −1 + 2k / 65535, k = ⌊(y + 1) · ½ · 65535 + ½⌋, and g_k is rounded to the nearest code value.  A value
        within half a grid step (1.5e-5) of a midpoint can go to the farther neighbour: a speed trick, not a rule.
    """
    if rounding not in ("nearest", "lut"):
        raise ValueError(f"quantize_blockwise: rounding must be 'nearest' or 'lut', got {rounding!r}")
    x = np.asarray(x, dtype=np.float32).reshape(-1)
    n = x.size
    blocks = -(-n // blocksize)
    padded = np.zeros(blocks * blocksize, dtype=np.float32)
    padded[:n] = x
    absmax = np.abs(padded.reshape(blocks, blocksize)).max(axis=1)            # (blocks,)
    with np.errstate(divide="ignore"):
        inv = np.where(absmax > 0, np.float32(1.0) / absmax, np.float32(0.0)).astype(np.float32)
    y = np.clip(padded.reshape(blocks, blocksize) * inv[:, None], -1.0, 1.0).reshape(-1)[:n]
    midpoints = (code[:-1] + code[1:]) * np.float32(0.5)
    if rounding == "nearest":
        indices = np.searchsorted(midpoints, y, side="left")
    else:
        grid = np.float32(-1.0) + (np.float32(2.0) * np.arange(LUT_SIZE, dtype=np.float32)) / np.float32(LUT_SIZE - 1)
        lut = np.searchsorted(midpoints, grid, side="left")
        k = ((y + np.float32(1.0)) * np.float32(0.5) * np.float32(LUT_SIZE - 1) + np.float32(0.5)).astype(np.uint16)
        indices = lut[k]
    indices = np.where(np.repeat(absmax, blocksize)[:n] > 0, indices, 0)
    return indices.astype(np.uint8), absmax


def dequantize_blockwise(indices: Any, absmax: Any, code: Any, blocksize: int = DOUBLE_QUANT_BLOCKSIZE) -> Any:
    """x̂_i = code[index_i] · absmax_block(i), float32, on the device the arrays live on."""
    xp = backend.get_xp(indices)
    n = indices.shape[0]
    blocks = absmax.shape[0]
    values = code[indices.astype(xp.int64)]  # (n,)
    if blocks * blocksize != n:
        values = xp.concatenate([values, xp.zeros(blocks * blocksize - n, dtype=values.dtype)])
    return (values.reshape(blocks, blocksize) * absmax[:, None]).reshape(-1)[:n]


# --------------------------------------------------------------------------------------------- NF4 tensors


@dataclass(frozen=True)
class DoubleQuant:
    """The block scales of an NF4 tensor, themselves quantised: absmax_b ≈ DYNAMIC_CODE[codes_b] · absmax2_c + offset.

    codes (uint8, one per NF4 block), absmax2 (float32, one per 256 NF4 blocks), offset (float32, the mean of the
    scales, subtracted first so the 8-bit code is spent on their spread, not their size).
    """

    codes: Any
    absmax2: Any
    offset: float
    blocksize: int = DOUBLE_QUANT_BLOCKSIZE


@dataclass(frozen=True)
class NF4Tensor:
    """A float32 array stored in NF4: ``packed`` (uint8, ⌈n/2⌉: two 4-bit indices a byte, the first element in
    the high nibble), one float32 scale per block of ``blocksize`` (``absmax``; stored as 8-bit ``double`` when double
    quantisation is on), and the ``shape`` to restore.  Arrays live on one device (``device``); ``to`` moves them."""

    packed: Any
    shape: tuple[int, ...]
    blocksize: int
    scales: Any = None          # float32 (blocks,) without double quantisation, else None
    double: DoubleQuant | None = None

    @property
    def numel(self) -> int:
        """n, the number of weights."""
        return math.prod(self.shape)

    @property
    def device(self) -> str:
        """The device of the stored arrays."""
        return backend.device_of(self.packed)

    @property
    def absmax(self) -> Any:
        """The float32 block scales, one per block: stored, or recovered from double quantisation as
        absmax_b = DYNAMIC_CODE[codes_b] · absmax2_(b // 256) + offset."""
        if self.double is None:
            return self.scales
        d = self.double
        code = _on_device(DYNAMIC_CODE, backend.device_of(d.codes))
        return dequantize_blockwise(d.codes, d.absmax2, code, d.blocksize) + np.float32(d.offset)

    @property
    def nbytes(self) -> int:
        """Bytes stored: the packed codes plus the scales (8-bit codes, float32 second-level scales and the float32
        offset with double quantisation)."""
        if self.double is None:
            return int(self.packed.nbytes + self.scales.nbytes)
        return int(self.packed.nbytes + self.double.codes.nbytes + self.double.absmax2.nbytes + 4)

    @property
    def bits_per_parameter(self) -> float:
        """8 · nbytes / n: 4 + 32/blocksize (4.5 at 64), or ≈ 4 + 8/64 + 32/(64·256) = 4.127 double-quantised."""
        return 8.0 * self.nbytes / self.numel

    def to(self, device: str) -> "NF4Tensor":
        """The same tensor with its arrays on ``device`` (no copy where they already are)."""
        move = lambda a: backend.to_device(a, device)  # noqa: E731
        double = None if self.double is None else replace(self.double, codes=move(self.double.codes),
                                                          absmax2=move(self.double.absmax2))
        return replace(self, packed=move(self.packed), scales=None if self.scales is None else move(self.scales),
                       double=double)


_DEVICE_CODES: dict[tuple[int, str], Any] = {}


def _on_device(code: np.ndarray, device: str) -> Any:
    """A code table on ``device`` (moved once, then cached)."""
    key = (id(code), device)
    if key not in _DEVICE_CODES:
        _DEVICE_CODES[key] = backend.to_device(code, device)
    return _DEVICE_CODES[key]


def _host_float32(w: Any) -> np.ndarray:
    """``w`` (a Tensor, a NumPy or device array) as a host float32 array, or a one-line ValueError."""
    data = w if isinstance(w, np.ndarray) else getattr(w, "data", w)  # a Tensor's array
    host = np.asarray(data) if backend.device_of(data) == "cpu" else backend.to_host(data)
    if host.dtype.kind != "f":
        raise ValueError(f"quantize_nf4: expected a floating-point array, got dtype {host.dtype}")
    if host.size == 0:
        raise ValueError("quantize_nf4: cannot quantise an empty array")
    host = host.astype(np.float32, copy=False)
    if not np.isfinite(host).all():
        raise ValueError("quantize_nf4: the array holds NaN or infinite values")
    return host


def _check_blocksize(blocksize: Any) -> int:
    if isinstance(blocksize, bool) or blocksize not in BLOCKSIZES:
        raise ValueError(f"blocksize must be one of {', '.join(map(str, BLOCKSIZES))} (as bitsandbytes), "
                         f"got {blocksize!r}")
    return int(blocksize)


def quantize_nf4(w: Any, blocksize: int = 64, double_quant: bool = False) -> NF4Tensor:
    """NF4-quantise ``w`` (any shape, float; taken as float32) on the host: an ``NF4Tensor`` with host arrays.

    Flatten w (row-major) into n numbers and cut them into blocks of ``blocksize`` (the last block may be shorter).
    Per block b with absmax a_b = max |w_i|:

        y_i = clip(w_i · (1 / a_b), −1, 1)           (the short last block: w_i / a_b, as bitsandbytes)
        index_i = #{ j : NF4_MIDPOINTS_j < y_i }       (nearest code value; a tie goes to the lower one)
        packed_k = index_2k · 16 + index_2k+1          (an odd n is padded with y = 0, index 7)

    ``double_quant``: the scales a_b are stored as 8-bit codes of (a_b − mean a) in blocks of 256 (``DoubleQuant``).
    Equal, byte for byte, to ``bitsandbytes.functional.quantize_4bit(w, quant_type="nf4", blocksize=...)`` on the
    CPU (``compress_statistics=True`` for ``double_quant``, whose mean bitsandbytes sums in torch's order: it can
    differ from this float64 mean in the last bit).
    """
    blocksize = _check_blocksize(blocksize)
    host = _host_float32(w)
    shape, flat = tuple(int(s) for s in host.shape), host.reshape(-1)
    n = flat.size
    full = n - n % blocksize
    body = flat[:full].reshape(-1, blocksize)                             # (blocks, blocksize)
    absmax = np.abs(body).max(axis=1) if full else np.zeros(0, np.float32)  # (blocks,)
    scale = np.float32(1.0) / np.maximum(absmax, np.float32(1e-38))       # one reciprocal per block, then multiply
    scaled = [np.clip(body * scale[:, None], -1.0, 1.0).reshape(-1)]
    if full < n:
        rest = flat[full:]
        last = np.maximum(np.abs(rest).max(), np.float32(1e-38))
        absmax = np.append(absmax, last).astype(np.float32)
        scaled.append(np.clip(rest / last, -1.0, 1.0))
    if n % 2:
        scaled.append(np.zeros(1, np.float32))  # pad to whole bytes: y = 0 → index 7 (the exact zero)
    indices = np.searchsorted(NF4_MIDPOINTS, np.concatenate(scaled), side="left").astype(np.uint8)
    packed = (indices[0::2] << 4) | indices[1::2]                          # (⌈n/2⌉,) first element: high nibble
    if not double_quant:
        return NF4Tensor(packed, shape, blocksize, scales=absmax)
    return NF4Tensor(packed, shape, blocksize, double=double_quantize(absmax))


def double_quantize(absmax: np.ndarray, offset: float | None = None, rounding: str = "lut") -> DoubleQuant:
    """The block scales in 8 bits (QLoRA's double quantisation):

        offset = mean(absmax),   (codes, absmax2) = quantize_blockwise(absmax − offset, DYNAMIC_CODE, 256)
        recovered absmax_b = DYNAMIC_CODE[codes_b] · absmax2_(b // 256) + offset

    Why subtract the mean: the scales are all positive and similar, so (absmax − mean) is centred on 0 and the
    signed 8-bit code is spent on their differences.  Saving: 32 bits per block become 8 bits plus 32 bits per 256
    blocks, 32/64 = 0.5 → 8/64 + 32/(64·256) ≈ 0.127 bit per weight.

    ``offset``: by default the float64 mean rounded once to float32; bitsandbytes takes torch's float32 mean, whose
    summation order can change the last bit, so a byte-for-byte comparison passes bitsandbytes' own offset here.
    ``rounding``: "lut" rounds like bitsandbytes 0.50's CPU kernel, "nearest" exactly (``quantize_blockwise``).
    """
    absmax = np.asarray(absmax, dtype=np.float32)
    if offset is None:
        offset = np.float32(absmax.mean(dtype=np.float64))
    codes, absmax2 = quantize_blockwise(absmax - np.float32(offset), DYNAMIC_CODE, DOUBLE_QUANT_BLOCKSIZE, rounding)
    return DoubleQuant(codes, absmax2, float(np.float32(offset)))


def dequantize_nf4(q: NF4Tensor) -> Any:
    """The float32 array ŵ (``q.shape``) that ``q`` stores, on ``q``'s device:

        ŵ_i = NF4_CODE[index_i] · absmax_block(i),   index_2k = packed_k >> 4,  index_2k+1 = packed_k & 15
    """
    xp = backend.get_xp(q.packed)
    code = _on_device(NF4_CODE, backend.device_of(q.packed))
    n, blocksize = q.numel, q.blocksize
    absmax = q.absmax
    blocks = absmax.shape[0]
    indices = xp.stack([xp.right_shift(q.packed, 4), xp.bitwise_and(q.packed, 15)], axis=1).reshape(-1)  # (2⌈n/2⌉,)
    if blocks * blocksize != indices.shape[0]:  # a short last block: pad with index 7 (the exact 0), or cut the pad
        pad = blocks * blocksize - indices.shape[0]
        indices = (xp.concatenate([indices, xp.full(pad, 7, dtype=indices.dtype)]) if pad > 0
                   else indices[:blocks * blocksize])
    values = code[indices].reshape(blocks, blocksize)  # (blocks, blocksize) in [-1, 1]; uint8 indices, no copy
    values *= absmax[:, None]                           # in place: one float32 array of n numbers is all it makes
    return values.reshape(-1)[:n].reshape(q.shape)


def uniform4_roundtrip(w: Any, blocksize: int = 64) -> np.ndarray:
    """The uniform 4-bit code NF4 is compared with: symmetric int4 absmax, w → ŵ (host float32, w's shape).

        ŵ_i = round(7 · w_i / a_b) · a_b / 7,    a_b = max |w_i| over the block

    15 evenly spaced levels −a, ..., −a/7, 0, a/7, ..., a (4 bits, the code −8 unused, as in symmetric int4).  Even
    spacing spends as many levels on the rare large weights as on the crowded small ones: for normal weights its
    error is larger than NF4's, whose levels crowd where the weights are.
    """
    blocksize = _check_blocksize(blocksize)
    host = _host_float32(w)
    flat = host.reshape(-1)
    blocks = -(-flat.size // blocksize)
    padded = np.zeros(blocks * blocksize, np.float32)
    padded[:flat.size] = flat
    body = padded.reshape(blocks, blocksize)
    absmax = np.maximum(np.abs(body).max(axis=1, keepdims=True), np.float32(1e-38))
    levels = np.clip(np.round(body / absmax * 7), -7, 7)
    return (levels * absmax / 7).astype(np.float32).reshape(-1)[:flat.size].reshape(host.shape)
