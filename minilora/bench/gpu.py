"""The GPU path measured: the same training steps on a device ("cuda": CuPy) and on NumPy, in one process.

    minilora bench --gpu [--configs ...] [--methods ...] [--steps 20] [--untimed-steps 3]

For every (config, method): one model, copied to the device, trained on the same batches from the same weights as
its NumPy twin; each side's median step time (a step ends with ``loss.item()``, which waits for the device), the
speed-up ``numpy ms / device ms``, and both first losses (equal up to float32 rounding: the same arithmetic on two
backends).  Without a working GPU the report says why in one line and measures nothing.
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from typing import Any

from minilora import backend
from minilora.bench.steps import ADAMW, METHODS, BenchConfig, checked_benches, make_batches, prepare_method
from minilora.engine.tensor import Tensor
from minilora.experiments.measure import median_ms, time_steps
from minilora.models import GPT
from minilora.optim import AdamW
from minilora.train import train_step

__all__ = ["GPU_DEVICE", "device_report", "format_device_report"]

GPU_DEVICE = "cuda"


def _time_on(device: str, bench: BenchConfig, method: str, batches: list, untimed_steps: int, steps: int,
             seed: int) -> dict[str, Any]:
    """Median step time and losses of ``method`` on ``bench`` with the model and batches on ``device``."""
    model = prepare_method(GPT(bench.model, seed=seed), method).to(device)
    optimizer = AdamW(model.parameters(), **ADAMW)
    on_device = [(backend.to_device(x, device), Tensor(backend.to_device(y, device))) for x, y in batches]

    def step(i: int) -> float:
        x, y = on_device[i % len(on_device)]
        loss, _ = train_step(model, optimizer, x, y, grad_clip=0.0)
        return float(loss.item())  # copies the loss to the host: the step's kernels have finished

    timing = time_steps(step, untimed_steps, steps)
    return {"ms": median_ms(timing["times"]), "losses": timing["losses"]}


def device_report(configs: Sequence[str | BenchConfig] = ("bench-tiny", "bench-small"),
                  methods: Sequence[str] = METHODS, steps: int = 20, untimed_steps: int = 3,
                  device: str = GPU_DEVICE, seed: int = 0) -> dict[str, Any]:
    """The training step on ``device`` against NumPy ("cpu"), one row per (config, method):
    ``speedup = cpu_ms / device_ms``.  ``device`` "cuda" without a working GPU gives ``{"available": False,
    "message": why}`` and no rows (nothing is timed)."""
    if device == GPU_DEVICE and not backend.cuda_available():
        return {"device": device, "available": False, "message": backend.cuda_unavailable_message(), "rows": []}
    benches = checked_benches(configs, methods)
    rows = []
    for bench in benches:
        batches = make_batches(bench.model, bench.batch_size, untimed_steps + steps, seed=seed)
        for method in methods:
            cpu = _time_on("cpu", bench, method, batches, untimed_steps, steps, seed)
            dev = _time_on(device, bench, method, batches, untimed_steps, steps, seed)
            rows.append({"config": bench.name, "method": method, "cpu_ms": cpu["ms"], "device_ms": dev["ms"],
                         "speedup": cpu["ms"] / dev["ms"], "first_loss_cpu": cpu["losses"][0],
                         "first_loss_device": dev["losses"][0]})
            gc.collect()
    return {"device": device, "available": True, "message": f"{device} against NumPy on this machine's CPU",
            "rows": rows}


def format_device_report(report: dict[str, Any]) -> str:
    """The report as a table (or its one line when there was no GPU to measure)."""
    if not report["available"]:
        return f"no GPU found, so the GPU path was not measured: {report['message']}"
    device = report["device"]
    lines = [f"{'config':<12} {'method':<6} {'numpy ms':>9} {device + ' ms':>9} {'speed-up':>8} "
             f"{'first loss (numpy / ' + device + ')':>32}"]
    lines += [f"{r['config']:<12} {r['method']:<6} {r['cpu_ms']:>9.2f} {r['device_ms']:>9.2f} {r['speedup']:>7.2f}x "
              f"{r['first_loss_cpu']:>15.6f} / {r['first_loss_device']:<15.6f}" for r in report["rows"]]
    return "\n".join(lines)
