"""The latency figure (``latency.png``): the LoRA paper's Table 1 as bars, drawn from ``latency.json``.

One panel per sequence length; per batch size a group of bars, one per variant: the overhead of one forward pass
over the base model, 100 · (t / t_base − 1) %, the median of the per-round ratios, with error bars from its first
to its third quartile.  The base model's median milliseconds are written under each group.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from minilora.experiments.results import LATENCY_FILE, LATENCY_PNG, read_result
from minilora.plots.common import new_figure, save_png

__all__ = ["draw_latency_figure", "load_latency", "plot_latency"]

_COLORS = {"lora-merged": "tab:green", "lora-unmerged": "tab:olive", "adapter-houlsby": "tab:red",
           "adapter-lin": "tab:orange", "prefix": "tab:purple"}


def load_latency(path: str | Path) -> dict[str, Any]:
    """A ``latency.json`` written by ``minilora latency`` (one-line ValueError for a missing or other file)."""
    return read_result(path, expected="latency", require=("settings", "rows"))


def plot_latency(result: dict[str, Any], path: str | Path) -> Path:
    """Overhead over the base per variant, batch size and sequence length (median and IQR of paired ratios)."""
    rows = result["rows"]
    seq_lens = list(dict.fromkeys(r["seq_len"] for r in rows))
    batches = list(dict.fromkeys(r["batch"] for r in rows))
    variants = [v for v in dict.fromkeys(r["variant"] for r in rows) if v != "base"]
    by = {(r["variant"], r["batch"], r["seq_len"]): r for r in rows}
    fig = new_figure((min(9.0, 4.5 * len(seq_lens)), 4.6))  # at most 9 in: README width
    axes = fig.subplots(1, len(seq_lens), sharey=True, squeeze=False)[0]
    width = 0.8 / len(variants)
    for ax, t in zip(axes, seq_lens, strict=True):
        x = np.arange(len(batches))
        for i, variant in enumerate(variants):
            cells = [by[(variant, b, t)] for b in batches]
            mid = np.array([c["paired_overhead_pct"] for c in cells])
            err = np.array([[m - c["paired_overhead_q1"] for m, c in zip(mid, cells, strict=True)],
                            [c["paired_overhead_q3"] - m for m, c in zip(mid, cells, strict=True)]])
            ax.bar(x + (i - (len(variants) - 1) / 2) * width, mid, width, yerr=np.maximum(err, 0), capsize=2,
                   color=_COLORS.get(variant, None), label=variant)
        ax.axhline(0, color="black", lw=0.8)
        ax.set_xticks(x, [f"batch {b}\nbase {by[('base', b, t)]['median_ms']:.1f} ms" for b in batches])
        ax.set_title(f"sequence length {t}")
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("forward-pass latency over the base (%)")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=len(variants),
               fontsize=8)  # below the panels: inside one it covered bars
    settings = result["settings"]
    fig.suptitle(f"inference latency, {settings['model']} GPT, {settings['repeats']} rounds, 1 BLAS thread "
                 f"(median, IQR)", fontsize=10)
    return save_png(fig, path)


def draw_latency_figure(folder: str | Path) -> Path:
    """``folder/latency.png`` from ``folder/latency.json``."""
    folder = Path(folder)
    return plot_latency(load_latency(folder / LATENCY_FILE), folder / LATENCY_PNG)
