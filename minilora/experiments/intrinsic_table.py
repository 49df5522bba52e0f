"""The d90 table of the intrinsic-dimension experiments (what ``minilora intrinsic`` prints)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["format_table"]


def _d(value: float | None, unreached: str = "not reached") -> str:
    return unreached if value is None else f"{value:,.0f}"


def format_table(results: Mapping[str, Mapping[str, Any]]) -> str:
    """The d90 of every measured curve as an aligned text table.

    Columns: experiment, curve, seeds, baseline (full fine-tuning's mean metric), target = fraction · baseline,
    d90 of the seed-mean curve (log-d interpolation), the median of the per-seed d90s, the per-seed d90s,
    and the lr chosen at the first d that reached the target.  The toy problem adds one line.
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
            lines.append((name, curve["name"], str(curve["seeds"]), f"{curve['baseline']['metric']:.3f}",
                          "-" if target is None else f"{target:.3f}", d90, _d(curve["d90_median"], unreached), per_seed,
                          f"{hits[0]['lr']:g}" if hits else "-"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    text = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths, strict=True)))
            for line in lines]
    text.insert(1, "-" * len(text[0]))
    return "\n".join(text)
