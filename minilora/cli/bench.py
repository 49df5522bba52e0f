"""``minilora bench`` (also ``python -m minilora.bench``): how long a training step takes, and against PyTorch.

    minilora bench [--configs bench-tiny,bench-small] [--methods full,lora] [--steps 20] [--untimed-steps 3]
                   [--threads 1] [--kernels native] [--json] [--out bench.json] [--no-torch]
    minilora bench --subspace     projection speeds and a subspace step against a full step (bench/subspace.py)
    minilora bench --profile      where one step's time goes, Function by Function (bench/profile.py)
    minilora bench --gpu          the same steps on CuPy against NumPy, or one line: no GPU found (bench/gpu.py)

What is measured, and the FLOP formulas, are in ``minilora/bench/steps.py``.  BLAS threads must be fixed before
NumPy is imported, so ``--threads N`` re-runs the command with ``OPENBLAS_NUM_THREADS`` (and OMP/MKL) set when the
environment says otherwise.  The CPU kernels are chosen when the libraries load too: ``--kernels avx2`` re-runs the
command with the variables that make OpenBLAS (NumPy), MKL, oneDNN and ATen (PyTorch) all use their AVX2 kernels, so
an AVX-512 machine measures both libraries as an AVX2-only CPU would run them (``KERNEL_VARS``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from minilora.cli.options import add_json, comma_list, nonnegative_int, positive_int

__all__ = ["COMMANDS", "KERNEL_VARS", "THREAD_VARS", "bench_environment", "check_kernels"]

THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
# per --kernels choice, the variables each library reads when it loads; "native" leaves every library its own choice
KERNEL_VARS: dict[str, dict[str, str]] = {
    "native": {},
    "avx2": {"OPENBLAS_CORETYPE": "Haswell",  # NumPy's OpenBLAS: its Haswell (AVX2) kernels
             "MKL_ENABLE_INSTRUCTIONS": "AVX2",  # PyTorch's matmuls (MKL)
             "ONEDNN_MAX_CPU_ISA": "AVX2",  # PyTorch's oneDNN kernels
             "ATEN_CPU_CAPABILITY": "avx2"},  # PyTorch's own elementwise and reduction kernels
}
_REEXEC_FLAG = "MINILORA_BENCH_REEXEC"  # set in the re-run process, so it never re-runs again


def _bench_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--configs", type=comma_list, default=["bench-tiny", "bench-small"], metavar="NAMES",
                   help="comma-separated model configs (default bench-tiny,bench-small)")
    p.add_argument("--methods", type=comma_list, default=["full", "lora"], metavar="NAMES",
                   help="comma-separated methods (default full,lora)")
    p.add_argument("--steps", type=positive_int, default=20, help="timed steps, the median is reported (default 20)")
    p.add_argument("--untimed-steps", type=nonnegative_int, default=3, help="untimed steps before them (default 3)")
    p.add_argument("--threads", type=nonnegative_int, default=1,
                   help="BLAS and PyTorch threads (default 1; 0 leaves the environment alone)")
    p.add_argument("--kernels", choices=sorted(KERNEL_VARS), default="native",
                   help="CPU kernels of NumPy's OpenBLAS and of PyTorch: native (default) leaves them to each library "
                        "and the environment; avx2 puts both on AVX2 kernels, as on a CPU without AVX-512")
    add_json(p, "the results")
    p.add_argument("--out", default=None, metavar="PATH", help="also write the results as JSON to this file")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch twin")
    p.add_argument("--torch-attention", choices=("sdpa", "explicit"), default="sdpa",
                   help="PyTorch attention: F.scaled_dot_product_attention (default) or an explicit masked softmax")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--subspace", action="store_true",
                      help="instead: projection speeds and a subspace step of the skills model against a full step")
    what.add_argument("--profile", action="store_true",
                      help="instead: where one step's time goes, per Function, and its matmuls' share")
    what.add_argument("--gpu", action="store_true",
                      help="instead: the same training steps on CuPy (device cuda) against NumPy, when a GPU is found")


def _check_out(args: argparse.Namespace) -> None:
    """An unwritable ``--out`` is refused before a single step is timed."""
    from minilora.experiments.folders import check_writable

    if args.out is not None:
        path = Path(args.out)
        if path.is_dir():
            raise ValueError(f"argument --out: {path} is a folder; give the path of a .json file to write")
        check_writable(path.parent, "--out folder")


def bench_environment(threads: int, kernels: str) -> dict[str, str]:
    """The variables ``--threads`` and ``--kernels`` need set before NumPy and PyTorch load (threads 0: none)."""
    wanted = {k: str(threads) for k in THREAD_VARS} if threads > 0 else {}
    return {**wanted, **KERNEL_VARS[kernels]}


def check_kernels(kernels: str, machine: str | None = None, cpu_flags: str | None = None) -> None:
    """``--kernels avx2`` needs an x86-64 CPU with AVX2 (OpenBLAS's Haswell kernels would stop on any other).

    ``machine`` defaults to ``platform.machine()``; ``cpu_flags`` to the flags in /proc/cpuinfo where there is one
    (elsewhere the CPU is not checked)."""
    if kernels == "native":
        return
    machine = platform.machine() if machine is None else machine
    if machine.lower() not in ("x86_64", "amd64"):
        raise ValueError(f"argument --kernels: {kernels} needs an x86-64 CPU, this one is {machine}")
    if cpu_flags is None and os.path.exists("/proc/cpuinfo"):
        cpu_flags = Path("/proc/cpuinfo").read_text(errors="replace")
    if cpu_flags is not None and "avx2" not in cpu_flags.split():
        raise ValueError(f"argument --kernels: {kernels} needs a CPU with AVX2, and this one has none")


def _reexec_with_environment(args: argparse.Namespace) -> None:
    """Re-run this command with the thread and kernel variables set (they only count before the libraries load)."""
    wanted = bench_environment(args.threads, args.kernels)
    if all(os.environ.get(k) == v for k, v in wanted.items()) or os.environ.get(_REEXEC_FLAG):
        return
    env = {**os.environ, **wanted, _REEXEC_FLAG: "1"}
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, "-m", "minilora", *args.argv], env)


def _report(args: argparse.Namespace, report: Any, table: Callable[[], str]) -> int:
    """Print ``table()`` (or, with --json, the report as JSON) and write the report to --out."""
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        print()
    else:
        print(table())
    if args.out is not None:
        from minilora.io import atomic_write_json

        atomic_write_json(args.out, report)
    return 0


def _bench(args: argparse.Namespace) -> int:
    _check_out(args)
    check_kernels(args.kernels)
    _reexec_with_environment(args)
    from minilora.bench import steps

    if args.subspace:
        from minilora.bench import subspace

        report = {"environment": steps.environment(), "projections": subspace.projection_times(),
                  "subspace_step": subspace.subspace_step(steps=args.steps, warmup=args.untimed_steps)}
        return _report(args, report, lambda: subspace.format_projection_table(report["projections"]) + "\n"
                       + subspace.format_step_table(report["subspace_step"]))
    if args.profile:
        from minilora.bench.profile import format_profile, profile_step

        profiles = [profile_step(config=c, method=m, steps=args.steps, untimed_steps=args.untimed_steps,
                                 torch=not args.no_torch) for c in args.configs for m in args.methods]
        return _report(args, profiles, lambda: "\n\n".join(format_profile(r) for r in profiles))
    if args.gpu:
        from minilora.bench.gpu import device_report, format_device_report

        report = device_report(args.configs, args.methods, steps=args.steps, untimed_steps=args.untimed_steps)
        return _report(args, report, lambda: format_device_report(report))
    rows = steps.run_benchmarks(args.configs, args.methods, steps=args.steps, untimed_steps=args.untimed_steps,
                                torch=not args.no_torch, torch_attention=args.torch_attention,
                                threads=args.threads or None)
    report = {"environment": steps.environment(), "matmul": steps.matmul_reference(), "results": rows}

    def table() -> str:
        env = report["environment"]
        lines = [f"numpy {env['numpy']} (OpenBLAS {env.get('openblas_core', '?')}, "
                 f"{env.get('openblas_threads', '?')} threads)"
                 + (f", torch {env['torch']} ({env['torch_cpu_capability']} kernels, {env['torch_threads']} threads)"
                    if "torch" in env else "")]
        lines += [f"numpy float32 matmul {m['shape']}: {m['ms']:.2f} ms, {m['gflops']:.1f} GFLOP/s"
                  for m in report["matmul"]]
        from minilora.backend import cuda_available

        gpu = ("a GPU was found: `minilora bench --gpu` times these steps on it" if cuda_available() else
               "no GPU found: these are CPU numbers only (`minilora bench --gpu` compares CuPy where there is one)")
        return "\n".join([*lines, steps.format_table(rows), steps.TABLE_LEGEND, gpu])

    return _report(args, report, table)


COMMANDS = [
    ("bench", "training-step time, FLOP/s and memory of named configs (beside PyTorch when installed)", _bench_args,
     _bench),
]
