"""The LoRA family's figures, drawn from ``lora-family.json`` (``minilora lora-family``):

    lora-family.png             the held-out metric against trainable parameters, every method, one panel per task
    lora-family-lr-grid.png     LoRA's rank × lr grid (validation metric) beside full fine-tuning's lr curve
    lora-family-forgetting.png  learning (new-skill test metric) against forgetting (retained pretraining accuracy)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.ticker import NullFormatter

from minilora.experiments.results import (
    FAMILY_FILE,
    FAMILY_FORGETTING_PNG,
    FAMILY_LR_GRID_PNG,
    png_name,
    read_result,
)
from minilora.plots.common import metric_label, new_figure, no_data, save_png, seed_points
from minilora.plots.compare import _FULL_STYLE as FULL_STYLE

__all__ = ["FAMILY_FIGURES", "draw_family_figures", "plot_family", "plot_family_forgetting", "plot_family_lr_grid"]

FAMILY_FIGURES = (png_name(FAMILY_FILE), FAMILY_LR_GRID_PNG, FAMILY_FORGETTING_PNG)
_MARKERS = "osD^vP*XhH<>p"


def _tasks(result: dict[str, Any]) -> list[str]:
    return list(dict.fromkeys(r["task"] for r in result["rows"]))


def _colors(result: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """arm → (colour, marker), the same in every figure; full fine-tuning is black."""
    arms = [a for a in dict.fromkeys(r["arm"] for r in result["rows"] if r["kind"] == "method") if a != "full"]
    styles = {arm: (f"C{i % 10}", _MARKERS[i % len(_MARKERS)]) for i, arm in enumerate(arms)}
    return {**styles, "full": ("black", "s")}


def _ok(row: dict[str, Any]) -> bool:
    return not row["diverged"] and row["test"] is not None


def plot_family(result: dict[str, Any], path: str | Path) -> Path:
    """One panel per task, one above the other: the test metric (mean over seeds: a large marker, each seed: a dot)
    against the run's real trainable parameters (log axis) for every method, each at its own lr chosen on
    validation; full fine-tuning is also a dashed line (band ± std) and the base model a dotted one.  The budget is a
    thin vertical line."""
    tasks = _tasks(result)
    styles = _colors(result)
    # one panel a row, its legend at its right: the PNG stays readable at a README's width
    fig = new_figure((9, 3.4 * len(tasks)))
    axes = fig.subplots(len(tasks), 1, squeeze=False)[:, 0]
    for ax, task in zip(axes, tasks):
        rows = [r for r in result["rows"] if r["task"] == task and r["kind"] == "method"]
        for r in rows:
            color, marker = styles[r["arm"]]
            if not _ok(r):
                continue
            x = r["trainable_params"]
            seed_points(ax, x, r["test"]["values"], color)
            edge = ", grid edge" if r["lr_at_edge"] else ""
            ax.plot([x], [r["test"]["mean"]], marker, color=color, ms=8, mfc="none" if r["lr_at_edge"] else color,
                    label=f"{r['arm']} (lr {r['lr']:g}{edge})")
            if r["arm"] == "full":
                ax.axhline(r["test"]["mean"], **FULL_STYLE, lw=0.8)
                ax.axhspan(r["test"]["mean"] - r["test"]["std"], r["test"]["mean"] + r["test"]["std"],
                           color="black", alpha=0.06)
        none = result["none"][task]
        ax.axhline(none["test"], color="gray", linestyle=":", label=f"no fine-tuning ({none['test']:.3f})")
        ax.axvline(result["budget"][rows[0]["base"]] if rows else 1, color="gray", lw=0.5)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # decades only: minor labels collide on a narrow panel
        ax.set_title(task)
        ax.set_xlabel("trainable parameters (log)")
        ax.set_ylabel(metric_label(rows[0]["metric"] if rows else none["metric"]) + f", {result['reported_on']}")
        ax.margins(y=0.1)
        ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5))
    s = result["settings"]
    fig.suptitle(f"The LoRA family at about equal trainable parameters (thin line: LoRA r={s['budget_rank']}), each at "
                 f"its best lr on validation; {result['reported_on']} mean over {len(s['seeds'])} seeds (dots: "
                 f"each seed; hollow: lr at the grid's edge), {s['steps']} steps", fontsize=10)
    return save_png(fig, path)


def plot_family_lr_grid(result: dict[str, Any], path: str | Path) -> Path:
    """Per task (a row each), left: LoRA's rank × lr grid as a heatmap of the validation metric (seed 0; the best lr
    of each rank boxed, a diverged run blank); right: the validation metric against lr for full fine-tuning and each
    LoRA rank, each best lr marked, so LoRA's best lr can be read against full fine-tuning's."""
    tasks = _tasks(result)
    lrs = result["settings"]["lrs"]
    # one row per task, the heatmap beside the lr curves: the PNG stays readable at a README's width
    fig = new_figure((9, 3.8 * len(tasks)))
    fig.get_layout_engine().set(wspace=0.12)  # the colour bar's label apart from the curves' axis label
    axes = fig.subplots(len(tasks), 2, squeeze=False)
    for row, task in enumerate(tasks):
        top, bottom = axes[row][0], axes[row][1]
        grid = [g for g in result["lr_grid"] if g["task"] == task]
        ranks = sorted({g["rank"] for g in grid if g["kind"] == "rank"})
        metric = result["none"][task]["metric"]
        if not ranks:
            no_data(top, "no rank grid")
        else:
            cells = np.full((len(ranks), len(lrs)), np.nan)
            for g in grid:
                if g["kind"] == "rank" and g["validation"] is not None:
                    cells[ranks.index(g["rank"]), lrs.index(g["lr"])] = g["validation"]
            cmap = "viridis_r" if metric == "bits_per_char" else "viridis"
            image = top.imshow(cells, aspect="auto", cmap=cmap, origin="lower")
            fig.colorbar(image, ax=top, fraction=0.05, label=f"validation {metric_label(metric)}")
            for i, j in np.ndindex(cells.shape):
                if np.isfinite(cells[i, j]):
                    light = sum(image.cmap(image.norm(cells[i, j]))[:3]) > 1.8  # a bright cell gets dark text
                    top.text(j, i, f"{cells[i, j]:.3g}", ha="center", va="center", fontsize=8,
                             color="black" if light else "white")
            for row in (r for r in result["rows"] if r["task"] == task and r["kind"] == "rank" and r["lr"]):
                i, j = ranks.index(row["rank"]), lrs.index(row["lr"])
                top.add_patch(_box(i, j))
            top.set_xticks(range(len(lrs)), [f"{lr:g}" for lr in lrs], fontsize=8, rotation=45)
            top.set_yticks(range(len(ranks)), [str(r) for r in ranks])
            top.set_xlabel("peak learning rate")
            top.set_ylabel("LoRA rank r")
        top.set_title(f"{task}: LoRA rank × lr (boxed: best lr per rank)", fontsize=9)
        curves = [("full", None, "full fine-tuning", FULL_STYLE["color"])]
        curves += [("rank", r, f"LoRA r={r}", f"C{i}") for i, r in enumerate(ranks)]
        for kind, rank, label, color in curves:
            points = sorted((g["lr"], g["validation"]) for g in grid if g["validation"] is not None and (
                (kind == "full" and g["arm"] == "full" and g["kind"] == "method") or
                (kind == "rank" and g["kind"] == "rank" and g["rank"] == rank)))
            if not points:
                continue
            chosen = next((r["lr"] for r in result["rows"] if r["task"] == task and r["rank"] == rank and (
                r["kind"] == kind if kind == "rank" else r["arm"] == "full")), None)
            style = FULL_STYLE if kind == "full" else {"color": color, "linestyle": "-"}
            bottom.plot(*zip(*points), marker="o", ms=3, label=f"{label} (best {chosen:g})" if chosen else label,
                        **style)
            if chosen:
                best = dict(points)[chosen]
                bottom.plot([chosen], [best], "*", ms=12, color=color)
        bottom.set_xscale("log")
        bottom.set_xlabel("peak learning rate (log; stars: best on validation)")
        bottom.set_ylabel(f"validation {metric_label(metric)}")
        bottom.legend(fontsize=8)
    fig.suptitle(f"Learning rate × rank on the validation split (seed 0, {result['settings']['steps']} steps): "
                 "is LoRA's best lr about 10× full fine-tuning's?", fontsize=10)
    return save_png(fig, path)


def _box(i: int, j: int) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", lw=2)


def plot_family_forgetting(result: dict[str, Any], path: str | Path) -> Path:
    """One panel per skill task, one above the other (legend at its right): x = the new skill's test metric, y = mean
    retained test accuracy on the pretraining skills (Biderman et al. 2024: "LoRA learns less and forgets less"); one
    point per method and per LoRA rank (mean over seeds, dots: each seed), LoRA's ranks joined by a line, the base
    model a star.  Dashed: full fine-tuning's and LoRA's seed-0 runs at every lr of the grid, smallest lr labelled:
    the trade-off the lr moves along, so "forgets less" can be read at equal learning."""
    tasks = [t for t in _tasks(result) if result["none"][t]["retained"] is not None]
    styles = _colors(result)
    # one panel a row, its legend at its right: the PNG stays readable at a README's width, every text 8 pt or more
    fig = new_figure((9, 4.6 * max(1, len(tasks))))
    axes = fig.subplots(max(1, len(tasks)), 1, squeeze=False)[:, 0]
    if not tasks:
        no_data(axes[0], "no skill task: nothing to forget")
    for ax, task in zip(axes, tasks):
        rows = [r for r in result["rows"] if r["task"] == task and _ok(r) and r["retained"] is not None]
        for r in (r for r in rows if r["kind"] == "method"):
            color, marker = styles[r["arm"]]
            ax.plot(r["test"]["values"], r["retained"]["values"], ".", color=color, alpha=0.5, ms=5)
            ax.plot([r["test"]["mean"]], [r["retained"]["mean"]], marker, color=color, ms=8, label=r["arm"])
        ranks = sorted((r for r in rows if r["kind"] == "rank"), key=lambda r: r["rank"])
        if ranks:
            ax.plot([r["test"]["mean"] for r in ranks], [r["retained"]["mean"] for r in ranks], "-", color="gray",
                    lw=1, label="LoRA r = " + ", ".join(str(r["rank"]) for r in ranks))
            for r in ranks:
                ax.plot(r["test"]["values"], r["retained"]["values"], ".", color="gray", alpha=0.5, ms=5)
                ax.annotate(f"r={r['rank']}", (r["test"]["mean"], r["retained"]["mean"]), textcoords="offset points",
                            xytext=(4, -11), fontsize=8, color="gray")
        for arm in ("full", "lora"):
            along = [g for g in result["lr_grid"] if g["task"] == task and g["kind"] == "method" and g["arm"] == arm
                    and not g["diverged"] and g["retained"] is not None]
            if along:
                ax.plot([g["test"] for g in along], [g["retained"] for g in along], "--", color=styles[arm][0], lw=0.8,
                        alpha=0.7, marker="o", ms=2.5, label=f"{arm}: each lr (seed 0)")
                first = along[0]
                ax.annotate(f"lr {first['lr']:g}", (first["test"], first["retained"]), textcoords="offset points",
                            xytext=(4, 2), fontsize=8, color=styles[arm][0])
        none = result["none"][task]
        ax.plot([none["test"]], [none["retained"]["mean"]], "*", color="gray", ms=12, label="no fine-tuning")
        ax.set_title(task)
        ax.set_xlabel(f"new skill: {metric_label(none['metric'])}, {result['reported_on']} (learning →)")
        ax.set_ylabel("retained accuracy on the pretraining skills (mean)")
        ax.margins(0.08)
        ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5))
    skills = ", ".join(result["pretrain_skills"])
    fig.suptitle(f"Learning vs forgetting: new-skill metric against accuracy kept on the pretraining skills "
                 f"({skills}); mean over {len(result['settings']['seeds'])} seeds, dots: each seed", fontsize=10)
    return save_png(fig, path)


def draw_family_figures(folder: str | Path = "figures") -> list[Path]:
    """Draw the three family figures from ``lora-family.json`` in ``folder`` (none when it is absent)."""
    folder = Path(folder)
    if not (folder / FAMILY_FILE).is_file():
        return []
    result = read_result(folder / FAMILY_FILE, expected="lora-family", require=("rows", "lr_grid", "none"))
    return [plot_family(result, folder / png_name(FAMILY_FILE)),
            plot_family_lr_grid(result, folder / FAMILY_LR_GRID_PNG),
            plot_family_forgetting(result, folder / FAMILY_FORGETTING_PNG)]
