"""Figures, drawn from the JSON results that experiments write (so a plot never needs retraining)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

__all__ = ["FIGURE_RUNS", "load_compare", "plot_compare", "draw_figures", "smooth", "INTRINSIC_FIGURES",
           "plot_intrinsic_curves", "plot_intrinsic_trend", "plot_budget", "draw_intrinsic_figures"]

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
    return [plot_compare(results, folder / "full-vs-lora.png")] + draw_intrinsic_figures(folder)


# ------------------------------------------------------------------------------- intrinsic dimension (d90)

INTRINSIC_FIGURES = ("pretrained-vs-random", "budget", "pretraining", "projections", "said", "width")


def _save_png(fig: Any, path: str | Path) -> Path:
    """Write ``fig`` to ``path`` atomically (temporary file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    tmp.replace(path)
    return path


def _curve_axes(ax: Any, curves: Sequence[dict[str, Any]], metric: str = "accuracy") -> None:
    """Seed-mean metric against d (log axis), bars from the worst to the best seed, each curve's target
    (0.9 × its baseline) dashed and its d90 dotted, in the curve's colour."""
    if not any(c["points"] for c in curves):
        _no_data(ax, "no curve measured (every baseline learned nothing)")
        return
    for i, c in enumerate(curves):
        color = f"C{i}"
        pts = c["points"]
        if not pts:  # a baseline that learned nothing: no target, nothing measured
            continue
        d = np.array([p["d"] for p in pts], dtype=float)
        mean = np.array([p["mean"] for p in pts])
        spread = np.array([[p["mean"] - p["min"] for p in pts], [p["max"] - p["mean"] for p in pts]]).clip(0)
        label = f"{c['name']} (d90 {c['d90']:,.0f})" if c["d90"] is not None else f"{c['name']} (d90 not reached)"
        ax.errorbar(d, mean, yerr=spread, fmt="o-", ms=4, capsize=3, color=color, label=label)
        ax.axhline(c["target"], color=color, linestyle="--", linewidth=0.8)
        if c["d90"] is not None:
            ax.axvline(c["d90"], color=color, linestyle=":", linewidth=0.8)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("subspace dimension d")
    ax.set_ylabel(f"held-out {metric}")
    ax.legend(fontsize=8)


def _no_data(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)


def plot_intrinsic_curves(result: dict[str, Any], path: str | Path, title: str) -> Path:
    """Metric against d for every curve of an intrinsic experiment (projections, pretrained vs random, SAID)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    _curve_axes(ax, list(result["curves"].values()))
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return _save_png(fig, path)


def _d90_axes(ax: Any, xs: Sequence[float], rows: Sequence[dict[str, Any]], xlabel: str) -> None:
    """d90 of the seed-mean curve (line) and of each seed (dots) against ``xs``, both axes logarithmic."""
    if all(r["d90"] is None and not any(r["d90_per_seed"]) for r in rows):
        _no_data(ax, "no model reached 90% of its baseline")
        return
    ax.plot(xs, [r["d90"] if r["d90"] is not None else np.nan for r in rows], "o-", label="d90 of the seed mean")
    for x, r in zip(xs, rows):
        seeds = [v for v in r["d90_per_seed"] if v is not None]
        ax.plot([x] * len(seeds), seeds, "k.", alpha=0.5, label="d90 of one seed" if x == xs[0] else None)
    ax.set_xscale("log")
    ax.set_yscale("log", base=2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("d90")
    ax.legend(fontsize=8)


def plot_intrinsic_trend(result: dict[str, Any], path: str | Path, x_key: str, xlabel: str, title: str) -> Path:
    """d90 against ``x_key`` of each row (pretraining step, parameter count), beside the curves it comes from."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 4.5))
    left, right = fig.subplots(1, 2)
    _d90_axes(left, [r[x_key] for r in result["rows"]], result["rows"], xlabel)
    _curve_axes(right, list(result["curves"].values()))
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save_png(fig, path)


def plot_budget(result: dict[str, Any], path: str | Path) -> Path:
    """Metric against the number of trainable parameters (log x): subspace at every d, LoRA at every rank,
    full fine-tuning, on one task from the same pretrained model; the 90% target as a dashed line."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    sub = result["subspace"]["points"]
    ax.errorbar([p["trainable"] for p in sub], [p["mean"] for p in sub], fmt="o-", ms=4, capsize=3,
                yerr=np.array([[p["mean"] - p["min"] for p in sub], [p["max"] - p["mean"] for p in sub]]).clip(0),
                label="subspace θ0 + P z (trainable = d)")
    lora = result["lora"]
    ax.errorbar([r["trainable"] for r in lora], [r["mean"] for r in lora], fmt="s-", ms=5, capsize=3,
                yerr=np.array([[r["mean"] - r["min"] for r in lora], [r["max"] - r["mean"] for r in lora]]).clip(0),
                label="LoRA (trainable = Σ r(d + k))")
    for r in lora:
        ax.annotate(f"r={r['rank']}", (r["trainable"], r["mean"]), textcoords="offset points", xytext=(0, -12),
                    ha="center", fontsize=8)
    full = result["full"]
    ax.plot([full["D"]], [full["metric"]], "k*", ms=12, label="full fine-tuning (trainable = D)")
    ax.axhline(result["target"], color="gray", linestyle="--", label="90% of full fine-tuning")
    ax.set_xscale("log")
    ax.set_xlabel("trainable parameters")
    ax.set_ylabel("held-out accuracy")
    ax.set_title("reverse-shift from the skills model: metric against trainable parameters", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save_png(fig, path)


def draw_intrinsic_figures(folder: str | Path = "figures") -> list[Path]:
    """Draw ``intrinsic-<name>.png`` for every ``intrinsic-<name>.json`` in ``folder``; returns the PNGs."""
    folder = Path(folder)
    titles = {"pretrained-vs-random": "reverse-shift: the skills model vs the same GPT from random initialisation",
              "projections": "the skills model on reverse-shift: dense, sparse and Fastfood projections agree",
              "said": "SAID (one learned scale per weight tensor) vs plain subspace training"}
    paths = []
    for name in INTRINSIC_FIGURES:
        source = folder / f"intrinsic-{name}.json"
        if not source.is_file():
            continue
        try:
            result = json.loads(source.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"cannot read intrinsic results from {source}: {err}") from None
        png = folder / f"intrinsic-{name}.png"
        if name == "budget":
            paths.append(plot_budget(result, png))
        elif name == "pretraining":
            paths.append(plot_intrinsic_trend(result, png, "step", "pretraining step of the skills recipe",
                                              "d90 on reverse-shift along the skills model's pretraining"))
        elif name == "width":
            widths = " / ".join(str(r["n_embd"]) for r in result["rows"])
            paths.append(plot_intrinsic_trend(result, png, "parameters", f"model parameters D (n_embd {widths})",
                                              "d90 on reverse-shift against model size (same pretraining recipe)"))
        else:
            paths.append(plot_intrinsic_curves(result, png, titles[name]))
    return paths
