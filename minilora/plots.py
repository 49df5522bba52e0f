"""Figures, drawn from the JSON results that experiments write (so a plot never needs retraining)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

__all__ = ["FIGURE_RUNS", "load_compare", "plot_compare", "draw_figures", "smooth", "INTRINSIC_FIGURES",
           "plot_intrinsic_curves", "plot_intrinsic_trend", "plot_budget", "draw_intrinsic_figures",
           "LORA_PAPER_FIGURES", "plot_rank_sweep", "plot_lora_budget", "plot_similarity", "plot_amplification",
           "draw_lora_paper_figures"]

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
        losses = group[0]["losses"] if len(group) == 1 else np.mean([g["losses"][:steps] for g in group], axis=0).tolist()
        merged.append({**group[0], "metric_value": float(np.mean(values)), "losses": losses, "seed_values": values,
                       "metric_std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0})
    return merged


def plot_compare(results: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """One column per task: the held-out metric against LoRA rank (full fine-tuning as a dashed line),
    and below it the training loss of every run (smoothed over 5% of the steps).  With several seeds, the
    points are means over seeds, bars ± std, dots each seed (band ± std for full), losses seed means.  Writes a PNG."""
    from matplotlib.figure import Figure  # no pyplot: the caller's plotting backend is left alone

    fig = Figure(figsize=(4 * len(results), 7))
    axes = fig.subplots(2, len(results), squeeze=False)
    for column, result in enumerate(results):
        rows, task = _mean_over_seeds(result["rows"]), result["settings"]["task"]
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
    """Redraw every figure from the JSON results in ``folder`` (``compare-<task>.json``, and the
    ``intrinsic-<name>.json`` and ``lora-*.json`` present); returns the PNGs.  A folder written by
    ``minilora compare`` (it holds ``compare.json``) gets that run's figure, ``full-vs-lora.png``, beside it."""
    folder = Path(folder)
    if (folder / "compare.json").is_file():
        return [plot_compare([load_compare(folder / "compare.json")], folder / "full-vs-lora.png")]
    missing = [task for task, _ in FIGURE_RUNS if not (folder / f"compare-{task}.json").is_file()]
    if missing:
        raise ValueError(f"{folder} lacks compare results for {missing}; run `minilora figures --rerun` to compute them")
    results = [load_compare(folder / f"compare-{task}.json") for task, _ in FIGURE_RUNS]
    return ([plot_compare(results, folder / "full-vs-lora.png")] + draw_intrinsic_figures(folder)
            + draw_lora_paper_figures(folder))


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


# ------------------------------------------------------------------------------- the LoRA paper's analyses

LORA_PAPER_FIGURES = ("lora-rank-sweep", "lora-budget", "lora-similarity", "lora-amplification")


def _metric_label(metric: str) -> str:
    return metric.replace("_", " ") + (" (lower is better)" if metric == "bits_per_char" else "")


def _seed_points(ax: Any, x: float, values: Sequence[float], color: str, label: str | None = None) -> None:
    """Every seed's value as a small dot at ``x``."""
    ax.plot([x] * len(values), values, ".", color=color, alpha=0.5, ms=5, label=label)


def plot_rank_sweep(result: dict[str, Any], path: str | Path) -> Path:
    """One panel per task: the held-out metric against LoRA rank r (log axis) for s = α/r and s = α/√r, mean ± std
    over seeds (bars) and every seed (dots); full fine-tuning (dashed, band ± std) and the base model (dotted)."""
    from matplotlib.figure import Figure

    rows = result["rows"]
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    fig = Figure(figsize=(4.6 * len(tasks), 4.4))
    axes = fig.subplots(1, len(tasks), squeeze=False)[0]
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
                _seed_points(ax, x, r["values"], f"C{i}")
        for method, style in (("full", {"color": "black", "linestyle": "--"}), ("none", {"color": "gray", "linestyle": ":"})):
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
        ax.set_ylabel(_metric_label(mine[0]["metric"]))
        ax.legend(fontsize=7)
    n = len(result["settings"]["seeds"])
    fig.suptitle(f"Does a tiny rank suffice? Held-out metric against rank, mean ± std over {n} seeds (dots: each seed), "
                 f"{result['settings']['steps']} steps", fontsize=10)
    fig.tight_layout()
    return _save_png(fig, path)


def plot_lora_budget(result: dict[str, Any], path: str | Path) -> Path:
    """One panel per task: bars of the held-out metric (mean over seeds, ± std) when the same number of LoRA
    parameters is spent on different weight types; dots are the seeds, labels the rank and exact count."""
    from matplotlib.figure import Figure

    rows = result["rows"]
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    fig = Figure(figsize=(5.5 * len(tasks), 4.8))
    axes = fig.subplots(1, len(tasks), squeeze=False)[0]
    for ax, task in zip(axes, tasks):
        mine = [r for r in rows if r["task"] == task]
        x = np.arange(len(mine))
        ax.bar(x, [r["mean"] for r in mine], yerr=[r["std"] for r in mine], capsize=3, color="C0", alpha=0.7)
        for xi, r in zip(x, mine):
            _seed_points(ax, xi, r["values"], "black")
            ax.annotate(f"r={r['rank']}\n{r['trainable_params']:,}", (xi, r["mean"]), textcoords="offset points",
                        xytext=(0, 4), ha="center", va="bottom", fontsize=7)
        ax.set_xticks(x, [r["group"] for r in mine], rotation=35, ha="right", fontsize=8)
        ax.set_ylabel(_metric_label(mine[0]["metric"]))
        ax.set_ylim(0, max(1.0, max(r["max"] for r in mine)) * 1.15)
        ax.set_title(f"{task}: budget {mine[0]['budget']:,} parameters")
    n = len(result["settings"]["seeds"])
    fig.suptitle(f"Which weights to adapt under a fixed budget: mean ± std over {n} seeds\n(dots: each seed; "
                 f"labels: rank, exact parameter count)", fontsize=10)
    fig.tight_layout()
    return _save_png(fig, path)


def _phi_axes(fig: Any, ax: Any, block: dict[str, Any], title: str, xlabel: str, ylabel: str) -> None:
    """A heatmap of the seed-mean φ(i, j); cells not above chance max(i, j)/k carry a white dot."""
    from matplotlib.ticker import MaxNLocator

    phi, chance = np.asarray(block["mean"]), np.asarray(block["chance"])
    image = ax.imshow(phi, vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto", origin="upper",
                      extent=(0.5, phi.shape[1] + 0.5, phi.shape[0] + 0.5, 0.5))
    below = np.argwhere(phi <= chance)
    ax.plot(below[:, 1] + 1, below[:, 0] + 1, "w.", ms=3)
    colorbar = fig.colorbar(image, ax=ax, fraction=0.046)
    colorbar.ax.axhline(chance[0, 0], color="white", linewidth=2)
    top = block["top_n"]
    ax.set_title(f"{title}\nφ({top['size']},{top['size']}) = {top['mean']:.2f} ± {top['std']:.2f} (chance {top['chance']:.2f})",
                 fontsize=8)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)


def plot_similarity(result: dict[str, Any], path: str | Path) -> Path:
    """The LoRA paper's Figures 3–4: heatmaps of φ(i, j), mean over seeds, for each analysed module: across ranks
    (r = small vs large, same seed) and across seeds (two seeds at the small rank), for A (the paper) and for
    ΔW = s·B A.  White dots: cells at or below the chance level max(i, j)/k (white line on the colour bar: 1/k)."""
    from matplotlib.figure import Figure

    s = result["settings"]
    modules = result["modules"]
    fig = Figure(figsize=(17, 3.6 * len(modules)))
    axes = fig.subplots(len(modules), 4, squeeze=False, gridspec_kw={"width_ratios": [3, 1.3, 3, 1.3]})
    small, large = s["small_rank"], s["large_rank"]
    for row, (name, entry) in zip(axes, modules.items()):
        for col, which in ((0, "A"), (2, "delta_w")):
            label = "A" if which == "A" else "ΔW"
            _phi_axes(fig, row[col], entry[which]["across_ranks"], f"{entry['path']}: {label}, r={small} vs r={large}",
                      f"j (top directions of r={large})", f"i (r={small})")
            _phi_axes(fig, row[col + 1], entry[which]["across_seeds"], f"{label}, r={small}: two seeds",
                      "j (seed b)", "i (seed a)")
    fig.suptitle(f"Subspace similarity φ(i, j) = ‖U_iᵀ U_j‖²_F / min(i, j) of the learned LoRA updates on {s['task']} "
                 f"(mean over {len(s['seeds'])} seeds or seed pairs; white dots: not above chance max(i, j)/k)",
                 fontsize=10)
    fig.tight_layout()
    return _save_png(fig, path)


def plot_amplification(result: dict[str, Any], path: str | Path) -> Path:
    """The LoRA paper's Table 7 as a figure: ‖UᵀWV‖_F for U, V the top-r directions of ΔW, of W and of a random
    matrix, ‖W‖_F, ‖ΔW‖_F and the amplification factor ‖ΔW‖_F / ‖UᵀWV‖_F (mean ± std over seeds)."""
    from matplotlib.figure import Figure

    head = ["module", "r", "‖UᵀWV‖ ΔW", "‖UᵀWV‖ W", "‖UᵀWV‖ random", "‖W‖_F", "‖ΔW‖_F", "‖ΔW‖/‖UᵀWV‖"]
    cells = []
    for r in result["amplification"]:
        pm = lambda v: f"{v['mean']:.3g} ± {v['std']:.2g}"  # noqa: E731
        cells.append([r["path"], str(r["rank"]), pm(r["proj_delta"]), f"{r['proj_w_top']:.3g}", pm(r["proj_random"]),
                      f"{r['w_norm']:.3g}", pm(r["delta_norm"]), pm(r["factor"])])
    fig = Figure(figsize=(12, 0.6 + 0.4 * (len(cells) + 2)))
    ax = fig.subplots()
    ax.axis("off")
    table = ax.table(cellText=cells, colLabels=head, loc="center", cellLoc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(9)
    table.scale(1, 1.4)
    s = result["settings"]
    ax.set_title(f"Does ΔW amplify directions W does not emphasise? {s['task']}, mean ± std over {len(s['seeds'])} "
                 f"seeds (U, V: top-r singular directions; paper, GPT-3 W_q at r = 4: factor ≈ 21.5)", fontsize=9)
    fig.tight_layout()
    return _save_png(fig, path)


def draw_lora_paper_figures(folder: str | Path = "figures") -> list[Path]:
    """Draw the LoRA-paper figures for the ``lora-*.json`` present in ``folder`` (written by ``minilora lora-paper``):
    lora-rank-sweep.png, lora-budget.png, lora-similarity.png and lora-amplification.png; returns the PNGs."""
    folder = Path(folder)
    drawers = {"lora-rank-sweep": [(plot_rank_sweep, "lora-rank-sweep")],
               "lora-budget": [(plot_lora_budget, "lora-budget")],
               "lora-similarity": [(plot_similarity, "lora-similarity"), (plot_amplification, "lora-amplification")]}
    paths = []
    for name, draws in drawers.items():
        source = folder / f"{name}.json"
        if not source.is_file():
            continue
        try:
            result = json.loads(source.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"cannot read LoRA-paper results from {source}: {err}") from None
        paths += [draw(result, folder / f"{png}.png") for draw, png in draws]
    return paths
