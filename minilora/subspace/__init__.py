"""Subspace training and intrinsic dimension (Li et al. 2018; Aghajanyan et al. 2020): θ = θ0 + P z."""

from minilora.subspace.projections import (
    DENSE_MAX_BYTES,
    PROJECTIONS,
    DenseProjection,
    FastfoodProjection,
    Projection,
    SparseProjection,
    make_projection,
)
from minilora.subspace.model import SubspaceCount, SubspaceModel

__all__ = ["Projection", "DenseProjection", "SparseProjection", "FastfoodProjection", "PROJECTIONS",
           "DENSE_MAX_BYTES", "make_projection", "SubspaceModel", "SubspaceCount"]
