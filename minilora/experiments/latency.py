"""The LoRA paper's Table 1 on this machine: what each adaptation method adds to one forward pass at inference.

Hu et al. (2021) time one forward pass of GPT-2 medium with and without adapter layers and find that adapters add
2–30% (worst at batch 1 and short sequences), because their small extra layers run one after another and cannot
be merged away; merged LoRA adds nothing, since W = W0 + s·B A is one matrix again.  Here the same measurement
covers six variants of one GPT:

    base            the model as it is
    lora-merged     LoRA on ``DEFAULT_TARGETS`` (r = 4), merged: W0 + s·B A, the base's cost exactly
    lora-unmerged   the same LoRA kept apart: W0 x + s·B (A x), two more small matmuls per adapted matrix
    adapter-houlsby bottleneck adapters (m = 16) after attention and MLP: 2 per block (Houlsby et al.)
    adapter-lin     one adapter per block, after the MLP (Lin et al.)
    prefix          prefix-tuning, p = 8 prefix keys/values per layer (no MLP: what inference keeps): every
                    query scores T + p keys (``alternatives.prefix.prefix_cost``)

for every batch size B in ``batches`` and sequence length T in ``seq_lens``.  Each cell times ``repeats`` rounds
after one warm-up round; a round runs every variant once, in turn, so a slow spell of the machine hits them all
alike.  Reported per cell: the median and interquartile range (IQR) of each variant's milliseconds, and its
overhead over the base, 100 · (t / t_base − 1) %, from the medians and, with its IQR, from the per-round ratios
(a paired measure: the base and the variant ran seconds apart).  Timings are wall clock in eval mode under
``no_grad`` with one BLAS thread (``threadpoolctl``), on a GPT of the ``bench-small`` size (6 layers, 8 heads,
C = 256, block 128) with random weights: latency does not depend on what the weights have learned.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from minilora.alternatives import (
    AdapterConfig,
    PrefixConfig,
    apply_adapters,
    apply_prefix,
    prefix_cost,
)
from minilora.backend import to_device
from minilora.experiments.measure import forward_rounds
from minilora.experiments.methods import DEFAULT_TARGETS
from minilora.experiments.results import LATENCY_FILE, write_result
from minilora.lora import LoraConfig, apply_lora, merge_lora
from minilora.models import GPT, GPTConfig
from minilora.models.configs import model_config

__all__ = ["FAST", "FULL", "VARIANTS", "build_variants", "format_table", "measure_latency", "run_latency"]

VARIANTS = ("base", "lora-merged", "lora-unmerged", "adapter-houlsby", "adapter-lin", "prefix")
LORA_R, BOTTLENECK, PREFIX_TOKENS = 4, 16, 8
# the shipped measurement: bench-small (about 4.8 M weights), batches as in the paper, a short and a full-length
# sequence; about 4 minutes on one core of a 2-core laptop-class CPU.  --fast: a tiny model, seconds.
FULL = {"size": "bench-small", "batches": (1, 16, 32), "seq_lens": (16, 128), "repeats": 25}
FAST = {"size": None, "batches": (1, 4), "seq_lens": (4, 16), "repeats": 3}
_FAST_CONFIG = GPTConfig(vocab_size=64, block_size=16, n_layer=2, n_head=2, n_embd=32)


def _config(size: str | None) -> GPTConfig:
    return _FAST_CONFIG if size is None else model_config(size, vocab_size=64)


def build_variants(config: GPTConfig, seed: int = 0, device: str | None = None) -> dict[str, GPT]:
    """The six models of ``VARIANTS``, all from one random base (``seed``); LoRA's B and the adapters'
    up-projections are drawn non-zero (N(0, 0.02²)), as after training: zeros would not change the arithmetic
    but a reader should not have to know that."""
    base = GPT(config, seed=seed, device=device)
    weights = base.state_dict()
    rng = np.random.default_rng(seed + 1)

    def copy() -> GPT:
        model = GPT(config, seed=seed, device=device)
        model.load_state_dict(weights)
        return model

    def trained(model: GPT, names: tuple[str, ...]) -> GPT:
        for name, p in model.named_parameters():
            if name.endswith(names):
                p.data = to_device(rng.normal(0.0, 0.02, p.shape).astype(p.dtype), p.device)
        return model

    lora = LoraConfig(r=LORA_R, target_modules=DEFAULT_TARGETS)
    unmerged = trained(apply_lora(copy(), lora, seed=seed), ("lora_B",))
    merged = apply_lora(copy(), lora, seed=seed)
    merged.load_state_dict(unmerged.state_dict())  # the same A and B, then W = W0 + s·B A
    return {
        "base": base,
        "lora-merged": merge_lora(merged),
        "lora-unmerged": unmerged,
        "adapter-houlsby": trained(apply_adapters(copy(), AdapterConfig(BOTTLENECK, "houlsby"), seed=seed),
                                   ("adapter.up.weight",)),
        "adapter-lin": trained(apply_adapters(copy(), AdapterConfig(BOTTLENECK, "lin"), seed=seed),
                               ("adapter.up.weight",)),
        "prefix": apply_prefix(copy(), PrefixConfig(PREFIX_TOKENS), seed=seed),
    }


def _quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    """(first quartile, median, third quartile) of ``values`` (linear interpolation, as ``numpy.percentile``)."""
    q1, q2, q3 = np.percentile(np.asarray(values, dtype=np.float64), [25, 50, 75])
    return float(q1), float(q2), float(q3)


def _rows(times: dict[str, list[float]], batch: int, seq_len: int) -> list[dict[str, Any]]:
    """One row per variant of one (batch, seq_len) cell: median / quartiles in ms and the overhead over base."""
    base = times["base"]
    base_median = statistics.median(base)
    rows = []
    for name, seconds in times.items():
        q1, median, q3 = _quartiles([1e3 * s for s in seconds])
        r1, ratio, r3 = _quartiles([100 * (s / b - 1) for s, b in zip(seconds, base, strict=True)])
        rows.append({"variant": name, "batch": batch, "seq_len": seq_len, "median_ms": median, "q1_ms": q1,
                     "q3_ms": q3, "iqr_ms": q3 - q1, "overhead_pct": 100 * (statistics.median(seconds) / base_median
                                                                             - 1),
                     "paired_overhead_pct": ratio, "paired_overhead_q1": r1, "paired_overhead_q3": r3,
                     "times_ms": [1e3 * s for s in seconds]})
    return rows


def measure_latency(config: GPTConfig, batches: Sequence[int], seq_lens: Sequence[int], repeats: int,
                    seed: int = 0, device: str | None = None,
                    on_cell: Callable[[int, int], None] | None = None) -> list[dict[str, Any]]:
    """Time every variant at every (batch, seq_len); the rows of ``_rows`` for all cells, long sequences last.

    The token ids are random (seeded); one BLAS thread is used while timing.  ``on_cell(B, T)`` is called as
    each cell starts (progress)."""
    if repeats < 1:
        raise ValueError(f"latency: repeats must be >= 1, got {repeats!r}")
    bad = [t for t in seq_lens if not 1 <= t <= config.block_size]
    if bad or not batches or any(b < 1 for b in batches):
        raise ValueError(f"latency: expected batches >= 1 and 1 <= seq_len <= block_size={config.block_size}, got "
                         f"batches {list(batches)}, seq_lens {list(seq_lens)}")
    from threadpoolctl import threadpool_limits

    models = build_variants(config, seed=seed, device=device)
    rng = np.random.default_rng(seed)
    rows = []
    with threadpool_limits(limits=1):
        for seq_len in seq_lens:
            for batch in batches:
                if on_cell is not None:
                    on_cell(batch, seq_len)
                idx = rng.integers(0, config.vocab_size, (batch, seq_len))
                rows += _rows(forward_rounds(models, idx, repeats), batch, seq_len)
    return rows


def run_latency(out: str | Path | None = None, fast: bool = False, repeats: int | None = None, seed: int = 0,
                device: str | None = None, on_cell: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """The latency table (``FULL``, or ``FAST`` for tests), with its settings and the prefix's cost, written to
    ``out/latency.json`` when ``out`` is given; returns the result."""
    plan = FAST if fast else FULL
    config = _config(plan["size"])
    repeats = plan["repeats"] if repeats is None else repeats
    start = time.perf_counter()
    rows = measure_latency(config, plan["batches"], plan["seq_lens"], repeats, seed=seed, device=device,
                           on_cell=on_cell)
    models = build_variants(config, seed=seed)
    # weights each variant adds to the base (merged LoRA keeps A and B to unmerge, but computes with W alone)
    params = {name: {"total": m.num_parameters(), "added": m.num_parameters() - models["base"].num_parameters()}
              for name, m in models.items()}
    costs = [prefix_cost(config.n_layer, config.n_head, config.n_embd, config.block_size, PREFIX_TOKENS, t)
             for t in plan["seq_lens"]]
    result = {
        "experiment": "latency",
        "settings": {"model": plan["size"] or "fast", "config": config.to_dict(), "batches": list(plan["batches"]),
                     "seq_lens": list(plan["seq_lens"]), "repeats": repeats, "seed": seed, "weights": "random",
                     "lora": {"r": LORA_R, "target_modules": list(DEFAULT_TARGETS)},
                     "adapter": {"bottleneck": BOTTLENECK}, "prefix": {"num_virtual_tokens": PREFIX_TOKENS},
                     "blas_threads": 1, "device": models["base"].device, "numpy": np.__version__,
                     "machine": platform.machine(), "processor": platform.processor(), "cpu_count": os.cpu_count()},
        "params": params,
        "prefix_cost": costs,
        "seconds": time.perf_counter() - start,
        "rows": rows,
    }
    if out is not None:
        write_result(Path(out) / LATENCY_FILE, result)
    return result


def format_table(result: dict[str, Any]) -> str:
    """The LoRA paper's Table 1 layout: one line per variant, one column per (batch, seq_len) cell holding the
    median ms ± half the IQR and the overhead over the base, ``12.3±0.4 (+5%)``."""
    rows = result["rows"]
    cells = list(dict.fromkeys((r["batch"], r["seq_len"]) for r in rows))
    by = {(r["variant"], r["batch"], r["seq_len"]): r for r in rows}
    head = ["variant", *(f"B={b} T={t}" for b, t in cells)]
    lines = [head]
    for variant in dict.fromkeys(r["variant"] for r in rows):
        line = [variant]
        for b, t in cells:
            r = by[(variant, b, t)]
            line.append(f"{r['median_ms']:.2f}±{r['iqr_ms'] / 2:.2f}"
                        + ("" if variant == "base" else f" ({r['overhead_pct']:+.1f}%)"))
        lines.append(line)
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    text = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths, strict=True)))
            for line in lines]
    text.insert(1, "-" * len(text[0]))
    return "\n".join(text)
