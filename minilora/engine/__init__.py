"""The autograd engine: tensors, the graph, the backward walk, primitive and fused Functions, gradient checks.

Importable alone: it loads ``minilora.backend`` and nothing above it (no layers, models or files).

    tensor.py     Tensor and Function (a graph node), no_grad
    autograd.py   the backward walk: topological order, chain rule, one central unbroadcast
    ops.py        one Function per arithmetic primitive (add, matmul, exp, sum, ...)
    shape_ops.py  one Function per shape or indexing primitive (reshape, transpose, x[i], concat, where, ...)
    operators.py  the Tensor methods that call those Functions (a + b, x.sum(), x.T, ...)
    fused.py      fused Functions (softmax-CE, layer norm, GELU, attention, linear)
    creation.py   tensor, zeros, ones, randn, ...
    gradcheck.py  finite-difference gradient checks
"""

from minilora.engine.operators import install_operators

install_operators()
