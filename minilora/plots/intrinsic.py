"""The intrinsic-dimension figures: metric against d, d90 trends, and the parameter budget (``intrinsic-*.png``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from minilora.experiments.d90 import describe_trend
from minilora.experiments.results import (
    INTRINSIC_PREFIX,
    intrinsic_file,
    png_name,
    read_result,
)
from minilora.plots.common import new_figure, no_data, save_png

__all__ = [
    "INTRINSIC_FIGURES",
    "draw_intrinsic_figures",
    "plot_budget",
    "plot_intrinsic_curves",
    "plot_intrinsic_trend",
]

INTRINSIC_FIGURES = ("pretrained-vs-random", "noise-floor", "budget", "pretraining", "projections", "said", "width")


def _with_verdict(title: str, result: dict[str, Any], name: str) -> str:
    """The title, and below it the trend against the noise floor (``d90.describe_trend``) or the floor itself, when
    the result has them (results written before the noise floor was measured have neither)."""
    if result.get("trend"):
        return f"{title}\n{describe_trend(name, result['trend'])}"
    floor = result.get("noise_floor")
    if floor and name == "noise-floor":
        ratio = "unknown" if floor["ratio"] is None else f"{floor['ratio']:.2f}x"
        return f"{title}\nnoise floor = max / min d90 across pretraining seeds: {ratio}"
    return title


def _curve_axes(ax: Any, curves: Sequence[dict[str, Any]], metric: str = "accuracy") -> None:
    """Seed-mean metric against d (log axis), bars from the worst to the best seed, each curve's target
    (0.9 × its baseline) dashed and its d90 dotted, in the curve's colour."""
    if not any(c["points"] for c in curves):
        no_data(ax, "no curve measured (every baseline learned nothing)")
        return
    for i, c in enumerate(curves):
        color = f"C{i}"
        pts = c["points"]
        if not pts:  # a baseline that learned nothing: no target, nothing measured
            continue
        d = np.array([p["d"] for p in pts], dtype=float)
        mean = np.array([p["mean"] for p in pts])
        spread = np.array([[p["mean"] - p["min"] for p in pts], [p["max"] - p["mean"] for p in pts]]).clip(0)
        if c["d90"] is not None:
            label = f"{c['name']} (d90 {c['d90']:,.0f})"
        elif not c.get("searched", True):  # a fixed grid that stays below the target: d90 lies above it
            label = f"{c['name']} (d90 > {max(p['d'] for p in pts):,}: grid only)"
        else:
            label = f"{c['name']} (d90 not reached)"
        ax.errorbar(d, mean, yerr=spread, fmt="o-", ms=4, capsize=3, color=color, label=label)
        ax.axhline(c["target"], color=color, linestyle="--", linewidth=0.8)
        if c["d90"] is not None:
            ax.axvline(c["d90"], color=color, linestyle=":", linewidth=0.8)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("subspace dimension d")
    ax.set_ylabel(f"held-out {metric}")
    ax.legend(fontsize=8)


def plot_intrinsic_curves(result: dict[str, Any], path: str | Path, title: str, name: str = "") -> Path:
    """Metric against d for every curve of an intrinsic experiment (projections, pretrained vs random, SAID); the
    trend against the noise floor under the title when the result has one."""
    fig = new_figure((7, 4.5))
    ax = fig.subplots()
    _curve_axes(ax, list(result["curves"].values()))
    ax.set_title(_with_verdict(title, result, name), fontsize=10)
    return save_png(fig, path)


def _d90_axes(ax: Any, xs: Sequence[float], rows: Sequence[dict[str, Any]], xlabel: str, log_x: bool = True,
              floor: dict[str, Any] | None = None) -> None:
    """d90 of the seed-mean curve (line) and of each seed (dots) against ``xs``, d90 logarithmic; the noise floor
    (the band the shipped model's d90 would move in across pretraining seeds) shaded when known."""
    if all(r["d90"] is None and not any(r["d90_per_seed"]) for r in rows):
        no_data(ax, "no model reached 90% of its baseline")
        return
    ax.plot(xs, [r["d90"] if r["d90"] is not None else np.nan for r in rows], "o-" if log_x else "o",
            label="d90 of the seed mean")  # replicas (log_x False) are unordered: no line between them
    for x, r in zip(xs, rows):
        seeds = [v for v in r["d90_per_seed"] if v is not None]
        ax.plot([x] * len(seeds), seeds, "k.", alpha=0.5, label="d90 of one seed" if x == xs[0] else None)
    if floor and floor.get("ratio") is not None:
        ax.axhspan(floor["min"], floor["max"], color="gray", alpha=0.2,
                   label=f"d90 across pretraining seeds ({floor['ratio']:.2f}x)")
    if log_x:
        ax.set_xscale("log")
    else:
        ax.set_xticks(list(xs))
    ax.set_yscale("log", base=2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("d90")
    ax.legend(fontsize=8)


def plot_intrinsic_trend(result: dict[str, Any], path: str | Path, x_key: str, xlabel: str, title: str,
                         name: str = "", log_x: bool = True) -> Path:
    """d90 against ``x_key`` of each row (pretraining step, parameter count, pretraining seed), above the curves it
    comes from (stacked, 9 in wide: README width); the noise floor shaded and the trend against it under the title
    when the result has them."""
    fig = new_figure((9, 8.4))
    top, bottom = fig.subplots(2, 1)
    _d90_axes(top, [r[x_key] for r in result["rows"]], result["rows"], xlabel, log_x, result.get("noise_floor"))
    _curve_axes(bottom, list(result["curves"].values()))
    fig.suptitle(_with_verdict(title, result, name), fontsize=10)
    return save_png(fig, path)


def plot_budget(result: dict[str, Any], path: str | Path) -> Path:
    """Metric against the number of trainable parameters (log x): subspace at every d, LoRA at every rank,
    full fine-tuning, on one task from the same pretrained model; the 90% target as a dashed line."""
    fig = new_figure((7, 4.5))
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
    return save_png(fig, path)


def draw_intrinsic_figures(folder: str | Path = "figures") -> list[Path]:
    """Draw ``intrinsic-<name>.png`` for every ``intrinsic-<name>.json`` in ``folder``; returns the PNGs."""
    folder = Path(folder)
    titles = {"pretrained-vs-random": "reverse-shift: the skills model vs the same GPT from random initialisation",
              "projections": "the skills model on reverse-shift: dense, sparse and Fastfood projections agree",
              "said": "SAID (one learned scale per weight tensor) vs plain subspace training"}
    paths = []
    for name in INTRINSIC_FIGURES:
        source = folder / intrinsic_file(name)
        if not source.is_file():
            continue
        result = read_result(source, expected=INTRINSIC_PREFIX + name)
        png = folder / png_name(intrinsic_file(name))
        if name == "budget":
            paths.append(plot_budget(result, png))
        elif name == "pretraining":
            paths.append(plot_intrinsic_trend(result, png, "step", "pretraining step of the skills recipe",
                                              "d90 on reverse-shift along the skills model's pretraining", name))
        elif name == "width":
            widths = " / ".join(str(r["n_embd"]) for r in result["rows"])
            paths.append(plot_intrinsic_trend(result, png, "parameters", f"model parameters D (n_embd {widths})",
                                              "d90 on reverse-shift against model size (each pretrained to "
                                              "the same criterion)", name))
        elif name == "noise-floor":
            paths.append(plot_intrinsic_trend(result, png, "pretrain_seed", "pretraining seed of the skills recipe",
                                              "d90 on reverse-shift of the skills recipe's pretraining-seed "
                                              "replicas: the noise floor", name, log_x=False))
        else:
            paths.append(plot_intrinsic_curves(result, png, titles[name], name))
    return paths
