"""``rerun_figures``: recompute every result behind the shipped figures (what ``minilora figures --rerun`` runs).

    compare  one per task of ``FIGURE_RUNS``          → out/compare-<task>.json   (about 4 CPU-minutes)
    lora_paper(FULL)  186 runs, cached in runs/lora-paper → out/lora-*.json         (about 8 minutes with jobs=2)
    run_intrinsic(FULL)  cached in runs/intrinsic       → out/intrinsic-*.json      (about 23 minutes with jobs=2)

This is the one function that writes into the repository's ``figures/`` by default; every folder it writes is
checked before the first run, and the sweeps resume from their run caches.  Drawing is ``minilora.plots``' job.
"""

from __future__ import annotations

import concurrent.futures as cf
import tempfile
from pathlib import Path

from minilora.experiments.compare import compare
from minilora.experiments.folders import check_writable
from minilora.experiments.intrinsic import run_intrinsic
from minilora.experiments.lora_paper import lora_paper
from minilora.experiments.results import (
    COMPARE_FILE,
    compare_task_file,
    read_result,
    write_result,
)

__all__ = ["FIGURE_RUNS", "INTRINSIC_RUNS", "LORA_PAPER_RUNS", "rerun_figures"]

# The compare runs behind figures/full-vs-lora.png: (task, pretrained base), one column each.
FIGURE_RUNS = (("reverse-shift", "skills"), ("subtract", "skills"), ("sort", "skills"), ("first-names", "names"))
LORA_PAPER_RUNS = Path("runs") / "lora-paper"  # the run caches of the two sweeps (a rerun resumes from them)
INTRINSIC_RUNS = Path("runs") / "intrinsic"


def rerun_figures(out: str | Path = "figures", jobs: int = 1, executor: cf.Executor | None = None) -> list[Path]:
    """Recompute the JSON results of every shipped figure into ``out``; returns the files written.

    The compare runs are trained in a temporary folder (their weights are not kept), then the LoRA-paper and the
    intrinsic-dimension sweeps run with ``jobs`` worker processes (or ``executor``), resumable from their caches.
    """
    out = check_writable(out, "figures folder")
    for cache in (LORA_PAPER_RUNS, INTRINSIC_RUNS):
        check_writable(cache, "run cache")
    written = []
    for task, base in FIGURE_RUNS:
        with tempfile.TemporaryDirectory() as tmp:
            compare(task, base=base, out=tmp, jobs=jobs, executor=executor)
            result = read_result(Path(tmp) / COMPARE_FILE, expected="compare")
        written.append(write_result(out / compare_task_file(task), result))
    names = lora_paper(out=out, runs=LORA_PAPER_RUNS, jobs=jobs, executor=executor)
    written += [out / name for name in _files(names)]
    run_intrinsic(out=out, runs=INTRINSIC_RUNS, jobs=jobs, executor=executor)
    return written


def _files(results: dict) -> list[str]:
    from minilora.experiments.lora_paper import EXPERIMENTS

    return [EXPERIMENTS[name] for name in results]
