"""The LoRA paper's analyses in one sweep: rank (Table 6), budget (Table 5), what ΔW learns (Section 7, Table 7).

``lora_paper()`` gathers the runs of the chosen experiments into one list of specs, runs them with one
``run_sweep`` (one progress bar, ``jobs`` worker processes, resumable from the run cache ``runs``), and writes each
experiment's JSON into ``out``:

    lora-rank-sweep.json    RankSweep      accuracy against r, plain α/r and rsLoRA α/√r, with seeds
    lora-budget.json        Budget         the same parameter budget on different weight types
    lora-similarity.json    Similarity     subspace similarity across ranks and seeds, amplification

``fast=True`` runs a reduced set (one task each, fewer ranks, 60 steps, 100 held-out examples) for tests
and notebooks: its numbers show the pipeline, not the findings.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from minilora.experiments.adaptation import run_adaptation
from minilora.experiments.budget import BUDGET_GROUPS, Budget
from minilora.experiments.folders import check_writable
from minilora.experiments.rank_sweep import RankSweep
from minilora.experiments.results import (
    BUDGET_FILE,
    RANK_SWEEP_FILE,
    SIMILARITY_FILE,
    write_result,
)
from minilora.experiments.similarity import Similarity
from minilora.experiments.sweep import run_sweep

__all__ = ["EXPERIMENTS", "FAST", "FULL", "format_summary", "lora_paper"]

EXPERIMENTS = {"rank": RANK_SWEEP_FILE, "budget": BUDGET_FILE, "similarity": SIMILARITY_FILE}
_QUICK_EVAL = (("n_eval", 100),)
# The full set: 186 runs of 400 steps (8.3 minutes measured with --jobs 2 on an idle 2-core machine).
FULL: dict[str, Any] = {"rank": RankSweep(), "budget": Budget(), "similarity": Similarity()}
# The reduced set: 49 runs of 60 steps (43 s measured with --jobs 2).
FAST: dict[str, Any] = {
    "rank": RankSweep(tasks=(("reverse-shift", "skills"),), ranks=(1, 4, 16), steps=60, skill_task_kwargs=_QUICK_EVAL),
    "budget": Budget(tasks=(("subtract", "skills"),), groups=BUDGET_GROUPS, steps=60, skill_task_kwargs=_QUICK_EVAL),
    "similarity": Similarity(small_rank=4, large_rank=16, amplification_ranks=(4,), steps=60,
                             skill_task_kwargs=_QUICK_EVAL),
}


def lora_paper(out: str | Path | None = None, runs: str | Path | None = None, fast: bool = False,
               only: Sequence[str] | None = None, jobs: int = 1, executor: cf.Executor | None = None,
               settings: Mapping[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Run the chosen experiments (``only``: names from ``EXPERIMENTS``; default all) and write their JSON into ``out``.

    ``settings`` replaces experiments' settings (name → RankSweep / Budget / Similarity); otherwise ``FAST`` or
    ``FULL``.  ``runs`` (default ``runs/lora-paper`` or ``runs/lora-paper-fast``) keeps every finished run,
    so an interrupted sweep resumes; ``out`` defaults to ``runs`` (only ``rerun_figures`` writes into figures/).
    Both folders are checked before the first run.  Each JSON records the sweep's wall time, the number of runs it
    computed (not loaded), ``jobs`` and the thread settings.  Returns name → the experiment's JSON.
    """
    names = list(EXPERIMENTS) if only is None else list(only)
    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown or not names:
        raise ValueError(f"lora_paper: unknown experiments {unknown or names}; expected some of {list(EXPERIMENTS)}")
    chosen = {**(FAST if fast else FULL), **(settings or {})}
    experiments = {n: chosen[n] for n in names}
    cache = Path(runs) if runs is not None else Path("runs") / ("lora-paper-fast" if fast else "lora-paper")
    out = cache if out is None else Path(out)
    check_writable(out, "results folder")
    check_writable(cache, "run cache")
    specs = [spec for n in names for spec in experiments[n].specs()]
    before = len(list((cache / "runs").glob("*.json"))) if (cache / "runs").is_dir() else 0
    start = time.perf_counter()
    outcomes = run_sweep(specs, run_adaptation, runs=cache, jobs=jobs, executor=executor,
                         desc="lora-paper" + (" --fast" if fast else ""))
    wall = time.perf_counter() - start
    after = len(list((cache / "runs").glob("*.json")))
    sweep = {"specs": len(specs), "computed": after - before, "wall_seconds": wall, "jobs": jobs,
             "executor": None if executor is None else type(executor).__name__, "fast": fast,
             "threads": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}}
    results = {}
    for name in names:
        result = {**experiments[name].summarize(outcomes), "sweep": sweep}
        write_result(out / EXPERIMENTS[name], result)
        results[name] = result
    return results


def _pm(row: Mapping[str, Any], digits: int = 3) -> str:
    """"0.912 ± 0.013": a mean and its spread (sample std over seeds)."""
    return f"{row['mean']:.{digits}f} ± {row['std']:.{digits}f}"


def format_summary(results: Mapping[str, dict[str, Any]]) -> str:
    """The results of ``lora_paper`` as text: one block per experiment, every number a mean ± std over seeds."""
    lines = []
    if "rank" in results:
        rows = results["rank"]["rows"]
        ranks = results["rank"]["settings"]["ranks"]
        lines.append("rank sweep (held-out metric, mean ± std over seeds); plain s = α/r, rsLoRA s = α/√r, "
                     f"α = {results['rank']['settings']['alpha']:g}")
        for task in dict.fromkeys(r["task"] for r in rows):
            mine = {(r["method"], r["scaling"], r["rank"]): r for r in rows if r["task"] == task}
            lines.append(f"  {task} ({mine[('none', None, None)]['metric']}): "
                         f"none {_pm(mine[('none', None, None)])}, full {_pm(mine[('full', None, None)])}")
            for scaling in ("alpha/r", "alpha/sqrt(r)"):
                cells = ", ".join(f"r={r} {_pm(mine[('lora', scaling, r)])}" for r in ranks)
                lines.append(f"    {'plain ' if scaling == 'alpha/r' else 'rsLoRA'} {cells}")
    if "budget" in results:
        lines.append("fixed budget (held-out metric, mean ± std over seeds)")
        for r in results["budget"]["rows"]:
            lines.append(f"  {r['task']:14s} {r['group']:22s} r={r['rank']:<2d} {r['trainable_params']:>6,} params  "
                         f"{_pm(r)}")
    if "similarity" in results:
        sim = results["similarity"]
        s = sim["settings"]
        lines.append(f"subspace similarity φ on {s['task']} (mean ± std over seeds or seed pairs; chance max(i, j)/k)")
        for entry in sim["modules"].values():
            for which in ("A", "delta_w"):
                for kind in ("across_ranks", "across_seeds"):
                    b = entry[which][kind]
                    lines.append(f"  {entry['path']} {which:7s} {kind:12s} φ(1,1) {_pm(b['top1'], 2)} (chance "
                                 f"{b['top1']['chance']:.3f}, above {_pm(b['top1']['above_chance'], 2)}); "
                                 f"φ({b['top_n']['size']},{b['top_n']['size']}) {_pm(b['top_n'], 2)} (chance "
                                 f"{b['top_n']['chance']:.3f}, above {_pm(b['top_n']['above_chance'], 2)})")
        lines.append("amplification ‖ΔW‖_F / ‖UᵀWV‖_F (U, V: ΔW's top-r directions), and ‖UᵀWV‖ for ΔW's, "
                     "W's, random directions")
        for r in sim["amplification"]:
            lines.append(f"  {r['path']} r={r['rank']}: factor {_pm(r['factor'], 2)}; "
                         f"‖UᵀWV‖ ΔW {_pm(r['proj_delta'], 3)}, "
                         f"W {r['proj_w_top']:.3f}, random {_pm(r['proj_random'], 3)}; ‖W‖ {r['w_norm']:.3f}, "
                         f"‖ΔW‖ {_pm(r['delta_norm'], 3)}")
    sweep = next(iter(results.values()))["sweep"]
    lines.append(f"sweep: {sweep['specs']} runs ({sweep['computed']} computed, the rest loaded), "
                 f"{sweep['wall_seconds']:.0f} s wall, jobs {sweep['jobs']}")
    return "\n".join(lines)
