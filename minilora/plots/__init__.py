"""Figures, drawn from the JSON results that experiments write (so a plot never needs retraining), by family:

    common.py      smoothing, labels, the atomic PNG write, texts kept inside the canvas
    compare.py     full fine-tuning vs LoRA (full-vs-lora.png)
    lora_paper.py  rank sweep, fixed budget, subspace similarity, amplification (lora-*.png)
    intrinsic.py   metric against d, d90 trends, parameter budget (intrinsic-*.png)
    family.py      the LoRA family: metric against parameters, rank × lr grid, learning vs forgetting (lora-family*.png)
    latency.py     inference latency over the base per method, batch and sequence length (latency.png)

File names come from ``minilora.experiments.results``; every file is read with its ``read_result``.
"""

from __future__ import annotations

from pathlib import Path

from minilora.experiments.figures import FIGURE_RUNS
from minilora.experiments.results import (
    COMPARE_FILE,
    FULL_VS_LORA_PNG,
    LATENCY_FILE,
    compare_task_file,
)
from minilora.plots.common import smooth
from minilora.plots.compare import load_compare, plot_compare
from minilora.plots.family import (
    FAMILY_FIGURES,
    draw_family_figures,
    plot_family,
    plot_family_forgetting,
    plot_family_lr_grid,
)
from minilora.plots.intrinsic import (
    INTRINSIC_FIGURES,
    draw_intrinsic_figures,
    plot_budget,
    plot_intrinsic_curves,
    plot_intrinsic_trend,
)
from minilora.plots.latency import draw_latency_figure, plot_latency
from minilora.plots.lora_paper import (
    LORA_PAPER_FIGURES,
    draw_lora_paper_figures,
    plot_amplification,
    plot_lora_budget,
    plot_rank_sweep,
    plot_similarity,
)

__all__ = [
    "FAMILY_FIGURES",
    "FIGURE_RUNS",
    "INTRINSIC_FIGURES",
    "LORA_PAPER_FIGURES",
    "draw_family_figures",
    "draw_figures",
    "draw_intrinsic_figures",
    "draw_latency_figure",
    "draw_lora_paper_figures",
    "load_compare",
    "plot_amplification",
    "plot_budget",
    "plot_compare",
    "plot_family",
    "plot_family_forgetting",
    "plot_family_lr_grid",
    "plot_intrinsic_curves",
    "plot_intrinsic_trend",
    "plot_latency",
    "plot_lora_budget",
    "plot_rank_sweep",
    "plot_similarity",
    "smooth",
]


def draw_figures(folder: str | Path = "figures") -> list[Path]:
    """Redraw every figure from the JSON results in ``folder`` (``compare-<task>.json``, and the
    ``intrinsic-<name>.json``, ``lora-*.json``, ``lora-family.json`` and ``latency.json`` present); returns the PNGs.
    A folder written by ``minilora compare`` (it holds ``compare.json``) gets that run's figure, ``full-vs-lora.png``,
    beside it."""
    folder = Path(folder)
    if (folder / COMPARE_FILE).is_file():
        return [plot_compare([load_compare(folder / COMPARE_FILE)], folder / FULL_VS_LORA_PNG)]
    missing = [task for task, _ in FIGURE_RUNS if not (folder / compare_task_file(task)).is_file()]
    if missing:
        raise ValueError(f"{folder} lacks compare results for {missing}; run `minilora figures "
                         "--rerun` to compute them")
    results = [load_compare(folder / compare_task_file(task)) for task, _ in FIGURE_RUNS]
    return ([plot_compare(results, folder / FULL_VS_LORA_PNG)] + draw_intrinsic_figures(folder)
            + draw_lora_paper_figures(folder) + draw_family_figures(folder)
            + ([draw_latency_figure(folder)] if (folder / LATENCY_FILE).is_file() else []))
