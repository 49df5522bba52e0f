"""The sweeps behind the figures: ``lora-paper``, ``intrinsic``, ``lora-family``, ``figures`` (``--rerun``) and the
``demo``.

Each sweep keeps every finished run in its ``--runs`` cache, so the same command run again continues where an
interrupted one stopped; ``--out`` is where its JSON results and figures go (never the repository's
``figures/`` unless given: recomputing those is ``minilora figures --rerun``'s job).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from minilora.cli.cluster import sweep_executor
from minilora.cli.options import add_jobs, add_out, add_runs, comma_list

__all__ = ["COMMANDS"]


def _only(p: argparse.ArgumentParser, experiments: list[str]) -> None:
    p.add_argument("--only", type=comma_list, default=None, metavar="NAMES",
                   help=f"comma-separated experiments (default all: {','.join(experiments)})")


def _sweep_args(p: argparse.ArgumentParser, experiments: list[str], fast_help: str, runs: str) -> None:
    """The options of a sweep of named experiments: --fast, --out, --runs (default runs/NAME[-fast]), --jobs /
    --scheduler, --only (for a sweep of several ``experiments``)."""
    p.add_argument("--fast", action="store_true", help=fast_help)
    add_out(p, "where the JSON results and PNGs go (default: the --runs folder)")
    add_runs(p, f"runs/{runs}, with --fast runs/{runs}-fast")
    add_jobs(p)
    if experiments:
        _only(p, experiments)


def _lora_paper_args(p: argparse.ArgumentParser) -> None:
    from minilora.experiments.lora_paper import EXPERIMENTS

    _sweep_args(p, list(EXPERIMENTS), "a reduced set (one task each, 60 steps): about a minute", "lora-paper")


def _run_sweep_command(args: argparse.Namespace, name: str, run: Callable[[str, Any], Any],
                       summary: Callable[[Any], str], draw: Callable[[str], list[Any]]) -> int:
    """The shape every figure sweep shares: its folder (``--out``, else ``--runs``, else runs/NAME[-fast]), the
    runs on ``--jobs`` or ``--scheduler``, the printed summary, then the figures drawn into that folder."""
    out = args.out or args.runs or (f"runs/{name}-fast" if args.fast else f"runs/{name}")
    with sweep_executor(args) as executor:
        result = run(out, executor)
    print(summary(result))
    for path in draw(out):
        print(f"wrote {path}")
    return 0


def _lora_paper(args: argparse.Namespace) -> int:
    from minilora.experiments.lora_paper import format_summary, lora_paper
    from minilora.plots import draw_lora_paper_figures

    return _run_sweep_command(args, "lora-paper", lambda out, executor: lora_paper(
        out=out, runs=args.runs, fast=args.fast, only=args.only, jobs=args.jobs, executor=executor),
        format_summary, draw_lora_paper_figures)


def _intrinsic_args(p: argparse.ArgumentParser) -> None:
    from minilora.experiments.intrinsic import EXPERIMENTS

    _sweep_args(p, list(EXPERIMENTS), "a quick look: one seed, 100 steps, fewer d (about a minute with --jobs 2)",
                "intrinsic")


def _intrinsic(args: argparse.Namespace) -> int:
    from minilora.experiments.intrinsic import format_table, run_intrinsic
    from minilora.plots import draw_intrinsic_figures

    out = args.out or args.runs or ("runs/intrinsic-fast" if args.fast else "runs/intrinsic")
    start = time.perf_counter()
    with sweep_executor(args) as executor:
        results = run_intrinsic(out=out, runs=args.runs, only=args.only, fast=args.fast, jobs=args.jobs,
                                executor=executor)
    print(format_table(results))
    print(f"d90: the smallest d whose seed-mean metric reaches the target = 0.9 x baseline (full fine-tuning, same "
          f"budget), interpolated on log d; {time.perf_counter() - start:.0f} s")
    for path in draw_intrinsic_figures(out):
        print(f"wrote {path}")
    return 0


def _lora_family_args(p: argparse.ArgumentParser) -> None:
    from minilora.experiments.family import ARMS

    _sweep_args(p, [], "a tiny grid (two tasks, three methods, two lrs, 30 steps): about 20 s with --jobs 2",
                "lora-family")
    p.add_argument("--methods", type=comma_list, default=None, metavar="NAMES",
                   help=f"comma-separated methods (default all: {','.join(ARMS)}); LoRA's rank × lr grid always runs")


def _lora_family(args: argparse.Namespace) -> int:
    from minilora.experiments.family import format_family, lora_family
    from minilora.plots import draw_family_figures

    return _run_sweep_command(args, "lora-family", lambda out, executor: lora_family(
        out=out, runs=args.runs, fast=args.fast, methods=args.methods, jobs=args.jobs, executor=executor),
        format_family, draw_family_figures)


def _figures_args(p: argparse.ArgumentParser) -> None:
    add_out(p, "the folder of JSON results and PNGs (default figures), or a `minilora compare` folder "
               "(draws its full-vs-lora.png)", default="figures")
    p.add_argument("--rerun", action="store_true",
                   help="recompute the results first (minilora compare for each of the 4 tasks: about 4 CPU-minutes; "
                        "then minilora lora-paper: 186 runs, about 8 minutes with --jobs 2; then minilora "
                        "intrinsic: about 23 minutes with --jobs 2)")
    add_jobs(p)


def _figures(args: argparse.Namespace) -> int:
    from minilora.plots import draw_figures

    if args.rerun:
        from minilora.experiments.figures import rerun_figures

        with sweep_executor(args) as executor:
            rerun_figures(out=args.out, jobs=args.jobs, executor=executor)
    for path in draw_figures(args.out):
        print(f"wrote {path}")
    return 0


def _demo_args(p: argparse.ArgumentParser) -> None:
    add_out(p, "folder for the demo's runs, JSON and figures (default runs/demo; a rerun there reuses finished runs)",
            default="runs/demo")
    add_jobs(p, sweep=False)


def _demo(args: argparse.Namespace) -> int:
    from minilora.cli.compare import COMPARE_LEGEND
    from minilora.experiments.demo import NOTEBOOKS, format_demo, run_demo
    from minilora.plots import draw_intrinsic_figures, load_compare, plot_compare

    start = time.perf_counter()
    result = run_demo(out=args.out, jobs=args.jobs)
    arithmetic, side_by_side, budget, d90 = format_demo(result)
    settings = result["settings"]
    print(f"\n1. {arithmetic}")
    print(f"\n2. full fine-tuning vs LoRA on {settings['task']} from the shipped {settings['base']} model, "
          f"{settings['steps']} steps each (test {result['compare'][0]['metric']} on {settings['n_eval']} examples)")
    print(side_by_side)
    print(COMPARE_LEGEND)
    print(f"\n3. intrinsic dimension on {settings['task']}: train only z in θ = θ0 + P z (Fastfood P), "
          f"{settings['intrinsic']['steps']} steps per run, one seed")
    print(budget)
    print(d90)
    figures = [plot_compare([load_compare(result["files"]["compare"])], Path(args.out) / "full-vs-lora.png"),
               *draw_intrinsic_figures(args.out)]
    print("\nfigures: " + ", ".join(str(f) for f in figures))
    print(f"demo finished in {time.perf_counter() - start:.0f} s with --jobs {settings['jobs']}; "
          f"results in {args.out}. Next, the notebooks:\n  " + "\n  ".join(NOTEBOOKS))
    return 0


COMMANDS = [
    ("lora-paper", ("the LoRA paper's analyses with seeds: rank sweep (Table 6), fixed budget (Table 5), "
                    "what ΔW learns (Section 7, Table 7)"), _lora_paper_args, _lora_paper),
    ("intrinsic", ("intrinsic dimension: d90 of subspace training (pretrained vs random, along pretraining, "
                   "width, SAID, projections, parameter budget)"), _intrinsic_args, _intrinsic),
    ("lora-family", ("the LoRA family at equal trainable parameters, each method at its own lr chosen on "
                     "validation, with seeds: metric, cost, rank × lr grid, learning vs forgetting"),
     _lora_family_args, _lora_family),
    ("figures", "redraw the figures from their JSON results (--rerun recomputes the results)", _figures_args, _figures),
    ("demo", ("the project in about 20 seconds on 2 cores: LoRA's parameter arithmetic, full fine-tuning vs LoRA, "
              "a fast intrinsic-dimension sweep (d90), figures"), _demo_args, _demo),
]
