"""Subspace training of any ``nn.Module`` (Li et al. 2018, arXiv 1804.08838; Aghajanyan et al. 2020, arXiv 2012.13255).

    from minilora.subspace import SubspaceModel
    sm = SubspaceModel(ml.pretrained("skills"), d=1000)   # θ = θ0 + P z, P Fastfood, z = 0 at the start
    logits, loss = sm(idx, targets)                       # the wrapped GPT, computed at θ
    train(sm, task, TrainConfig(lr=0.03))                 # only z (d numbers) trains
    print(sm.count_parameters())                          # d, D and the trainable share

One job per file:  ``fwht`` (the fast Walsh–Hadamard transform, beside the reference butterfly),
``projections`` (Dense, Sparse, Fastfood: P z and Pᵀ g),  ``function`` (the projection and the parameter
slices as graph nodes with hand-written gradients),  ``composed`` (the same θ from ordinary engine ops:
``SubspaceModel(..., fused=False)``),  ``model`` (SubspaceModel, with SAID scales).  The smallest d reaching 90% of full
fine-tuning is d90 (``minilora.experiments``).
"""

from minilora.subspace.model import SubspaceCount, SubspaceModel
from minilora.subspace.projections import (
    DENSE_MAX_BYTES,
    PROJECTIONS,
    DenseProjection,
    FastfoodProjection,
    Projection,
    SparseProjection,
    make_projection,
)

__all__ = ["Projection", "DenseProjection", "SparseProjection", "FastfoodProjection", "PROJECTIONS",
           "DENSE_MAX_BYTES", "make_projection", "SubspaceModel", "SubspaceCount"]
