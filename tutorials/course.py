"""What the tutorial notebooks share: the fast switch, showing a figure, drawing an autograd graph.

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

__all__ = ["FAST", "fast_or_full", "show", "graph_edges", "draw_graph"]

FAST: bool = os.environ.get("MINILORA_FAST", "0") == "1"
"""True when the environment says ``MINILORA_FAST=1``: short runs that exercise every cell."""


def fast_or_full(fast: Any, full: Any) -> Any:
    """``fast`` under MINILORA_FAST=1, else ``full`` (a step count, an evaluation size, a list of sizes)."""
    return fast if FAST else full


def show(fig: Figure, dpi: int = 80) -> None:
    """Display a matplotlib Figure in the notebook as one PNG (modest dpi keeps the committed notebook small).

    No pyplot: a Figure object is drawn straight to PNG bytes, whatever plotting backend is active.
    """
    from IPython.display import Image, display

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    display(Image(data=buffer.getvalue()))


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
