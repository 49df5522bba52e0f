"""The d90 table of the intrinsic-dimension experiments (what ``minilora intrinsic`` prints)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from minilora.experiments.d90 import describe_trend

__all__ = ["format_table"]


def _d(value: float | None, unreached: str = "not reached") -> str:
    return unreached if value is None else f"{value:,.0f}"


def format_table(results: Mapping[str, Mapping[str, Any]]) -> str:
    """The d90 of every measured curve as an aligned text table.

    Columns: experiment, curve, seeds, baseline (full fine-tuning's mean metric), target = fraction · baseline,
    d90 of the seed-mean curve (log-d interpolation), the median of the per-seed d90s, the per-seed d90s,
    and the lr chosen at the first d that reached the target.  The toy problem adds one line.  Below the table:
    the noise floor (the spread of d90 across pretraining seeds) and every trend judged against it (``d90.trend``).
    """
    head = ("experiment", "curve", "seeds", "baseline", "target", "d90", "median", "per seed", "lr at hit")
    lines = [head]
    for name, result in results.items():
        if name == "toy":
            for projection, toy_result in result["toy"].items():
                lines.append(("toy (D=1000)", projection, "-", "-", "-", _d(toy_result["d_int"]), "-",
                              f"expected {toy_result['expected']}", "-"))
            continue
        curves = result.get("curves") or {"pretrained": result["subspace"]}
        for curve in curves.values():
            target = curve["target"]
            hits = [p for p in curve["points"] if target is not None and p["mean"] >= target]
            unreached = "not reached"
            if not curve.get("searched", True) and curve["points"]:  # a fixed grid: d90 lies above its largest d
                unreached = f"> {max(p['d'] for p in curve['points']):,} (grid)"
            per_seed = ", ".join(_d(v, unreached) for v in curve["d90_per_seed"])
            d90 = _d(curve["d90"], unreached) + (" (<=)" if curve["d90_bounded"] else "")
            lines.append((name, curve["name"], str(curve["seeds"]), _baseline(curve["baseline"]),
                          "-" if target is None else f"{target:.3f}", d90, _d(curve["d90_median"], unreached), per_seed,
                          f"{hits[0]['lr']:g}" if hits else "-"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    text = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths, strict=True)))
            for line in lines]
    text.insert(1, "-" * len(text[0]))
    return "\n".join(text + _trends(results))


def _baseline(baseline: Mapping[str, Any]) -> str:
    """Full fine-tuning's mean metric, with its range over seeds when they differ (and its chosen lr)."""
    text = f"{baseline['metric']:.3f}"
    low, high = baseline.get("min"), baseline.get("max")
    if low is not None and high is not None and high - low > 5e-4:
        text += f" ({low:.2f}-{high:.2f})"
    return text + (f" @{baseline['lr']:g}" if "lr" in baseline else "")


def _trends(results: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The noise floor and every trend against it, one line each (results written before the floor have none)."""
    lines = []
    floor = next((r["noise_floor"] for r in results.values() if r.get("noise_floor")), None)
    if floor is not None:
        d90s = ", ".join(f"seed {k}: {_d(v)}" for k, v in floor["d90s"].items())
        ratio = "unknown" if floor["ratio"] is None else f"{floor['ratio']:.2f}x"
        lines += ["", f"noise floor (max/min d90 across pretraining seeds {d90s}): {ratio}"]
    lines += [describe_trend(name, r["trend"]) for name, r in results.items() if r.get("trend")]
    return lines
