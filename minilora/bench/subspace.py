"""Subspace-training benchmarks: how fast the projections are, and what a subspace step costs against full fine-tuning.

    python -m minilora.bench --subspace [--threads 1] [--steps 20] [--json PATH]

- **projections**: median milliseconds of ``matvec`` (P z) and ``rmatvec`` (Pᵀ g), float32 on the host, for every
  projection at two sizes: the shipped skills model (D = 110,720, d = 1,000) and D = 10⁶, d = 10⁴.  A dense P
  is measured only where it fits in ``DENSE_MAX_BYTES`` (at 10⁶ × 10⁴ it would be 37 GiB); build seconds too.
  The yardstick: NumPy's own ``rfft`` of n = 2^⌈log2 D⌉ float32 numbers, timed in the same process; ``vs rfft`` =
  (matvec + rmatvec) / rfft, so Fastfood's two O(n log n) transforms each way read against one FFT of that size.
- **subspace step**: one training step of the shipped skills model (``train_step``: forward with targets,
  backward, gradient clipping at 1.0, AdamW from ``make_optimizer``, as ``train`` runs it) on batches of
  random token ids, full fine-tuning against ``SubspaceModel(model, d, "fastfood")``; the two are timed
  in alternation in one process (a slow spell of a shared machine hits both), and
  ratio = median subspace ms / median full ms.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from minilora.backend import keep_freed_host_memory
from minilora.engine.tensor import Tensor
from minilora.experiments.measure import median_ms
from minilora.experiments.methods import get_method
from minilora.models.zoo import pretrained
from minilora.subspace import DENSE_MAX_BYTES, make_projection
from minilora.subspace.fwht import next_power_of_two
from minilora.train import TrainConfig, make_optimizer, train_step

__all__ = ["PROJECTION_SIZES", "format_projection_table", "format_step_table", "projection_times", "subspace_step"]

PROJECTION_SIZES: tuple[tuple[int, int], ...] = ((110_720, 1_000), (1_000_000, 10_000))


def _call_ms(fn: Callable[[], Any], repeats: int) -> float:
    """Median milliseconds of ``fn()`` over ``repeats`` calls after one untimed call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return median_ms(times)


def projection_times(sizes: Sequence[tuple[int, int]] = PROJECTION_SIZES,
                     kinds: Sequence[str] = ("fastfood", "sparse", "dense"), repeats: int = 10,
                     seed: int = 0) -> list[dict[str, Any]]:
    """One row per (D, d, projection): build seconds, matvec ms, rmatvec ms, their sum (float32 on the host), and that
    sum over the median ms of ``np.fft.rfft`` of 2^⌈log2 D⌉ float32 numbers measured just before (``vs_rfft``).

    A dense P larger than ``DENSE_MAX_BYTES`` is not built; its row says so (``"skipped"``).
    """
    keep_freed_host_memory()
    rng = np.random.default_rng(seed)
    rows = []
    for D, d in sizes:
        z = rng.standard_normal(d).astype(np.float32)  # (d,)
        g = rng.standard_normal(D).astype(np.float32)  # (D,)
        signal = rng.standard_normal(next_power_of_two(D)).astype(np.float32)  # (n,)
        rfft = _call_ms(lambda v=signal: np.fft.rfft(v), repeats)
        for kind in kinds:
            row: dict[str, Any] = {"projection": kind, "D": D, "d": d}
            if kind == "dense" and D * d * 4 > DENSE_MAX_BYTES:
                rows.append({**row, "skipped": f"dense P would take {D * d * 4 / 2**30:.1f} GiB"})
                continue
            start = time.perf_counter()
            projection = make_projection(kind, D, d, seed)
            build = time.perf_counter() - start
            matvec = _call_ms(lambda p=projection, v=z: p.matvec(v), repeats)
            rmatvec = _call_ms(lambda p=projection, v=g: p.rmatvec(v), repeats)
            rows.append({**row, "build_s": build, "matvec_ms": matvec, "rmatvec_ms": rmatvec,
                         "total_ms": matvec + rmatvec, "rfft_ms": rfft, "vs_rfft": (matvec + rmatvec) / rfft})
            del projection
    return rows


def subspace_step(model: str = "skills", d: int = 1_000, projection: str = "fastfood", batch_size: int = 64,
                  steps: int = 20, warmup: int = 3, seed: int = 0, said: bool = False) -> dict[str, Any]:
    """Time full fine-tuning and subspace training steps of the shipped ``model`` in alternation; one result dict.

    ``said=True`` times SAID (one learned scale per parameter tensor) instead of the plain subspace.

    ratio = median(subspace step ms) / median(full step ms); cpu_ratio the same with process CPU time.
    """
    keep_freed_host_memory()
    if steps < 1 or warmup < 0:
        raise ValueError(f"subspace_step: need steps >= 1 and warmup >= 0, got steps={steps}, warmup={warmup}")
    full = get_method("full").prepare(pretrained(model), seed=seed).train()
    sub = get_method("subspace").prepare(pretrained(model), {"d": d, "projection": projection, "said": said},
                                         seed=seed).train()
    config = TrainConfig()
    runs = {"full": (full, make_optimizer(full, config)), "subspace": (sub, make_optimizer(sub, config))}
    cfg = full.config
    rng = np.random.default_rng(seed)
    times: dict[str, list[float]] = {name: [] for name in runs}
    cpu_times: dict[str, list[float]] = {name: [] for name in runs}
    for i in range(warmup + steps):
        seq = rng.integers(0, cfg.vocab_size, size=(batch_size, cfg.block_size + 1))  # (B, T + 1)
        x, y = seq[:, :-1], Tensor(seq[:, 1:])
        order = list(runs) if i % 2 == 0 else list(reversed(runs))  # alternate who goes first
        for name in order:
            net, optimizer = runs[name]
            cpu, start = time.process_time(), time.perf_counter()
            train_step(net, optimizer, x, y, config.grad_clip)[0].item()
            if i >= warmup:
                times[name].append(time.perf_counter() - start)
                cpu_times[name].append(time.process_time() - cpu)
    ms = {name: median_ms(t) for name, t in times.items()}
    cpu_ms = {name: median_ms(t) for name, t in cpu_times.items()}
    return {"model": model, "D": sub.D, "d": sub.d, "projection": projection, "said": said, "batch_size": batch_size,
            "seq_len": cfg.block_size, "steps": steps, "full_ms": ms["full"], "subspace_ms": ms["subspace"],
            "ratio": ms["subspace"] / ms["full"], "full_cpu_ms": cpu_ms["full"],
            "subspace_cpu_ms": cpu_ms["subspace"], "cpu_ratio": cpu_ms["subspace"] / cpu_ms["full"]}


def format_projection_table(rows: list[dict[str, Any]]) -> str:
    """``projection_times`` rows as aligned text."""
    lines = [("projection", "D", "d", "build s", "matvec ms", "rmatvec ms", "total ms", "vs rfft")]
    for r in rows:
        if "skipped" in r:
            lines.append((r["projection"], f"{r['D']:,}", f"{r['d']:,}", "-", "-", "-", r["skipped"], "-"))
        else:
            lines.append((r["projection"], f"{r['D']:,}", f"{r['d']:,}", f"{r['build_s']:.2f}", f"{r['matvec_ms']:.2f}",
                          f"{r['rmatvec_ms']:.2f}", f"{r['total_ms']:.2f}", f"{r['vs_rfft']:.2f}×"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(line, widths, strict=True)))
                     for line in lines)


def format_step_table(row: dict[str, Any]) -> str:
    """A ``subspace_step`` result as one line of text."""
    return (f"{row['model']} (D = {row['D']:,}), batch {row['batch_size']}×{row['seq_len']}: full fine-tuning "
            f"{row['full_ms']:.1f} ms/step, {'SAID' if row['said'] else 'subspace'} d = {row['d']:,} "
            f"({row['projection']}) "
            f"{row['subspace_ms']:.1f} ms/step, ratio {row['ratio']:.3f} (CPU time ratio {row['cpu_ratio']:.3f})")
