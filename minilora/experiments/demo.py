"""``minilora demo``: the project in one command, about 20 seconds on two idle CPU cores, from a fresh install.

Three steps under one progress bar, each printed as it finishes:

1. **parameter arithmetic** on the shipped skills model: a d×k weight costs d·k numbers to fine-tune, its LoRA
   update ΔW = (α/r)·B A (B: d×r, A: r×k) costs r(d + k) (``lora_report``); and GPT-3's 4.7M / 37.7M;
2. **full fine-tuning vs LoRA** at a few ranks on a skill the model has never seen, same short budget for every
   run (``compare``: metric, time, memory, file size per run);
3. **intrinsic dimension**, fast: subspace training θ = θ0 + P z (Fastfood P) over d, beside LoRA and full
   fine-tuning on the same task (``run_intrinsic``'s "budget" experiment, one curve), and

       d90 = the smallest d whose metric reaches 0.9 × full fine-tuning's   (interpolated on log d).

Everything lands in ``out`` (default ``runs/demo``): ``compare/`` (``compare``'s folder: weights per run and
``compare.json``), ``intrinsic/`` (the run cache), ``intrinsic-budget.json`` and ``demo.json`` (settings, wall times
and where the rest is).  The figures are drawn from those JSON files by ``minilora.plots`` (the command does it:
this layer does not draw).  Rerun in the same folder, the demo loads its finished runs instead of training again.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from minilora.data import get_task
from minilora.experiments.compare import compare, format_table
from minilora.experiments.folders import LOCK_FILE, check_writable
from minilora.experiments.intrinsic import FAST, Settings, run_intrinsic
from minilora.experiments.methods import DEFAULT_TARGETS, get_method
from minilora.experiments.results import (
    COMPARE_FILE,
    DEMO_FILE,
    FULL_VS_LORA_PNG,
    intrinsic_file,
    png_name,
    write_result,
)
from minilora.experiments.runs import load_base
from minilora.io import clean_temporaries
from minilora.lora import count_parameters, lora_param_count, lora_report
from minilora.progress import progress

__all__ = [
    "DEMO",
    "DEMO_FIGURES",
    "DEMO_FILE",
    "NOTEBOOKS",
    "DemoSettings",
    "check_demo_folder",
    "d90_line",
    "format_budget",
    "format_demo",
    "parameter_arithmetic",
    "run_demo",
]

INTRINSIC_FILE = intrinsic_file("budget")
DEMO_FIGURES = (FULL_VS_LORA_PNG, png_name(INTRINSIC_FILE))  # drawn by the command from the JSON beside them
_OURS = {"compare", "intrinsic", DEMO_FILE, INTRINSIC_FILE, LOCK_FILE, *DEMO_FIGURES}  # what the demo writes in ``out``
NOTEBOOKS = ("tutorials/01_autograd_from_scratch.ipynb  the engine: a graph, a Function, gradcheck",
             "tutorials/03_lora_math.ipynb              W0 + (α/r)·B A and its parameter count",
             "tutorials/04_lora_side_by_side.ipynb      step 2 of this demo, cell by cell",
             "tutorials/05_rank_and_which_weights.ipynb which rank, which weights (with seeds)",
             "tutorials/06_what_lora_learns.ipynb       subspace similarity and amplification",
             "tutorials/07_intrinsic_dimension.ipynb    step 3: d90, the toy problem, pretrained vs random")


@dataclass(frozen=True)
class DemoSettings:
    """What the demo runs: ``task`` from ``base``; compare at ``ranks`` for ``steps`` steps, evaluated on ``n_eval``
    held-out examples; the parameter table at ``rank``; the intrinsic-dimension sweep with ``intrinsic``."""

    task: str = "reverse-shift"
    base: str = "skills"
    rank: int = 4
    ranks: tuple[int, ...] = (1, 4)
    steps: int = 300
    n_eval: int = 200
    latency_repeats: int = 5
    intrinsic: Settings = field(default_factory=lambda: FAST)


DEMO = DemoSettings()


def check_demo_folder(out: str | Path) -> Path:
    """Check ``out`` before anything runs: writable, and empty or holding an earlier demo (whose finished runs are
    reused); a folder with other files is refused with a one-line ValueError.  Nothing is created."""
    folder = check_writable(out, "demo folder")
    if folder.is_dir():
        clean_temporaries(folder)  # stale temporaries of a killed write
    foreign = sorted(p.name for p in folder.iterdir() if p.name not in _OURS) if folder.is_dir() else []
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise ValueError(f"demo folder {folder} holds files the demo does not write ({shown}); choose a new or empty "
                         f"folder with --out")
    return folder


def parameter_arithmetic(base: str = "skills", rank: int = 4,
                         targets: tuple[str, ...] = DEFAULT_TARGETS) -> dict[str, Any]:
    """LoRA's parameter count on ``base``: per adapted d×k weight, d·k to fine-tune vs r(d + k) for B (d×r) and A (r×k).

    Returns {"table" (``lora_report``'s text), "rank", "trainable", "total" (all weights of the LoRA model),
    "base_total" (the base model's weights: what full fine-tuning trains), "gpt3": {"1": ..., "8": ...}}, the last
    2·12288·r·2·96: GPT-3 175B's W_q and W_v adapted at r = 1 and 8 (the paper's 4.7M and 37.7M).
    """
    model = load_base(base)
    base_total = model.num_parameters()
    model = get_method("lora").prepare(model, {"r": rank, "target_modules": list(targets)})
    count = count_parameters(model)
    return {"table": lora_report(model).table, "rank": rank, "trainable": count.trainable, "total": count.total,
            "base_total": base_total, "gpt3": {str(r): lora_param_count(12288, 96, r) for r in (1, 8)}}


def run_demo(out: str | Path = "runs/demo", jobs: int = 1, settings: DemoSettings | None = None) -> dict[str, Any]:
    """Run the demo's three steps into ``out`` (checked first: the folder and every subfolder it writes) with
    ``jobs`` worker processes (default 1: this process) and ``settings`` (default ``DEMO``).

    Returns and writes ``out/demo.json``: {"settings", "arithmetic" (``parameter_arithmetic``), "compare" (the rows of
    ``compare`` without per-step losses), "intrinsic" (``run_intrinsic``'s "budget" result), "seconds" per step,
    "files"}.  The progress bar advances once per step; the steps' own bars show their runs.
    """
    folder = check_demo_folder(out)
    for sub in ("compare", "intrinsic"):
        check_writable(folder / sub, "demo folder")
    settings = settings or DEMO
    seconds: dict[str, float] = {}
    with progress(total=3, desc="demo", unit="step") as bar:
        start = time.perf_counter()
        bar.set_postfix_str("parameter arithmetic")
        arithmetic = parameter_arithmetic(settings.base, settings.rank)
        seconds["arithmetic"] = time.perf_counter() - start
        bar.update()

        start = time.perf_counter()
        bar.set_postfix_str("full fine-tuning vs LoRA")
        task = get_task(settings.task, n_eval=settings.n_eval)
        rows = compare(task, base=settings.base, ranks=settings.ranks, steps=settings.steps, out=folder / "compare",
                       latency_repeats=settings.latency_repeats, resume=True, jobs=jobs)
        seconds["compare"] = time.perf_counter() - start
        bar.update()

        start = time.perf_counter()
        bar.set_postfix_str("intrinsic dimension")
        intrinsic = run_intrinsic(only=["budget"], out=folder, runs=folder / "intrinsic", jobs=jobs,
                                  settings=settings.intrinsic)["budget"]
        seconds["intrinsic"] = time.perf_counter() - start
        bar.update()
    result = {"settings": {**asdict(settings), "jobs": jobs}, "arithmetic": arithmetic,
              "compare": [{k: v for k, v in row.items() if k != "losses"} for row in rows], "intrinsic": intrinsic,
              "seconds": seconds, "files": {"compare": str(folder / "compare" / COMPARE_FILE),
                                            "intrinsic": str(folder / INTRINSIC_FILE)}}
    write_result(folder / DEMO_FILE, result)
    return result


def format_budget(intrinsic: dict[str, Any]) -> str:
    """Metric against trainable parameters, one line per run: full fine-tuning, LoRA per rank, subspace per d."""
    full = intrinsic["full"]
    lines = [f"{'method':24s} {'trainable':>10s} {'% of D':>8s} {'metric':>7s}", "-" * 52]

    def line(name: str, trainable: int, metric: float) -> str:
        return f"{name:24s} {trainable:>10,} {100 * trainable / full['D']:>7.2f}% {metric:>7.3f}"

    lines.append(line("full fine-tuning", full["D"], full["metric"]))
    lines += [line(f"LoRA r={r['rank']}", r["trainable"], r["mean"]) for r in intrinsic["lora"]]
    lines += [line(f"subspace d={p['d']:,}", p["trainable"], p["mean"]) for p in intrinsic["subspace"]["points"]]
    return "\n".join(lines)


def d90_line(intrinsic: dict[str, Any]) -> str:
    """One sentence: d90, its share of D, and the target it reached (or that it was not reached)."""
    curve, full = intrinsic["subspace"], intrinsic["full"]
    if curve["target"] is None:
        return f"d90: not measured (full fine-tuning's metric is {full['metric']:.3f}: there is no 90% to reach)"
    if curve["d90"] is None:
        top = max(p["d"] for p in curve["points"])
        return (f"d90: not reached up to d = {top:,} (target {curve['target']:.3f} = 0.9 × full fine-tuning's "
                f"{full['metric']:.3f})")
    bound = "at most " if curve["d90_bounded"] else ""
    return (f"d90 = {bound}{curve['d90']:,.0f}: training {bound}{curve['d90']:,.0f} numbers z in θ = θ0 + P z "
            f"({100 * curve['d90'] / full['D']:.2f}% of D = {full['D']:,}) reaches {curve['target']:.3f} = 0.9 × "
            f"full fine-tuning's {full['metric']:.3f}")


def format_demo(result: dict[str, Any]) -> list[str]:
    """The demo's printed sections, in order (the command prints them with figures and pointers in between)."""
    a = result["arithmetic"]
    arithmetic = (f"LoRA r = {a['rank']} on the shipped skills model: each d×k weight costs d·k to fine-tune, its "
                  f"update B (d×r) A (r×k) costs r(d+k)\n{a['table']}\n"
                  f"full fine-tuning trains {a['base_total']:,} weights; LoRA {a['trainable']:,} "
                  f"({100 * a['trainable'] / a['base_total']:.2f}%).  GPT-3 175B, W_q and W_v: r = 1 → "
                  f"{a['gpt3']['1']:,}, r = 8 → {a['gpt3']['8']:,} trainable")
    return [arithmetic, format_table(result["compare"]), format_budget(result["intrinsic"]),
            d90_line(result["intrinsic"])]
