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

__all__ = ["Project", "OffsetSlice"]

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


class OffsetSlice(Function):
    """θ_i = θ0_i + λ_i · δ[start : start + n_i].reshape(shape_i)  (with λ_i = 1 when ``scales`` is not given).

    Inputs: δ (D,), θ0_i (shape_i), optionally the SAID scales λ (T,) of which entry ``index`` is used.
    Gradients (g = dL/dθ_i):  dL/dδ is g flattened into positions start..start+n_i, times λ_i, zeros elsewhere;
    dL/dθ0_i = g;  dL/dλ_index = Σ g ⊙ δ-slice, zero for the other scales.
    """

    @staticmethod
    def forward(ctx: Function, delta: Array, theta0: Array, scales: Array | None = None, *, start: int = 0,
                index: int = 0) -> Array:
        piece = delta[start : start + theta0.size].reshape(theta0.shape)  # (shape_i), a view of δ
        ctx.start, ctx.index, ctx.delta_size = start, index, delta.shape[0]
        if scales is None:
            return theta0 + piece
        scale = scales[index]  # 0-d
        ctx.save_for_backward(piece, scale, scales.shape[0])
        return theta0 + scale * piece

    @staticmethod
    def backward(ctx: Function, g: Array) -> tuple[Array | None, ...]:
        xp = backend.get_xp(g)
        needs = ctx.needs_input_grad
        said = len(needs) == 3
        d_delta = d_scales = None
        if needs[0]:
            d_delta = xp.zeros(ctx.delta_size, dtype=g.dtype)  # (D,)
            d_delta[ctx.start : ctx.start + g.size] = (g * ctx.saved_tensors[1] if said else g).reshape(-1)
        if said and needs[2]:
            piece, _, num_scales = ctx.saved_tensors
            d_scales = xp.zeros(num_scales, dtype=g.dtype)  # (T,)
            d_scales[ctx.index] = (g * piece).sum()
        d_theta0 = g if needs[1] else None
        return (d_delta, d_theta0, d_scales) if said else (d_delta, d_theta0)
