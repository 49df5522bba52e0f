"""What the tutorial notebooks share: the fast switch, showing a readable figure, a table, drawing an autograd graph.

The notebooks sit beside this file and ``import course``.  It is not part of the minilora package: it only
helps the notebooks look after themselves (how a figure is shown is not what a notebook teaches).

``MINILORA_FAST=1`` (set by CI) makes every notebook train for fewer steps and evaluate on fewer examples,
so the whole set executes in a few minutes; without it the notebooks produce the real figures.
"""

from __future__ import annotations

import io
import os
from typing import Any

from matplotlib.figure import Figure

__all__ = ["FAST", "MAX_WIDTH_INCHES", "MIN_FONT_POINTS", "fast_or_full", "readability_problems", "show", "table",
           "loss_figure", "your", "graph_edges", "draw_graph"]

FAST: bool = os.environ.get("MINILORA_FAST", "0") == "1"
"""True when the environment says ``MINILORA_FAST=1``: short runs that exercise every cell."""


def fast_or_full(fast: Any, full: Any) -> Any:
    """``fast`` under MINILORA_FAST=1, else ``full`` (a step count, an evaluation size, a list of sizes)."""
    return fast if FAST else full


MAX_WIDTH_INCHES = 10.0
"""The widest figure a notebook shows: 800 px at ``show``'s dpi, about a notebook's width, so text is not shrunk."""

MIN_FONT_POINTS = 8.0
"""The smallest text a figure may carry (titles, labels, ticks, legends), at the figure's own size."""


def _texts(fig: Figure) -> list[tuple[str, Any]]:
    """Every visible, non-empty text of ``fig`` with a role: "title" (suptitle, axes titles, figure texts), "label"
    (axis labels), "legend", "tick" (tick labels, named by their axes)."""
    found: list[tuple[str, Any]] = [("title", t) for t in fig.texts]  # suptitle and supxlabel are among them
    for number, ax in enumerate(fig.axes):
        found += [("title", t) for t in (ax.title, ax._left_title, ax._right_title)]
        found += [("label", ax.xaxis.label), ("label", ax.yaxis.label)]
        for axis in (ax.xaxis, ax.yaxis):  # only the ticks in view: matplotlib keeps labels for the others, undrawn
            low, high = sorted(axis.get_view_interval())
            found += [(f"tick{number}", tick.label1) for tick in axis.get_major_ticks()
                      if low - 1e-12 * abs(high - low) <= tick.get_loc() <= high + 1e-12 * abs(high - low)]
        legend = ax.get_legend()
        if legend is not None:
            found += [("legend", t) for t in legend.get_texts()]
    unique = {id(t): (role, t) for role, t in found}
    return [(role, t) for role, t in unique.values() if t.get_visible() and t.get_text().strip()]


def readability_problems(fig: Figure) -> list[str]:
    """What makes ``fig`` hard to read at notebook width, one line each (an empty list: nothing):

    wider than ``MAX_WIDTH_INCHES``; text smaller than ``MIN_FONT_POINTS``; a title, axis label or legend entry
    overlapping another text (a clipped or colliding suptitle, a label over a neighbour's ticks); tick labels of one
    axes overlapping each other (too many ticks).
    """
    problems = []
    width = fig.get_size_inches()[0]
    if width > MAX_WIDTH_INCHES:
        problems.append(f"the figure is {width:.1f} in wide; at most {MAX_WIDTH_INCHES:.0f} in reads at notebook width "
                        "(split it into figures with one finding each)")
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)  # a bare Figure has no renderer until it has a canvas
    canvas.draw()  # lays the figure out (constrained/tight layout included) so the extents below are final
    renderer = canvas.get_renderer()
    texts = [(role, t, t.get_window_extent(renderer)) for role, t in _texts(fig)]
    small = sorted({t.get_text() for _, t, _ in texts if t.get_fontsize() < MIN_FONT_POINTS - 1e-9})
    if small:
        problems.append(f"text below {MIN_FONT_POINTS:.0f} pt: {small[:3]}")
    for i, (role_a, a, box_a) in enumerate(texts):
        for role_b, b, box_b in texts[i + 1:]:
            same_ticks = role_a == role_b and role_a.startswith("tick")
            if not same_ticks and (role_a.startswith("tick") and role_b.startswith("tick")):
                continue  # tick labels of two different axes: the layout keeps axes apart
            if box_a.overlaps(box_b) and box_a.width > 0 and box_b.width > 0:
                what = "tick labels" if same_ticks else f"{role_a} and {role_b}"
                problems.append(f"{what} overlap: {a.get_text()!r} and {b.get_text()!r}")
    return problems


def show(fig: Figure, dpi: int = 80) -> None:
    """Display a matplotlib Figure in the notebook as one PNG (modest dpi keeps the committed notebook small).

    The figure must be readable at notebook width (``readability_problems``): a figure that is not raises a
    ValueError naming what to fix, so a notebook cannot ship one.  No pyplot: a Figure object is drawn straight to
    PNG bytes, whatever plotting backend is active.
    """
    from IPython.display import Image, display

    problems = readability_problems(fig)
    if problems:
        raise ValueError("this figure is hard to read: " + "; ".join(problems))
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    display(Image(data=buffer.getvalue()))


def table(rows: list[dict[str, Any]], digits: int = 3) -> None:
    """Display ``rows`` (one dict per row, the same keys) as a Markdown table: text a student can read and copy,
    never a picture.  Floats are printed with ``digits`` decimals."""
    from IPython.display import Markdown, display

    if not rows:
        raise ValueError("table: no rows to show")
    headers = list(rows[0])

    def cell(value: Any) -> str:
        return f"{value:.{digits}f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(row[h]) for h in headers) + " |" for row in rows]
    display(Markdown("\n".join(lines)))


def loss_figure(curves: list[tuple[str, list[dict[str, Any]], str]], title: str) -> Figure:
    """Training loss against step on a log scale, one line per run: ``curves`` holds (label, the run's
    ``history``, colour); each line is smoothed over a 40th of its steps (``minilora.plots.smooth``)."""
    from matplotlib.ticker import MaxNLocator

    from minilora.plots import smooth

    fig = Figure(figsize=(7, 3.4), layout="constrained")
    ax = fig.add_subplot()
    steps = max(len(history) for _, history, _ in curves)
    for label, history, color in curves:
        losses = [h["loss"] for h in history]
        ax.plot(range(1, len(losses) + 1), smooth(losses, max(1, len(losses) // 40)), color=color, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (smoothed)")
    ax.set_title(title)
    ax.set_xlim(0, steps)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend()
    return fig


def your(exercise: Any, *args: Any) -> Any:
    """``exercise(*args)``: your answer to an exercise, printed beside what a run measured, or "(not written yet)"
    while its cell still raises NotImplementedError."""
    try:
        return exercise(*args)
    except NotImplementedError:
        return "(not written yet)"


def _label(vertex: Any, names: dict[int, str]) -> str:
    """A value vertex's text: its given name (or a role), then its shape."""
    shape = str(tuple(vertex.shape)) if vertex.shape else "scalar"
    if id(vertex) in names:
        return f"{names[id(vertex)]}\n{shape}"
    if vertex._ctx is None:
        return f"{'leaf' if vertex.requires_grad else 'constant'}\n{shape}"
    return shape


def graph_edges(root: Any) -> tuple[list[Any], list[tuple[Any, Any]]]:
    """Every value vertex reachable from ``root`` (root first) and the edges (input, output) between them.

    A vertex is a Tensor (the root and leaves) or what the graph keeps of an intermediate (a GraphRef); its
    ``_ctx`` is the Function that made it, whose ``inputs`` are the vertices it was made from.
    """
    vertices, edges, stack, seen = [], [], [root], {id(root)}
    while stack:
        vertex = stack.pop()
        vertices.append(vertex)
        ctx = vertex._ctx
        for parent in (ctx.inputs or ()) if ctx is not None else ():
            edges.append((parent, vertex))
            if id(parent) not in seen:
                seen.add(id(parent))
                stack.append(parent)
    return vertices, edges


def draw_graph(root: Any, **names: Any) -> Figure:
    """A picture of the graph that produced ``root`` (call it before ``backward()``, which frees the graph).

    Values are boxes (name and shape), each Function an orange box between its inputs and its output;
    inputs on the left, the result on the right.  ``names`` labels tensors: ``draw_graph(y, a=a, b=b)``.
    """
    labels = {id(t): name for name, t in names.items()}
    vertices, edges = graph_edges(root)
    depth = {id(root): 0}  # the longest path to the root decides the column
    for _ in vertices:
        for parent, child in edges:
            depth[id(parent)] = max(depth.get(id(parent), 0), depth[id(child)] + 1)
    columns: dict[int, list[Any]] = {}
    for vertex in vertices:
        columns.setdefault(depth[id(vertex)], []).append(vertex)
    position = {}
    for d, members in columns.items():
        for i, vertex in enumerate(members):
            position[id(vertex)] = (-2.0 * d, i - (len(members) - 1) / 2)
    fig = Figure(figsize=(1.0 + 1.4 * max(columns), 0.6 + 0.9 * max(len(m) for m in columns.values())))
    ax = fig.add_subplot()
    ax.set_axis_off()
    boxes = {}
    for vertex in vertices:
        fill = "#c6dbef" if vertex._ctx is None and vertex.requires_grad else "#f0f0f0"
        boxes[id(vertex)] = ax.text(*position[id(vertex)], _label(vertex, labels), ha="center", va="center",
                                    fontsize=9, bbox={"boxstyle": "round,pad=0.3", "fc": fill, "ec": "#4a4a4a"})
    arrow = {"arrowstyle": "->", "color": "#4a4a4a", "shrinkA": 4, "shrinkB": 4}
    for vertex in vertices:  # each Function: an orange box half a column left of its output
        ctx = vertex._ctx
        if ctx is None:
            continue
        x, y = position[id(vertex)]
        op = ax.text(x - 1.0, y, type(ctx).__name__, ha="center", va="center", fontsize=9,
                     bbox={"boxstyle": "round,pad=0.3", "fc": "#fdd49e", "ec": "#d94801"})
        ax.annotate("", xy=(0, 0.5), xycoords=boxes[id(vertex)], xytext=(1, 0.5), textcoords=op, arrowprops=arrow)
        for parent in ctx.inputs or ():
            skips = position[id(parent)][0] < x - 2.5  # an input from further left: curve over the boxes between
            style = {**arrow, "connectionstyle": "arc3,rad=-0.35"} if skips else arrow
            ax.annotate("", xy=(0, 0.5), xycoords=op, xytext=(1, 0.5), textcoords=boxes[id(parent)], arrowprops=style)
    xs = [p[0] for p in position.values()]
    ys = [p[1] for p in position.values()]
    ax.set_xlim(min(xs) - 0.6, max(xs) + 0.6)
    ax.set_ylim(min(ys) - 0.6, max(ys) + 1.0)  # room above for curved edges
    return fig
