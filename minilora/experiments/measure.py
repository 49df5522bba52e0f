"""Measuring a run: median step time, peak traced memory, and forward-pass latency.

Timings are wall-clock (``time.perf_counter``) and summarised by the median, which a few slow
outliers (another process, a garbage collection) do not move.  Memory is what ``tracemalloc``
sees: NumPy reports every array buffer it allocates there, so on the CPU the peak over a few
training steps is the step's working memory (activations, gradients, optimizer moments).
Arrays on a GPU are not host allocations, so there it does not count them.
"""

from __future__ import annotations

import gc
import statistics
import time
import tracemalloc
from collections.abc import Callable, Sequence
from typing import Any

try:
    import resource
except ImportError:  # Windows
    resource = None

from minilora.backend import to_device, to_host
from minilora.data.evaluation import inference

__all__ = ["forward_ms", "forward_rounds", "median_ms", "peak_traced_bytes", "time_steps"]


def median_ms(seconds: Sequence[float]) -> float:
    """The median of ``seconds`` in milliseconds: 1000 · median(t_1, ..., t_n)."""
    if not seconds:
        raise ValueError("median_ms: no timings to summarise (got an empty sequence)")
    return 1e3 * statistics.median(seconds)


def peak_traced_bytes(fn: Callable[[], Any]) -> int:
    """Peak bytes allocated while ``fn()`` runs, above what was allocated before it: max_t M(t) − M(start).

    M(t) is the memory ``tracemalloc`` traces at time t.  Garbage is collected first, so freed
    objects of earlier work do not count; tracing is stopped again afterwards unless it was on.
    """
    gc.collect()
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        start, _ = tracemalloc.get_traced_memory()
        fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        if not was_tracing:
            tracemalloc.stop()
    return peak - start


def forward_rounds(models: dict[str, Any], idx: Any, repeats: int = 20,
                   before: dict[str, Callable[[], None]] | None = None) -> dict[str, list[float]]:
    """Seconds of each pass of ``model(idx)`` per named model, in eval mode under ``no_grad``: ``repeats`` each.

    The models are timed in turns, one pass each per round for ``repeats`` rounds after one
    untimed warm-up round, so a slow spell of a shared machine hits them all alike (and the k-th times of two
    models form a pair).  ``before[name]()`` runs ahead of that model's pass, outside the timing (e.g. merging
    the adapter when one model object is timed both merged and unmerged).  The last logit is copied to the host
    inside the timing, which waits for a GPU to finish the pass.
    """
    if repeats < 1:
        raise ValueError(f"forward_rounds: repeats must be >= 1, got {repeats}")
    before = before or {}
    times: dict[str, list[float]] = {name: [] for name in models}
    for round_ in range(repeats + 1):
        for name, model in models.items():
            if name in before:
                before[name]()
            x = to_device(idx, model.device)
            with inference(model):
                start = time.perf_counter()
                logits, _ = model(x)
                to_host(logits.data[:1, -1, :1])
                elapsed = time.perf_counter() - start
            if round_ > 0:
                times[name].append(elapsed)
    return times


def forward_ms(models: dict[str, Any], idx: Any, repeats: int = 20,
               before: dict[str, Callable[[], None]] | None = None) -> dict[str, float]:
    """Median milliseconds of ``model(idx)`` per named model over ``forward_rounds``' passes."""
    return {name: median_ms(t) for name, t in forward_rounds(models, idx, repeats, before).items()}


def _page_faults() -> int:
    """Minor page faults of this process so far (0 where ``resource`` is missing, e.g. Windows)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt if resource is not None else 0


def time_steps(step: Callable[[int], float], warmup: int, steps: int) -> dict[str, Any]:
    """Run ``warmup`` then ``steps`` timed calls ``step(i)`` (returning the loss).

    Returns wall seconds and process CPU seconds per timed step (CPU time is steadier on a busy
    machine), all losses, and minor page faults per timed step (fresh memory the OS had to map).
    """
    losses, times, cpu_times, faults = [], [], [], 0
    for i in range(warmup + steps):
        faults_before, cpu, start = _page_faults(), time.process_time(), time.perf_counter()
        losses.append(step(i))
        if i >= warmup:
            times.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu)
            faults += _page_faults() - faults_before
    return {"times": times, "cpu_times": cpu_times, "losses": losses, "page_faults": faults / max(steps, 1)}
