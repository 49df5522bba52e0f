"""Figures, drawn from the JSON results that experiments write (so a plot never needs retraining)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

__all__ = ["FIGURE_RUNS", "load_compare", "plot_compare", "draw_figures", "smooth"]

# The compare runs behind figures/full-vs-lora.png: (task, pretrained base), one column each.
FIGURE_RUNS = (("reverse-shift", "skills"), ("subtract", "skills"), ("sort", "skills"), ("first-names", "names"))

_FULL_STYLE = {"color": "black", "linestyle": "--"}


def load_compare(path: str | Path) -> dict[str, Any]:
    """A ``compare.json`` written by ``minilora compare``: {"settings": ..., "rows": [...]}."""
    path = Path(path)
    try:
        result = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"cannot read compare results from {path}: {err}") from None
    if result.get("experiment") != "compare" or not result.get("rows"):
        raise ValueError(f"{path} is not a `minilora compare` result (expected experiment 'compare' with rows)")
    return result


def smooth(values: Sequence[float], window: int) -> np.ndarray:
    """Moving average over ``window`` steps: s_t = mean(v_{t-w+1..t}) (shorter at the start)."""
    v = np.asarray(values, dtype=np.float64)
    csum = np.cumsum(np.insert(v, 0, 0.0))
    starts = np.maximum(np.arange(1, v.size + 1) - window, 0)
    return (csum[1:] - csum[starts]) / (np.arange(1, v.size + 1) - starts)


def plot_compare(results: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """One column per task: the held-out metric against LoRA rank (full fine-tuning as a dashed line),
    and below it the training loss of every run (smoothed over 5% of the steps).  Writes a PNG."""
    from matplotlib.figure import Figure  # no pyplot: the caller's plotting backend is left alone

    fig = Figure(figsize=(4 * len(results), 7))
    axes = fig.subplots(2, len(results), squeeze=False)
    for column, result in enumerate(results):
        rows, task = result["rows"], result["settings"]["task"]
        full = [r for r in rows if r["method"] == "full"]
        lora = sorted((r for r in rows if r["method"] == "lora"), key=lambda r: r["rank"])
        metric = rows[0]["metric"]
        top, bottom = axes[0][column], axes[1][column]
        top.plot([r["rank"] for r in lora], [r["metric_value"] for r in lora], "o-", label="LoRA")
        for r in lora:
            top.annotate(f"{r['trainable_pct']:.1f}%", (r["rank"], r["metric_value"]), textcoords="offset points",
                         xytext=(0, 6), ha="center", fontsize=8)
        if full:
            top.axhline(full[0]["metric_value"], label="full fine-tuning (100%)", **_FULL_STYLE)
        top.set_xscale("log", base=2)
        top.set_xticks([r["rank"] for r in lora], [str(r["rank"]) for r in lora])
        top.margins(y=0.15)  # room for the labels above the points
        top.set_title(task)
        top.set_xlabel("LoRA rank r (labels: % of weights trained)")
        top.set_ylabel(metric.replace("_", " ") + (" (lower is better)" if metric == "bits_per_char" else ""))
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
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    tmp.replace(path)  # atomic: a crash never leaves half a PNG
    return path


def draw_figures(folder: str | Path = "figures") -> list[Path]:
    """Redraw every figure from the JSON results in ``folder`` (``compare-<task>.json``); returns the PNGs.
    A folder written by ``minilora compare`` (it holds ``compare.json``) gets that run's figure,
    ``full-vs-lora.png``, beside it."""
    folder = Path(folder)
    if (folder / "compare.json").is_file():
        return [plot_compare([load_compare(folder / "compare.json")], folder / "full-vs-lora.png")]
    missing = [task for task, _ in FIGURE_RUNS if not (folder / f"compare-{task}.json").is_file()]
    if missing:
        raise ValueError(f"{folder} lacks compare results for {missing}; run `minilora figures --rerun` to compute them")
    results = [load_compare(folder / f"compare-{task}.json") for task, _ in FIGURE_RUNS]
    return [plot_compare(results, folder / "full-vs-lora.png")]
