"""What every figure shares: smoothing, labels, an atomic PNG write, and the check that nothing leaves the canvas."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["fit_texts", "metric_label", "new_figure", "no_data", "outside_canvas", "save_png", "seed_points", "smooth",
           "wrapped_panels"]


def new_figure(figsize: tuple[float, float]) -> Any:
    """A matplotlib ``Figure`` laid out by the constrained layout engine, which keeps titles, labels and legends
    inside the canvas (no pyplot: the caller's plotting backend is left alone)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)  # a canvas that can measure text (fit_texts, outside_canvas)
    return fig


def wrapped_panels(count: int, panel_size: tuple[float, float], stacked: int = 1, columns: int = 2
                   ) -> tuple[Any, list[list[Any]]]:
    """A figure of ``count`` panels, at most ``columns`` side by side and the rest wrapped below (the PNG stays
    readable at a README's width); a panel is ``stacked`` axes one above the other, ``panel_size`` (width, height)
    inches in all.  Slots past ``count`` in the last row are removed.
    Returns (figure, each panel's axes, top first)."""
    columns = min(columns, count)
    bands = -(-count // columns)
    fig = new_figure((panel_size[0] * columns, panel_size[1] * bands))
    axes = fig.subplots(stacked * bands, columns, squeeze=False)
    panels = [[axes[stacked * band + k][column] for k in range(stacked)]
              for band in range(bands) for column in range(columns)]
    for spare in panels[count:]:  # an odd count of panels leaves the last slot empty
        for ax in spare:
            ax.remove()
    return fig, panels[:count]


def smooth(values: Sequence[float], window: int) -> np.ndarray:
    """Moving average over ``window`` steps: s_t = mean(v_{t-w+1..t}) (shorter at the start)."""
    v = np.asarray(values, dtype=np.float64)
    csum = np.cumsum(np.insert(v, 0, 0.0))
    starts = np.maximum(np.arange(1, v.size + 1) - window, 0)
    return (csum[1:] - csum[starts]) / (np.arange(1, v.size + 1) - starts)


def save_png(fig: Any, path: str | Path) -> Path:
    """Write ``fig`` to ``path`` atomically (temporary file, then rename), its texts first fitted to the canvas."""
    path = Path(path)
    fit_texts(fig)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    try:
        fig.savefig(tmp, dpi=110)
        tmp.replace(path)  # atomic: a crash never leaves half a PNG
    except OSError as err:
        raise ValueError(f"cannot write {path}: {err.strerror or err}") from None
    return path


def metric_label(metric: str) -> str:
    """An axis label for a task metric: "bits per char (lower is better)", "accuracy"."""
    return metric.replace("_", " ") + (" (lower is better)" if metric == "bits_per_char" else "")


def no_data(ax: Any, text: str) -> None:
    """``text`` in the middle of an empty panel."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)


def seed_points(ax: Any, x: float, values: Sequence[float], color: str, label: str | None = None) -> None:
    """Every seed's value as a small dot at ``x``."""
    ax.plot([x] * len(values), values, ".", color=color, alpha=0.5, ms=5, label=label)




def _renderer(fig: Any) -> Any:
    """Lay ``fig`` out and return a renderer that measures its texts (an Agg canvas is attached if it has none)."""
    if not hasattr(fig.canvas, "get_renderer"):
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        FigureCanvasAgg(fig)
    fig.draw_without_rendering()
    return fig.canvas.get_renderer()


def _texts(fig: Any) -> list[Any]:
    """The visible texts of ``fig`` except tick labels (matplotlib keeps labels of undrawn ticks: the axes' tight
    boxes stand for the drawn ones, see ``outside_canvas``)."""
    from matplotlib.text import Text

    ticks = {id(t) for ax in fig.axes for axis in (ax.xaxis, ax.yaxis)
             for t in axis.get_ticklabels(which="both")}
    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip() and id(t) not in ticks]


def outside_canvas(fig: Any) -> list[str]:
    """The texts (titles, labels, legends, ticks, annotations) of ``fig`` whose drawn extent leaves the canvas."""
    renderer = _renderer(fig)
    canvas = fig.bbox
    boxes = [(text.get_text(), text.get_window_extent(renderer)) for text in _texts(fig)]
    boxes += [(f"tick labels of {axis.axis_name} axis", axis.get_tightbbox(renderer))  # drawn ticks only
              for ax in fig.axes if ax.axison for axis in (ax.xaxis, ax.yaxis)]
    return [name for name, box in boxes if box is not None and (
        box.x0 < canvas.x0 - 0.5 or box.x1 > canvas.x1 + 0.5 or box.y0 < canvas.y0 - 0.5 or box.y1 > canvas.y1 + 0.5)]


def fit_texts(fig: Any, rounds: int = 3) -> None:
    """Wrap every text line that would leave the canvas (a long title over a narrow figure) onto more lines.

    A centred text at x = c on a canvas of width W has room for 2·min(c, W − c); its lines are re-wrapped to
    (room / drawn width) of their length, then the layout is redone, a few rounds at most.
    """
    import textwrap

    for _ in range(rounds):
        renderer = _renderer(fig)
        width = fig.bbox.width
        changed = False
        for text in _texts(fig):
            box = text.get_window_extent(renderer)
            if box.x0 >= 0 and box.x1 <= width:
                continue
            centre = (box.x0 + box.x1) / 2
            room = 0.95 * (2 * min(centre, width - centre) if text.get_ha() == "center" else width)
            lines = text.get_text().split("\n")
            chars = max(12, int(max(len(line) for line in lines) * room / max(box.width, 1.0)))
            text.set_text("\n".join(textwrap.fill(line, chars) for line in lines))
            changed = True
        if not changed:
            return
