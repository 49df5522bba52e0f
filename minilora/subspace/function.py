"""The subspace reparametrisation as graph nodes: δ = P z, then θ_i = θ0_i + λ_i · δ[o_i : o_i + n_i].

``Project`` makes the random projection a differentiable primitive (forward P z, backward Pᵀ g), so
``loss.backward()`` delivers dL/dz = Pᵀ dL/dθ to z like any other gradient.  ``OffsetSlice`` cuts one
parameter tensor's piece out of δ and adds it to the frozen initial weights θ0_i.
"""

from __future__ import annotations

from typing import Any

from minilora import backend
from minilora.engine.tensor import Function
from minilora.subspace.projections import Projection

__all__ = ["Project", "GradientBuffer", "OffsetSlice"]

Array = Any  # a NumPy or CuPy array


class Project(Function):
    """δ = P z (z: (d,), δ: (D,));  dL/dz = Pᵀ dL/dδ.  ``projection`` is a ``Projection`` (a keyword)."""

    @staticmethod
    def forward(ctx: Function, z: Array, projection: Projection) -> Array:
        ctx.projection = projection
        return projection.matvec(z)

    @staticmethod
    def backward(ctx: Function, g: Array) -> tuple[Array | None]:
        return (ctx.projection.rmatvec(g),)


class GradientBuffer:
    """dL/dδ for one forward pass, assembled in a single (D,) array by all the ``OffsetSlice`` nodes that cut δ.

    Each slice writes its gradient into its own positions of ``array``.  The first slice to run backward
    hands ``array`` to the engine as δ's gradient; the others return None for δ, so the engine adds no
    full-length arrays (T slices would otherwise cost T zero-filled (D,) arrays and T additions per step).
    This is complete before it is used because backward runs in reverse topological order: δ's own node
    (``Project``) runs only after every node that consumed δ, i.e. after every slice has written its part.
    It relies on the engine passing a gradient of the right shape and dtype on unchanged (not copied); the
    gradient checks of SubspaceModel would fail if it did not.
    """

    def __init__(self, size: int, dtype: Any) -> None:
        self.size, self.dtype = size, dtype
        self.array: Array | None = None

    def write(self, start: int, values: Array) -> Array | None:
        """Put ``values`` (flattened) at positions start..start+len; the full array the first time, else None."""
        first = self.array is None
        if first:
            self.array = backend.get_xp(values).zeros(self.size, dtype=self.dtype)  # (D,)
        self.array[start : start + values.size] = values.reshape(-1)
        return self.array if first else None


class OffsetSlice(Function):
    """θ_i = θ0_i + λ_i · δ[start : start + n_i].reshape(shape_i)  (λ_i = 1 when no ``scales`` input is given).

    Inputs: δ (D,), θ0_i (shape_i), optionally the SAID scales λ (T,) of which entry ``index`` is used;
    ``buffer`` is the forward pass's ``GradientBuffer`` for δ.
    Gradients (g = dL/dθ_i):  dL/dδ is λ_i·g at positions start..start+n_i and 0 elsewhere (written into
    the buffer);  dL/dθ0_i = g;  dL/dλ_index = Σ g ⊙ δ-slice, 0 for the other scales.
    """

    @staticmethod
    def forward(ctx: Function, delta: Array, theta0: Array, scales: Array | None = None, *, start: int,
                index: int, buffer: GradientBuffer) -> Array:
        piece = delta[start : start + theta0.size].reshape(theta0.shape)  # (shape_i), a view of δ
        ctx.start, ctx.index, ctx.buffer = start, index, buffer
        if scales is None:
            return theta0 + piece
        scale = scales[index]  # 0-d
        ctx.num_scales = scales.shape[0]
        ctx.save_for_backward(piece, scale)
        return theta0 + scale * piece

    @staticmethod
    def backward(ctx: Function, g: Array) -> tuple[Array | None, ...]:
        needs = ctx.needs_input_grad
        said = len(needs) == 3
        d_delta = d_scales = None
        if needs[0]:
            d_delta = ctx.buffer.write(ctx.start, g * ctx.saved_tensors[1] if said else g)
        if said and needs[2]:
            piece = ctx.saved_tensors[0]
            d_scales = backend.get_xp(g).zeros(ctx.num_scales, dtype=g.dtype)  # (T,)
            d_scales[ctx.index] = (g * piece).sum()
        d_theta0 = g if needs[1] else None
        return (d_delta, d_theta0, d_scales) if said else (d_delta, d_theta0)
