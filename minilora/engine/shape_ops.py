"""Shape and indexing primitives: one ``Function`` subclass each (reshape, transpose, indexing, concat, stack,
where, masked fill).  They move or select numbers without arithmetic, so each backward routes ``g`` back to where
its numbers came from (a reshape back, a transpose by the inverse permutation, an index by a scatter-add).

The same contract as ``ops.py``: forward on raw arrays, backward returns one gradient per input (None where
``ctx.needs_input_grad`` is False), never modifying ``g`` in place.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minilora import backend
from minilora.engine.tensor import Array, Function


class Reshape(Function):
    """y = x viewed with a new shape; dx = g reshaped back."""

    @staticmethod
    def forward(ctx: Function, x: Array, shape: tuple[int, ...]) -> Array:
        ctx.shape = x.shape
        try:
            return x.reshape(shape)
        except ValueError:
            raise ValueError(f"reshape: cannot reshape a tensor of shape {tuple(x.shape)} ({x.size} "
                             f"values) into {shape}") from None

    @staticmethod
    def backward(ctx: Function, g: Array) -> tuple[Array | None, ...]:
        return (g.reshape(ctx.shape),)


class Transpose(Function):
    """y = x with axes permuted; dx = g with the inverse permutation."""

    @staticmethod
    def forward(ctx: Function, x: Array, axes: tuple[int, ...]) -> Array:
        ctx.inverse = tuple(np.argsort(axes))
        return x.transpose(axes)

    @staticmethod
    def backward(ctx: Function, g: Array) -> tuple[Array | None, ...]:
        return (g.transpose(ctx.inverse),)


def _has_array_index(index: tuple[Any, ...]) -> bool:
    return any(hasattr(part, "shape") and hasattr(part, "dtype") for part in index)


class GetItem(Function):
    """y = x[index] (slices, ints, integer/boolean arrays); dx = zeros with g scattered back.

    Integer arrays may repeat an index: ``add.at`` accumulates, so x[[0, 0]] sends 2g to x[0].
    """

    @staticmethod
    def forward(ctx: Function, x: Array, index: tuple[Any, ...]) -> Array:
        ctx.shape, ctx.dtype, ctx.index = x.shape, x.dtype, index
        try:
            return x[index]
        except IndexError as err:
            raise IndexError(f"index {index!r} is out of range for a tensor of shape {tuple(x.shape)}: {err}") from None

    @staticmethod
    def backward(ctx: Function, g: Array) -> tuple[Array | None, ...]:
        xp = backend.get_xp(g)
        dx = xp.zeros(ctx.shape, dtype=g.dtype)
        if _has_array_index(ctx.index):
            xp.add.at(dx, ctx.index, g)
        else:
            dx[ctx.index] = g
        return (dx,)


class Concat(Function):
    """y = concatenate(xs, axis); dx_i = the slice of g that came from x_i."""

    @staticmethod
    def forward(ctx: Function, *xs: Array, axis: int) -> Array:
        ctx.axis = axis
        ctx.sizes = [x.shape[axis] for x in xs]
        return backend.get_xp(xs[0]).concatenate(xs, axis=axis)

    @staticmethod
    def backward(ctx: Function, g: Array) -> tuple[Array | None, ...]:
        bounds = np.cumsum(ctx.sizes)[:-1].tolist()
        pieces = backend.get_xp(g).split(g, bounds, axis=ctx.axis)
        return tuple(p if need else None for p, need in zip(pieces, ctx.needs_input_grad))


class Stack(Function):
    """y = stack(xs, axis) (a new axis); dx_i = g taken at position i of that axis."""

    @staticmethod
    def forward(ctx: Function, *xs: Array, axis: int) -> Array:
        ctx.axis = axis
        return backend.get_xp(xs[0]).stack(xs, axis=axis)

    @staticmethod
    def backward(ctx: Function, g: Array) -> tuple[Array | None, ...]:
        xp = backend.get_xp(g)
        moved = xp.moveaxis(g, ctx.axis, 0)
        return tuple(moved[i] if need else None for i, need in enumerate(ctx.needs_input_grad))


class Where(Function):
    """y = a where cond else b (cond boolean, no gradient); da = g * cond, db = g * (1 - cond)."""

    @staticmethod
    def forward(ctx: Function, cond: Array, a: Array, b: Array) -> Array:
        xp = backend.get_xp(a)
        ctx.save_for_backward(cond)
        return xp.where(cond, a, b)

    @staticmethod
    def backward(ctx: Function, g: Array) -> tuple[Array | None, ...]:
        (cond,) = ctx.saved_tensors
        xp = backend.get_xp(g)
        zero = xp.zeros((), dtype=g.dtype)
        da = xp.where(cond, g, zero) if ctx.needs_input_grad[1] else None
        db = xp.where(cond, zero, g) if ctx.needs_input_grad[2] else None
        return None, da, db


class MaskedFill(Function):
    """y = value where mask else x; dx = g where not mask else 0."""

    @staticmethod
    def forward(ctx: Function, x: Array, mask: Array, value: float) -> Array:
        xp = backend.get_xp(x)
        ctx.save_for_backward(mask)
        return xp.where(mask, xp.asarray(value, dtype=x.dtype), x)

    @staticmethod
    def backward(ctx: Function, g: Array) -> tuple[Array | None, ...]:
        (mask,) = ctx.saved_tensors
        xp = backend.get_xp(g)
        return xp.where(mask, xp.zeros((), dtype=g.dtype), g), None
