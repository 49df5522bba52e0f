"""The LoRA paper's figures: rank sweep, fixed budget, subspace similarity and amplification (``lora-*.png``)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from minilora.experiments.results import (
    BUDGET_FILE,
    RANK_SWEEP_FILE,
    SIMILARITY_FILE,
    png_name,
    read_result,
)
from minilora.plots.common import metric_label, new_figure, save_png, seed_points, wrapped_panels

__all__ = [
    "AMPLIFICATION_PNG",
    "LORA_PAPER_FIGURES",
    "draw_lora_paper_figures",
    "plot_amplification",
    "plot_lora_budget",
    "plot_rank_sweep",
    "plot_similarity",
]

AMPLIFICATION_PNG = "lora-amplification.png"  # drawn from lora-similarity.json
LORA_PAPER_FIGURES = ("lora-rank-sweep", "lora-budget", "lora-similarity", "lora-amplification")


def plot_rank_sweep(result: dict[str, Any], path: str | Path) -> Path:
    """One panel per task: the held-out metric against LoRA rank r (log axis) for s = α/r and s = α/√r, mean ± std
    over seeds (bars) and every seed (dots); full fine-tuning (dashed, band ± std) and the base model (dotted)."""
    rows = result["rows"]
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    fig, panels = wrapped_panels(len(tasks), (4.5, 4.2))
    axes = [ax for (ax,) in panels]
    alpha = result["settings"]["alpha"]
    for ax, task in zip(axes, tasks):
        mine = [r for r in rows if r["task"] == task]
        for i, (scaling, label) in enumerate((("alpha/r", f"LoRA s = α/r (α = {alpha:g})"),
                                              ("alpha/sqrt(r)", f"rsLoRA s = α/√r (α = {alpha:g})"))):
            lora = sorted((r for r in mine if r["scaling"] == scaling), key=lambda r: r["rank"])
            shift = 1.06 if i else 1 / 1.06  # the two curves side by side, not on top of each other
            ranks = np.array([r["rank"] for r in lora], dtype=float) * shift
            ax.errorbar(ranks, [r["mean"] for r in lora], yerr=[r["std"] for r in lora], fmt="o-", ms=4, capsize=3,
                        color=f"C{i}", label=label)
            for x, r in zip(ranks, lora):
                seed_points(ax, x, r["values"], f"C{i}")
        for method, style in (("full", {"color": "black", "linestyle": "--"}),
                              ("none", {"color": "gray", "linestyle": ":"})):
            for r in mine:
                if r["method"] == method:
                    name = "full fine-tuning" if method == "full" else "no fine-tuning"
                    ax.axhline(r["mean"], label=f"{name} ({r['mean']:.3f})", **style)
                    if r["std"]:
                        ax.axhspan(r["mean"] - r["std"], r["mean"] + r["std"], color=style["color"], alpha=0.08)
        ranks = sorted({r["rank"] for r in mine if r["method"] == "lora"})
        ax.set_xscale("log", base=2)
        ax.set_xticks(ranks, [str(r) for r in ranks])
        ax.set_title(task)
        ax.set_xlabel("LoRA rank r")
        ax.set_ylabel(metric_label(mine[0]["metric"]))
        ax.legend(fontsize=8)
    n = len(result["settings"]["seeds"])
    fig.suptitle(f"Does a tiny rank suffice? Held-out metric against rank, mean ± std over {n} "
                 f"seeds (dots: each seed), {result['settings']['steps']} steps", fontsize=10)
    return save_png(fig, path)


def plot_lora_budget(result: dict[str, Any], path: str | Path) -> Path:
    """One panel per task, one above the other: bars of the held-out metric (mean over seeds, ± std) when the same
    number of LoRA parameters is spent on different weight types; dots are the seeds, labels the rank and exact
    count."""
    rows = result["rows"]
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    # one panel a row: the PNG stays readable at a README's width, its bar labels 8 pt
    fig = new_figure((9, 4.4 * len(tasks)))
    axes = fig.subplots(len(tasks), 1, squeeze=False)[:, 0]
    for ax, task in zip(axes, tasks):
        mine = [r for r in rows if r["task"] == task]
        x = np.arange(len(mine))
        ax.bar(x, [r["mean"] for r in mine], yerr=[r["std"] for r in mine], capsize=3, color="C0", alpha=0.7)
        for xi, r in zip(x, mine):
            seed_points(ax, xi, r["values"], "black")
            top = max([r["mean"] + r["std"], *r["values"]])  # the label above the error bar and every seed's dot
            ax.annotate(f"r={r['rank']}\n{r['trainable_params']:,}", (xi, top), textcoords="offset points",
                        xytext=(0, 3), ha="center", va="bottom", fontsize=8)
        # level labels, long ones on two lines: rotated ones' boxes collide at this width
        ax.set_xticks(x, [textwrap.fill(r["group"], 12) for r in mine], fontsize=8)
        ax.set_ylabel(metric_label(mine[0]["metric"]))
        ax.set_ylim(0, max(1.0, max(r["max"] for r in mine)) * 1.25)
        ax.set_title(f"{task}: budget {mine[0]['budget']:,} parameters")
    n = len(result["settings"]["seeds"])
    fig.suptitle(f"Which weights to adapt under a fixed budget: mean ± std over {n} seeds\n(dots: each seed; "
                 f"labels: rank, exact parameter count)", fontsize=10)
    return save_png(fig, path)


def _phi_axes(fig: Any, ax: Any, block: dict[str, Any], title: str, xlabel: str, ylabel: str) -> None:
    """A heatmap of the seed-mean similarity above chance, (φ − c)/(1 − c) with c = max(i, j)/k (0: what random
    subspaces give, 1: the same subspace); cells whose mean φ is not above chance carry a white dot."""
    from matplotlib.ticker import MaxNLocator

    phi, chance = np.asarray(block["mean"]), np.asarray(block["chance"])
    excess = np.asarray(block["above_chance"])
    image = ax.imshow(excess, vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto", origin="upper",
                      extent=(0.5, phi.shape[1] + 0.5, phi.shape[0] + 0.5, 0.5))
    below = np.argwhere(phi <= chance)
    ax.plot(below[:, 1] + 1, below[:, 0] + 1, "w.", ms=3)
    fig.colorbar(image, ax=ax, fraction=0.046)
    top = block["top_n"]
    ax.set_title(f"{title}\nφ({top['size']},{top['size']}) = {top['mean']:.2f} ± {top['std']:.2f}\n(chance "
                 f"{top['chance']:.2f}; above chance {top['above_chance']['mean']:.2f})",
                 fontsize=8)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)


def plot_similarity(result: dict[str, Any], path: str | Path) -> Path:
    """The LoRA paper's Figures 3–4: heatmaps of the similarity above chance, (φ(i, j) − c)/(1 − c) with
    c = max(i, j)/k, mean over seeds, for each analysed module: across ranks (r = small vs large, same seed) and
    across seeds (two seeds at the small rank), for A (the paper) and for ΔW = s·B A.  Raw φ would brighten toward
    j = k whatever the matrices (c → 1); above chance, a bright cell is learned.  White dots: mean φ ≤ chance."""
    s = result["settings"]
    modules = result["modules"]
    # one row per (module, A or ΔW), two panels a row: the PNG stays readable at a README's width
    fig = new_figure((9, 3.4 * 2 * len(modules)))
    axes = fig.subplots(2 * len(modules), 2, squeeze=False, gridspec_kw={"width_ratios": [3, 2]})
    small, large = s["small_rank"], s["large_rank"]
    rows = iter(axes)
    for name, entry in modules.items():
        for which in ("A", "delta_w"):
            row, label = next(rows), "A" if which == "A" else "ΔW"
            _phi_axes(fig, row[0], entry[which]["across_ranks"], f"{entry['path']}: {label}, r={small} vs r={large}",
                      f"j (top directions of r={large})", f"i (r={small})")
            _phi_axes(fig, row[1], entry[which]["across_seeds"], f"{label}, r={small}: two seeds",
                      "j (seed b)", "i (seed a)")
    k = next(iter(modules.values()))["k"]
    fig.suptitle(f"Subspace similarity above chance, (φ − c)/(1 − c), φ(i, j) = ‖U_iᵀ U_j‖²_F / min(i, j), "
                 f"c = max(i, j)/k, k = {k}: learned LoRA updates on {s['task']} (mean over {len(s['seeds'])} seeds "
                 f"or seed pairs; white dots: φ not above chance)", fontsize=10)
    return save_png(fig, path)


def plot_amplification(result: dict[str, Any], path: str | Path) -> Path:
    """The LoRA paper's Table 7 as a figure: ‖UᵀWV‖_F for U, V the top-r directions of ΔW, of W and of a random
    matrix, ‖W‖_F, ‖ΔW‖_F and the amplification factor ‖ΔW‖_F / ‖UᵀWV‖_F (mean ± std over seeds)."""
    head = ["module", "r", "‖UᵀWV‖ ΔW", "‖UᵀWV‖ W", "‖UᵀWV‖ random", "‖W‖_F", "‖ΔW‖_F", "‖ΔW‖/‖UᵀWV‖"]
    cells = []

    def pm(v):
        return f"{v['mean']:.3g} ± {v['std']:.2g}"

    for r in result["amplification"]:
        cells.append([r["path"], str(r["rank"]), pm(r["proj_delta"]), f"{r['proj_w_top']:.3g}", pm(r["proj_random"]),
                      f"{r['w_norm']:.3g}", pm(r["delta_norm"]), pm(r["factor"])])
    fig = new_figure((9, 0.6 + 0.4 * (len(cells) + 2)))  # 990 px: readable at a README's width
    ax = fig.subplots()
    ax.axis("off")
    table = ax.table(cellText=cells, colLabels=head, loc="center", cellLoc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(9)
    table.auto_set_column_width(range(len(head)))  # each column as wide as its text: no clipped module path
    table.scale(1, 1.4)
    s = result["settings"]
    ax.set_title(f"Does ΔW amplify directions W does not emphasise? {s['task']}, mean ± std over {len(s['seeds'])} "
                 f"seeds (U, V: top-r singular directions; paper, GPT-3 W_q at r = 4: factor ≈ 21.5)", fontsize=9)
    return save_png(fig, path)


def draw_lora_paper_figures(folder: str | Path = "figures") -> list[Path]:
    """Draw the LoRA-paper figures for the ``lora-*.json`` present in ``folder`` (written by ``minilora lora-paper``):
    lora-rank-sweep.png, lora-budget.png, lora-similarity.png and lora-amplification.png; returns the PNGs."""
    folder = Path(folder)
    drawers = {RANK_SWEEP_FILE: ("rank-sweep", [(plot_rank_sweep, png_name(RANK_SWEEP_FILE))]),
               BUDGET_FILE: ("budget", [(plot_lora_budget, png_name(BUDGET_FILE))]),
               SIMILARITY_FILE: ("similarity", [(plot_similarity, png_name(SIMILARITY_FILE)),
                                                (plot_amplification, AMPLIFICATION_PNG)])}
    paths = []
    for file, (experiment, draws) in drawers.items():
        if not (folder / file).is_file():
            continue
        result = read_result(folder / file, expected=experiment)
        paths += [draw(result, folder / png) for draw, png in draws]
    return paths
