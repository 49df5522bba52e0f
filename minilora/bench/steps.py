"""Performance benchmarks: how long one training step of the tiny GPT takes, and how far from PyTorch.

    minilora bench [--configs bench-tiny,bench-small] [--methods full,lora] [--steps 20] [--untimed-steps 3]
                   [--threads 1] [--kernels native] [--json] [--out bench.json] [--no-torch]
                                                                  (also python -m minilora.bench)
    minilora bench --subspace

``--subspace`` runs the subspace-training benchmarks instead (``bench/subspace.py``): projection matvec/rmatvec
times and a subspace step of the shipped skills model against a full fine-tuning step.

For every (config, method) pair it measures:

- **step time**: the median wall time of ``steps`` training steps after ``untimed_steps`` untimed ones.  A step
  is a forward pass with targets, ``zero_grad``, ``backward`` and an AdamW step, on random token batches
  drawn from a seeded ``numpy.random.Generator`` (the same batches for minilora and PyTorch).
- **peak step memory**: the peak of NumPy allocations during one step (``tracemalloc`` sees every
  NumPy array), counting only what the step allocates: activations, gradients, temporaries.
- **training-state memory**: bytes actually held in weights + gradients + AdamW moments after a step.
- **model FLOPs per step**, matrix products only (elementwise work, softmax and layer norm are not
  counted).  With L layers, C channels, V vocabulary, T tokens per sequence and
  N = L·12·C² + C·V the weights of all matrix products (q, k, v, o: 4C²; MLP: 8C²; head: CV):

      forward, per token    2·N + 4·L·T·C       (q·kᵀ and P·v cost 2·T·C each; the full T×T is counted)
      full fine-tuning      6·N + 12·L·T·C      (backward = 2 × forward: activation and weight gradients)
      LoRA (adapters N_A)   4·(N + N_A) + 2·N_A + 12·L·T·C   (forward and activation gradients through
                                                  base and adapters, weight gradients only for A and B)

  times B·T tokens; **GFLOP/s** = FLOPs / median step time, shown beside NumPy's own float32 matmul
  speed on this machine (the ceiling a NumPy engine can reach).
- with PyTorch installed: the same model in PyTorch (``torch_twin.py``) from the same weights on the
  same batches with the same thread count; ``ratio`` = minilora time / PyTorch time.

BLAS threads must be fixed before NumPy is imported, so the command (``minilora/cli/bench.py``) re-runs itself
with ``OPENBLAS_NUM_THREADS`` (and OMP/MKL) set when ``--threads N`` differs from the environment; the CPU kernels
too (``--kernels avx2``: the ``KERNEL_VARIABLES`` set so that both libraries run AVX2 kernels).  ``environment()``
records both, with the kernels each library reports (OpenBLAS's core name, PyTorch's CPU capability).
"""

from __future__ import annotations

import ctypes
import gc
import glob
import os
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from minilora.backend import keep_freed_host_memory
from minilora.experiments.measure import median_ms, peak_traced_bytes, time_steps
from minilora.experiments.methods import get_method
from minilora.models import GPT, GPTConfig
from minilora.models.configs import model_config
from minilora.optim import AdamW
from minilora.train import train_step

__all__ = ["BENCH_CONFIGS", "KERNEL_VARIABLES", "METHODS", "METHOD_SETTINGS", "TABLE_LEGEND", "BenchConfig",
           "checked_benches", "environment", "format_table", "load_torch_twin", "matmul_reference", "prepare_method",
           "run_benchmarks", "step_flops"]

_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
# what picks the CPU kernels when the libraries load: OpenBLAS (NumPy); MKL, oneDNN and ATen (PyTorch)
KERNEL_VARIABLES = ("OPENBLAS_CORETYPE", "MKL_ENABLE_INSTRUCTIONS", "ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")


@dataclass(frozen=True)
class BenchConfig:
    """A model plus the batch it is trained on: ``batch_size`` sequences of ``model.block_size`` tokens."""

    name: str
    model: GPTConfig
    batch_size: int


BENCH_CONFIGS: dict[str, BenchConfig] = {
    "bench-tiny": BenchConfig("bench-tiny", model_config("bench-tiny", vocab_size=64), batch_size=32),
    "bench-small": BenchConfig("bench-small", model_config("bench-small", vocab_size=64), batch_size=16),
}

# AdamW settings shared by minilora and the PyTorch twin (train.TrainConfig's defaults).
ADAMW = {"lr": 2e-3, "betas": (0.9, 0.99), "eps": 1e-8, "weight_decay": 0.1}
LORA_R, LORA_TARGETS = 8, ("q_proj", "v_proj")


# -- methods: registry entries (``experiments.methods``) and the settings benchmarked --------------

# full fine-tuning (every parameter), and LoRA r=8 on q_proj and v_proj with everything else frozen
METHOD_SETTINGS: dict[str, dict[str, Any]] = {"full": {}, "lora": {"r": LORA_R, "target_modules": list(LORA_TARGETS)}}
METHODS = tuple(METHOD_SETTINGS)


def prepare_method(model: GPT, method: str, seed: int = 0) -> GPT:
    """A fresh model prepared for training by ``method`` with its benchmarked settings (the methods registry)."""
    return get_method(method).prepare(model, METHOD_SETTINGS[method], seed=seed)


# -- arithmetic -----------------------------------------------------------------------------------


def _matmul_weights(config: GPTConfig) -> int:
    """N = L·12·C² + C·V: the weights that take part in matrix products (biases excluded)."""
    c = config.n_embd
    return config.n_layer * 12 * c * c + c * config.vocab_size


def step_flops(config: GPTConfig, batch_size: int, seq_len: int, adapter_weights: int | None = None) -> int:
    """Matmul FLOPs of one training step (forward + backward), the formulas of the module docstring:

        full fine-tuning      B·T · (6·N + 12·L·T·C)
        LoRA (adapters N_A)   B·T · (4·(N + N_A) + 2·N_A + 12·L·T·C)

    with N = L·12·C² + C·V (``_matmul_weights``), B = ``batch_size``, T = ``seq_len``.
    ``adapter_weights`` None means full fine-tuning; an int N_A means LoRA with N_A adapter weights.

    For LoRA the count is an upper bound: it charges every frozen layer the gradient with respect
    to its input (2 FLOPs per weight per token), but the engine skips that gradient where nothing
    upstream needs it (e.g. the q, k, v projections of the first block, whose input comes only
    from the frozen embeddings), so the true work, and the GFLOP/s derived from it, are lower.
    """
    n = _matmul_weights(config)
    attention = 12 * config.n_layer * seq_len * config.n_embd
    if adapter_weights is None:
        per_token = 6 * n + attention
    else:
        per_token = 4 * (n + adapter_weights) + 2 * adapter_weights + attention
    return per_token * batch_size * seq_len


def _adapter_weights(model: Any) -> int | None:
    """Number of LoRA A and B weights in a model (None when it has no adapters)."""
    total = sum(p.size for name, p in model.named_parameters() if "lora_" in name)
    return total or None


def _state_bytes(model: Any, optimizer: Any) -> int:
    """Bytes held in weights + gradients + optimizer state right now."""
    params = list(model.parameters())
    grads = sum(int(p.grad.nbytes) for p in params if p.grad is not None)
    return sum(int(p.data.nbytes) for p in params) + grads + optimizer.state_bytes()


def make_batches(config: GPTConfig, batch_size: int, count: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``count`` random (inputs, targets) pairs of shape (B, T) from a seeded generator (targets = inputs shifted)."""
    rng = np.random.default_rng(seed)
    t = config.block_size
    out = []
    for _ in range(count):
        seq = rng.integers(0, config.vocab_size, size=(batch_size, t + 1), dtype=np.int64)
        out.append((seq[:, :-1].copy(), seq[:, 1:].copy()))
    return out


# -- the benchmark --------------------------------------------------------------------------------


def _minilora_run(bench: BenchConfig, method: str, batches: list, untimed_steps: int, steps: int,
                  seed: int) -> dict[str, Any]:
    """Time minilora's training steps for one (config, method): ``time_steps``'s numbers plus the model,
    optimizer, initial weights (for the PyTorch twin), peak step bytes and training-state bytes."""
    model = prepare_method(GPT(bench.model, seed=seed), method)
    optimizer = AdamW(model.parameters(), **ADAMW)

    def step(i: int) -> float:
        x, y = batches[i % len(batches)]
        loss, _ = train_step(model, optimizer, x, y, grad_clip=0.0)  # no clipping: the twin does none
        return float(loss.item())

    # the first step runs from the copied weights, so its loss is the one the twin must reproduce
    initial_state = model.state_dict()
    timing = time_steps(step, untimed_steps, steps)
    peak = peak_traced_bytes(lambda: step(untimed_steps + steps))
    return {"model": model, "optimizer": optimizer, "initial_state": initial_state, **timing,
            "peak_step_bytes": peak, "state_bytes": _state_bytes(model, optimizer)}


def run_benchmarks(configs: Sequence[str | BenchConfig] = ("bench-tiny", "bench-small"),
                   methods: Sequence[str] = ("full", "lora"), steps: int = 20, untimed_steps: int = 3,
                   torch: bool = True, torch_attention: str = "sdpa", threads: int | None = None,
                   seed: int = 0) -> list[dict[str, Any]]:
    """Benchmark training steps; one result dict per (config, method), keys as in ``_row``.

    ``torch`` False (or PyTorch missing) skips the twin.  ``threads`` sets PyTorch's thread count
    (NumPy's BLAS threads come from the environment; ``minilora bench --threads`` sets it before NumPy loads).
    Freed host memory is kept for reuse, as ``train()`` does (``backend.keep_freed_host_memory``);
    the setting is process-wide, so the PyTorch twin runs under it too.
    """
    keep_freed_host_memory()
    if steps < 1 or untimed_steps < 0:
        raise ValueError(f"run_benchmarks: need steps >= 1 and untimed_steps >= 0, got steps={steps}, "
                         f"untimed_steps={untimed_steps}")
    benches = checked_benches(configs, methods)
    twin = load_torch_twin() if torch else None
    if twin is not None and threads:
        twin.set_threads(threads)
    rows = []
    for bench in benches:
        batches = make_batches(bench.model, bench.batch_size, untimed_steps + steps + 1, seed=seed)
        for method in methods:
            ours = _minilora_run(bench, method, batches, untimed_steps, steps, seed)
            theirs = None
            if twin is not None:
                theirs = twin.run(bench.model, ours["initial_state"], method, batches, untimed_steps, steps, ADAMW,
                                  lora_r=LORA_R, lora_targets=LORA_TARGETS, attention=torch_attention)
            rows.append(_row(bench, method, ours, theirs))
            del ours
            gc.collect()
    return rows


def checked_benches(configs: Sequence[str | BenchConfig], methods: Sequence[str]) -> list[BenchConfig]:
    """``configs`` as BenchConfigs (names looked up in ``BENCH_CONFIGS``), once every config and method is known;
    a one-line ValueError naming the unknown ones otherwise."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; expected some of {sorted(METHODS)}")
    benches = [BENCH_CONFIGS[c] if isinstance(c, str) and c in BENCH_CONFIGS else c for c in configs]
    bad = [c for c in benches if not isinstance(c, BenchConfig)]
    if bad:
        raise ValueError(f"unknown config(s) {bad}; expected some of {sorted(BENCH_CONFIGS)}")
    return benches


def _row(bench: BenchConfig, method: str, ours: dict[str, Any], theirs: dict[str, Any] | None) -> dict[str, Any]:
    """One JSON-able result row: the setting, medians, FLOPs, GFLOP/s = FLOPs / (ms · 10⁶), memory, and,
    with a PyTorch run (``theirs``), its numbers and ratio = minilora ms / PyTorch ms."""
    model, cfg = ours["model"], bench.model
    flops = step_flops(cfg, bench.batch_size, cfg.block_size, _adapter_weights(model))
    ms, cpu_ms = median_ms(ours["times"]), median_ms(ours["cpu_times"])
    row = {
        "config": bench.name, "method": method, "batch_size": bench.batch_size, "seq_len": cfg.block_size,
        "n_layer": cfg.n_layer, "n_embd": cfg.n_embd, "n_head": cfg.n_head, "vocab_size": cfg.vocab_size,
        "parameters": model.num_parameters(), "trainable_parameters": model.num_parameters(trainable_only=True),
        "steps": len(ours["times"]), "ms_per_step": ms, "ms_per_step_min": min(ours["times"]) * 1e3,
        "cpu_ms_per_step": cpu_ms, "page_faults_per_step": ours["page_faults"],
        "flops_per_step": flops, "gflops": flops / ms / 1e6,
        "peak_step_mb": ours["peak_step_bytes"] / 2**20, "state_mb": ours["state_bytes"] / 2**20,
        "first_loss": ours["losses"][0], "last_loss": ours["losses"][-1],
        "torch_ms_per_step": None, "ratio": None, "cpu_ratio": None, "torch_state_mb": None, "first_loss_diff": None,
    }
    if theirs is not None:
        torch_ms, torch_cpu_ms = median_ms(theirs["times"]), median_ms(theirs["cpu_times"])
        row.update(torch_ms_per_step=torch_ms, ratio=ms / torch_ms, torch_gflops=flops / torch_ms / 1e6,
                   torch_cpu_ms_per_step=torch_cpu_ms, cpu_ratio=cpu_ms / torch_cpu_ms,
                   torch_page_faults_per_step=theirs["page_faults"],
                   torch_state_mb=theirs["state_bytes"] / 2**20, torch_first_loss=theirs["losses"][0],
                   first_loss_diff=abs(theirs["losses"][0] - ours["losses"][0]),
                   max_loss_diff=max(abs(a - b) for a, b in zip(theirs["losses"], ours["losses"], strict=True)),
                   torch_attention=theirs["attention"])
    return row


def load_torch_twin() -> Any:
    """The PyTorch twin module, or None when PyTorch is not installed."""
    try:
        from minilora.bench import torch_twin
    except ImportError:
        return None
    return torch_twin


# -- the reference ceiling and the environment -----------------------------------------------------


def matmul_reference(shapes: Sequence[tuple[int, int, int]] = ((2048, 128, 512), (1024, 1024, 1024)),
                     repeats: int = 10) -> list[dict[str, Any]]:
    """NumPy's float32 matmul speed: (m×k)@(k×n) costs 2·m·k·n FLOPs; median of ``repeats`` runs."""
    rng = np.random.default_rng(0)
    out = []
    for m, k, n in shapes:
        a = rng.standard_normal((m, k), dtype=np.float32)
        b = rng.standard_normal((k, n), dtype=np.float32)
        c = np.empty((m, n), dtype=np.float32)
        np.matmul(a, b, out=c)  # warm-up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            np.matmul(a, b, out=c)
            times.append(time.perf_counter() - start)
        ms = median_ms(times)
        out.append({"shape": f"({m}x{k})@({k}x{n})", "ms": ms, "gflops": 2 * m * k * n / ms / 1e6})
    return out


def _openblas() -> Any:
    """NumPy's bundled OpenBLAS as a ctypes library (None when NumPy uses another BLAS)."""
    here = os.path.dirname(np.__file__)
    for path in (glob.glob(os.path.join(here, "..", "numpy.libs", "*openblas*"))
                 + glob.glob(os.path.join(here, ".dylibs", "*openblas*"))):
        try:
            return ctypes.CDLL(path)
        except OSError:
            continue
    return None


def environment() -> dict[str, Any]:
    """Machine facts that explain the numbers: CPU, versions, thread and kernel settings, OpenBLAS kernel."""
    env = {"python": platform.python_version(), "numpy": np.__version__, "machine": platform.machine(),
           "cpu_count": os.cpu_count(), **{k: os.environ.get(k) for k in (*_THREAD_VARS, *KERNEL_VARIABLES)}}
    lib = _openblas()
    for key, names in (("openblas_core",
                        ("scipy_openblas_get_corename64_", "openblas_get_corename64_", "openblas_get_corename")),
                       ("openblas_threads", ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_",
                                             "openblas_get_num_threads"))):
        fn = next((getattr(lib, n) for n in names if lib is not None and hasattr(lib, n)), None)
        if fn is not None:
            fn.restype = ctypes.c_char_p if key == "openblas_core" else ctypes.c_int
            value = fn()
            env[key] = value.decode() if isinstance(value, bytes) else value
    twin = load_torch_twin()
    if twin is not None:
        env.update(twin.environment())
    return env


# -- command line ---------------------------------------------------------------------------------


def _fmt(value: Any, spec: str) -> str:
    """``value`` formatted with ``spec``, or "-" when it is None (e.g. no PyTorch run)."""
    return "-" if value is None else format(value, spec)


def format_table(rows: list[dict[str, Any]]) -> str:
    """The results as an aligned text table."""
    head = ("config", "method", "ms minilora", "ms torch", "ratio", "ratio cpu", "GFLOP/s", "peak MB", "state MB",
            "state MB torch", "faults/step", "|dloss|")
    lines = [head]
    for r in rows:
        lines.append((r["config"], r["method"], _fmt(r["ms_per_step"], ".1f"), _fmt(r["torch_ms_per_step"], ".1f"),
                      _fmt(r["ratio"], ".2f"), _fmt(r["cpu_ratio"], ".2f"), _fmt(r["gflops"], ".1f"),
                      _fmt(r["peak_step_mb"], ".1f"), _fmt(r["state_mb"], ".2f"), _fmt(r["torch_state_mb"], ".2f"),
                      _fmt(r["page_faults_per_step"], ".0f"), _fmt(r["first_loss_diff"], ".1e")))
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    return "\n".join("  ".join(cell.rjust(w) if i > 1 else cell.ljust(w)
                               for i, (cell, w) in enumerate(zip(line, widths, strict=True)))
                     for line in lines)


TABLE_LEGEND = ("columns: median ms per training step (minilora, PyTorch twin) and their ratio (wall, CPU time); "
                "matmul GFLOP/s; peak MB a step allocates; MB in weights + grads + AdamW state (minilora, PyTorch); "
                "minor page faults per step; |first loss difference| to the twin")
