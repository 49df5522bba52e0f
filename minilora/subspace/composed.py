"""θ = θ0 + P z written with ordinary engine ops: the textbook twin of ``function.py``.

``SubspaceModel(..., fused=False)`` builds δ = P z and every θ_i from Tensor operations (matmul, indexing,
reshape, add, multiply, stack, sum), so ``loss.backward()`` derives dL/dz = Pᵀ dL/dθ by itself, through the
chain rule, without the hand-written adjoint ``rmatvec`` of the ``Project`` Function and without
``OffsetSlice``'s shared gradient buffer.  It computes the same numbers as the fused path (to float
rounding; tests/test_subspace_model.py), with a longer graph and more temporary arrays: the fused path
is the optimisation, this is the definition.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minilora import backend
from minilora import functional as F
from minilora.engine.tensor import Tensor
from minilora.subspace.projections import DenseProjection, FastfoodProjection, Projection, SparseProjection

__all__ = ["fwht_composed", "project_composed"]


def fwht_composed(x: Tensor) -> Tensor:
    """y = H_n x along the last axis as engine ops: the butterfly of ``fwht.fwht_butterfly``, pass by pass.

    Each pass splits every block of 2h values into halves a, b and stacks [a + b, a − b] in their place.
    """
    n = x.shape[-1]
    y = x.reshape(-1, n)                                         # (rows, n)
    h = 1
    while h < n:
        blocks = y.reshape(-1, n // (2 * h), 2, h)               # (rows, blocks, halves, h)
        a, b = blocks[:, :, 0, :], blocks[:, :, 1, :]
        y = F.stack([a + b, a - b], axis=2).reshape(-1, n)
        h *= 2
    return y.reshape(*x.shape)


def _constant(array: np.ndarray, like: Tensor) -> Any:
    """A host array on ``like``'s device (floating point in ``like``'s dtype): a constant of the graph."""
    if array.dtype.kind == "f":
        array = array.astype(like.dtype, copy=False)
    return backend.to_device(array, like.device)


def project_composed(projection: Projection, z: Tensor) -> Tensor:
    """δ = P z (z: (d,) Tensor, δ: (D,)) as engine ops, for the three projections of ``projections.py``:

    dense      δ = P z, one matmul with the (D, d) matrix;
    sparse     δ_i = Σ over the nonzeros (i, j) of row i of P_ij z_j: gather z[cols], scale, gather by row, sum;
    fastfood   δ = (s H G Π H B z̃)[:D] summed over blocks: pad, scale, butterfly, permute, scale, butterfly, cut.
    """
    if isinstance(projection, DenseProjection):
        return Tensor(_constant(projection.matrix, z)) @ z                                   # (D,)
    if isinstance(projection, SparseProjection):
        values = Tensor(_constant(projection.values, z))                                       # (nnz,)
        contributions = values * z[_constant(projection.cols, z)]                             # (nnz,)
        padded = F.concat([contributions, Tensor(backend.get_xp(z.data).zeros(1, dtype=z.dtype))])  # (nnz + 1,)
        return padded[_constant(projection.row_table(), z)].sum(axis=1)                     # (D,)
    if isinstance(projection, FastfoodProjection):
        blocks, n = projection.blocks, projection.n
        zeros = Tensor(backend.get_xp(z.data).zeros(blocks * n - projection.d, dtype=z.dtype))
        v = F.concat([z, zeros]).reshape(blocks, n)                                           # z̃ (blocks, n)
        v = fwht_composed(v * Tensor(_constant(projection.signs, z)))                        # H B z̃
        offsets = np.arange(blocks)[:, None] * n
        v = v.reshape(-1)[_constant((projection.perm + offsets).reshape(-1), z)].reshape(blocks, n)  # Π H B z̃
        scaled_gauss = projection.gauss * projection.scale[:, None]                            # s G
        v = fwht_composed(v * Tensor(_constant(scaled_gauss, z)))                             # s H G Π H B z̃
        return v[:, : projection.D].sum(axis=0)                                              # (D,)
    raise TypeError(f"project_composed: no composed form for {type(projection).__name__}; "
                    "use the fused path (SubspaceModel(..., fused=True)) for a custom Projection")
