"""The compare figure: full fine-tuning vs LoRA, a metric and a loss panel per task (``full-vs-lora.png``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from minilora.experiments.compare import per_rank
from minilora.experiments.methods import METHODS
from minilora.experiments.results import COMPARE_FILE, read_result
from minilora.plots.common import metric_label, save_png, smooth, wrapped_panels

__all__ = ["load_compare", "plot_compare"]

_FULL_STYLE = {"color": "black", "linestyle": "--"}


def load_compare(path: str | Path) -> dict[str, Any]:
    """A ``compare.json`` written by ``minilora compare``: {"settings": ..., "rows": [...]} (one-line ValueError
    for a missing, corrupt or other file)."""
    result = read_result(path, expected="compare", require=("settings", "rows"))
    if not result["rows"]:
        raise ValueError(f"{path} is a {COMPARE_FILE} without rows")
    return result


def _mean_over_seeds(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """``compare`` rows grouped by (method, rank): one row each whose ``metric_value`` and ``losses`` are the means
    over its seeds, with ``seed_values`` (every seed's metric) and ``metric_std`` (their sample std); the row of a
    single seed keeps its values."""
    groups: dict[tuple[str, Any], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["method"], r["rank"]), []).append(r)
    merged = []
    for group in groups.values():
        values = [g["metric_value"] for g in group]
        steps = min(len(g["losses"]) for g in group)
        losses = group[0]["losses"] if len(group) == 1 else np.mean([g["losses"][:steps] for g in group],
                                                                    axis=0).tolist()
        merged.append({**group[0], "metric_value": float(np.mean(values)), "losses": losses, "seed_values": values,
                       "metric_std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0})
    return merged


def _draw_other_methods(ax: Any, rows: Sequence[dict[str, Any]]) -> None:
    """The rows of ``compare --methods`` on the metric-vs-rank axes: a LoRA variant run at every rank (DoRA,
    LoRA-FA, ...) as a line of its own, a method run once (VeRA, adapter, prefix) as a dotted level labelled with
    its share of weights trained."""
    others = [r for r in rows if r["method"] not in ("full", "lora")]
    for color, method in enumerate(dict.fromkeys(r["method"] for r in others), start=1):
        group = [r for r in others if r["method"] == method]
        if method in METHODS and per_rank(method):
            group.sort(key=lambda r: r["rank"])
            ax.plot([r["rank"] for r in group], [r["metric_value"] for r in group], ".-", color=f"C{color}",
                    label=method, alpha=0.8)
        else:
            ax.axhline(group[0]["metric_value"], color=f"C{color}", linestyle=":",
                       label=f"{method} ({group[0]['trainable_pct']:.1f}%)")


def plot_compare(results: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Per task (two side by side, more tasks below): the held-out metric against LoRA rank (full fine-tuning as a
    dashed line; the ``--methods`` of ``compare``: each LoRA variant a line, each method run once a dotted level),
    and below it the training loss of full fine-tuning and LoRA (smoothed over 5% of the steps).  With several
    seeds, the points are means over seeds, bars ± std, dots each seed (band ± std for full), losses seed means.
    Writes a PNG."""
    fig, panels = wrapped_panels(len(results), (4.5, 7), stacked=2)  # per task: the metric above the loss
    for (top, bottom), result in zip(panels, results, strict=True):
        rows, task = _mean_over_seeds(result["rows"]), result["settings"]["task"]
        full = [r for r in rows if r["method"] == "full"]
        lora = sorted((r for r in rows if r["method"] == "lora"), key=lambda r: r["rank"])
        metric = rows[0]["metric"]
        top.plot([r["rank"] for r in lora], [r["metric_value"] for r in lora], "o-", label="LoRA")
        _draw_other_methods(top, rows)
        for r in lora:
            top.annotate(f"{r['trainable_pct']:.1f}%", (r["rank"], r["metric_value"]), textcoords="offset points",
                         xytext=(0, 6), ha="center", fontsize=8)
        if full:
            top.axhline(full[0]["metric_value"], label="full fine-tuning (100%)", **_FULL_STYLE)
        for r in [r for r in full + lora if len(r["seed_values"]) > 1]:
            low, high = r["metric_value"] - r["metric_std"], r["metric_value"] + r["metric_std"]
            if r["method"] == "full":
                top.axhspan(low, high, color="black", alpha=0.08)
            else:
                top.errorbar([r["rank"]], [r["metric_value"]], yerr=[r["metric_std"]], color="C0", capsize=3)
                top.plot([r["rank"]] * len(r["seed_values"]), r["seed_values"], ".", color="C0", alpha=0.5)
        top.set_xscale("log", base=2)
        top.set_xticks([r["rank"] for r in lora], [str(r["rank"]) for r in lora])
        top.margins(y=0.15)  # room for the labels above the points
        top.set_title(task)
        top.set_xlabel("LoRA rank r (labels: % of weights trained)")
        top.set_ylabel(metric_label(metric))
        top.legend(fontsize=8)
        for r in full + lora:
            window = max(1, len(r["losses"]) // 20)
            label = "full" if r["method"] == "full" else f"LoRA r={r['rank']}"
            style = _FULL_STYLE if r["method"] == "full" else {}
            bottom.plot(smooth(r["losses"], window), label=label, **style)
        if max(max(r["losses"]) for r in rows) > 10 * min(min(r["losses"]) for r in rows):
            bottom.set_yscale("log")
        bottom.set_xlabel("step")
        bottom.set_ylabel("training loss")
        bottom.legend(fontsize=8)
    fig.suptitle("Full fine-tuning vs LoRA from the same pretrained model, same budget")
    return save_png(fig, path)
