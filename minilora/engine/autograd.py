"""Reverse-mode automatic differentiation: the backward walk over the graph.

``loss.backward()`` visits the graph once in reverse topological order and applies the chain rule:
for y = f(x1, ..., xn), each input receives  dL/dxi = f.backward_i(dL/dy),  summed over every use.

Rules the engine (not each op) enforces:
- a gradient is reduced back to its input's shape (``unbroadcast``) and checked against it;
- a backward returns exactly one gradient (or None) per input;
- the walk is iterative (no recursion limit on deep models) and frees the graph afterwards;
- leaf gradients accumulate with ``+=`` across backward calls until ``zero_grad``.

This module knows graph vertices only by their attributes (``_ctx``, ``requires_grad``, ``shape``,
``dtype``, ``grad``), not by the Tensor class.
"""

from __future__ import annotations

from typing import Any

__all__ = ["GraphRef", "unbroadcast", "run_backward"]


class GraphRef:
    """What the graph keeps of an intermediate input: its producing node, shape and dtype — not its array.

    An op that needs an input's values saves them itself (``save_for_backward``); everything else
    can be freed during the forward pass, as in PyTorch.  This is most of a training step's memory.
    """

    __slots__ = ("_ctx", "requires_grad", "shape", "dtype")

    def __init__(self, t: Any):
        self._ctx, self.requires_grad = t._ctx, t.requires_grad
        self.shape, self.dtype = t.shape, t.dtype


def unbroadcast(grad: Any, shape: tuple[int, ...]) -> Any:
    """Sum ``grad`` down to ``shape``: the adjoint of broadcasting ``shape`` to ``grad.shape``.

    Leading axes that broadcasting added are summed away; axes where ``shape`` has 1 are summed
    with keepdims.  E.g. grad (4, 3, 5) to shape (3, 1): sum axis 0, then axis 2 (kept).
    """
    if tuple(grad.shape) == tuple(shape):
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    kept = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if kept:
        grad = grad.sum(axis=kept, keepdims=True)
    return grad


Node = Any  # a graph vertex: a Tensor (the root, leaves) or the GraphRef of an intermediate


def _topological_order(root: Node) -> list[Node]:
    """Vertices reachable from ``root`` through nodes that need grad, inputs before outputs.

    Iterative depth-first search with an explicit stack (no recursion limit).
    """
    order: list[Node] = []
    visited: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if children_done:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        ctx = node._ctx
        if ctx is not None:
            if ctx.inputs is None:
                raise RuntimeError(
                    "backward() through a graph that was already freed: each forward pass supports one "
                    "backward(); run the forward again"
                )
            for parent in ctx.inputs:
                if parent.requires_grad and id(parent) not in visited:
                    stack.append((parent, False))
    return order


def run_backward(root: Node, grad: Any) -> None:
    """Propagate ``grad`` from ``root`` to every leaf, then free the graph."""
    order = _topological_order(root)
    grads: dict[int, Any] = {id(root): grad}
    for node in reversed(order):
        g = grads.pop(id(node), None)
        ctx = node._ctx
        if ctx is None:  # a leaf: accumulate
            if g is None:
                continue
            if node.grad is None:
                node.grad = g.copy()  # own the buffer: g may be shared with other gradients
            else:
                node.grad += g
            continue
        if g is not None:
            input_grads = type(ctx).backward(ctx, g)
            if not isinstance(input_grads, tuple):
                input_grads = (input_grads,)
            if len(input_grads) != len(ctx.inputs):
                raise RuntimeError(f"{type(ctx).__name__}.backward returned {len(input_grads)} gradients "
                                   f"for {len(ctx.inputs)} inputs (return None for an input without one)")
            for parent, needed, pg in zip(ctx.inputs, ctx.needs_input_grad, input_grads):
                if not needed or pg is None:
                    continue
                pg = _fit_gradient(pg, parent, type(ctx).__name__)
                key = id(parent)
                grads[key] = pg if key not in grads else grads[key] + pg
        ctx.inputs = None  # free the graph: saved arrays and references to inputs
        ctx.saved_tensors = ()


def _fit_gradient(grad: Any, parent: Node, op_name: str) -> Any:
    """Reduce a gradient to its input's shape and dtype, or fail loudly when an op got it wrong."""
    grad = unbroadcast(grad, parent.shape)
    if tuple(grad.shape) != parent.shape:
        raise RuntimeError(
            f"{op_name}.backward returned a gradient of shape {tuple(grad.shape)} "
            f"for an input of shape {parent.shape}"
        )
    if grad.dtype != parent.dtype:  # mixed-precision inputs: the result was promoted
        grad = grad.astype(parent.dtype)
    return grad
