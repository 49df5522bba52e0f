"""The Tensor methods that build graph nodes: each operator is one ``Function`` from ``ops.py``.

``tensor.py`` defines the Tensor and the Function (the graph), ``ops.py`` the Functions (which need both);
the methods that call those Functions are written here and attached to Tensor once both modules are loaded
(``install_operators``, called by ``minilora/engine/__init__.py``).  This is DeZero's ``setup_variable``:
an explicit answer to the Tensor <-> ops cycle, so every engine module imports only downwards.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from minilora import backend
from minilora.engine import ops, shape_ops
from minilora.engine.tensor import Tensor, index_to_arrays, lift, normalize_axis

__all__ = ["TensorOperators", "install_operators"]


class TensorOperators:
    """Arithmetic, reductions, elementwise functions, shape changes and device/dtype moves of a Tensor."""

    def to(self, device: str) -> "Tensor":
        """A copy on ``device`` (the same tensor if already there); gradients flow back across devices."""
        if backend.device_of(self.data) == device:
            return self
        return ops.ToDevice.apply(self, device=device)

    def astype(self, dtype: Any) -> "Tensor":
        """Cast to ``dtype``; the gradient is cast back to the input's dtype."""
        if np.dtype(dtype) == self.dtype:
            return self
        return ops.Cast.apply(self, dtype=np.dtype(dtype))

    # -- operators (each is one Function in ops.py) ----------------------------------------------
    def __add__(self, other: Any) -> "Tensor":
        return ops.Add.apply(self, lift(other, self))

    def __radd__(self, other: Any) -> "Tensor":
        return ops.Add.apply(lift(other, self), self)

    def __sub__(self, other: Any) -> "Tensor":
        return ops.Sub.apply(self, lift(other, self))

    def __rsub__(self, other: Any) -> "Tensor":
        return ops.Sub.apply(lift(other, self), self)

    def __mul__(self, other: Any) -> "Tensor":
        return ops.Mul.apply(self, lift(other, self))

    def __rmul__(self, other: Any) -> "Tensor":
        return ops.Mul.apply(lift(other, self), self)

    def __truediv__(self, other: Any) -> "Tensor":
        return ops.Div.apply(self, lift(other, self))

    def __rtruediv__(self, other: Any) -> "Tensor":
        return ops.Div.apply(lift(other, self), self)

    def __pow__(self, exponent: Any) -> "Tensor":
        if isinstance(exponent, (int, float)):
            return ops.PowScalar.apply(self, exponent=exponent)
        return ops.Pow.apply(self, lift(exponent, self))

    def __rpow__(self, base: Any) -> "Tensor":
        return ops.Pow.apply(lift(base, self), self)

    def __neg__(self) -> "Tensor":
        return ops.Neg.apply(self)

    def __matmul__(self, other: Any) -> "Tensor":
        return ops.MatMul.apply(self, lift(other, self))

    def __rmatmul__(self, other: Any) -> "Tensor":
        return ops.MatMul.apply(lift(other, self), self)

    def __getitem__(self, index: Any) -> "Tensor":
        return shape_ops.GetItem.apply(self, index=index_to_arrays(index, self))

    # -- reductions ------------------------------------------------------------------------------
    def sum(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> "Tensor":
        """Sum over ``axis`` (all axes when None)."""
        return ops.Sum.apply(self, axis=normalize_axis(axis, self.ndim), keepdims=keepdims)

    def mean(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> "Tensor":
        """Mean over ``axis``: sum / n."""
        return ops.Mean.apply(self, axis=normalize_axis(axis, self.ndim), keepdims=keepdims)

    def max(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> "Tensor":
        """Maximum over ``axis``; ties share the gradient equally."""
        return ops.Max.apply(self, axis=normalize_axis(axis, self.ndim), keepdims=keepdims)

    def var(self, axis: int | Sequence[int] | None = None, keepdims: bool = False, ddof: int = 0) -> "Tensor":
        """Variance mean((x - mean(x))^2) * n / (n - ddof) over ``axis``."""
        return ops.Var.apply(self, axis=normalize_axis(axis, self.ndim), keepdims=keepdims, ddof=ddof)

    # -- elementwise -----------------------------------------------------------------------------
    def exp(self) -> "Tensor":
        """e^x elementwise."""
        return ops.Exp.apply(self)

    def log(self) -> "Tensor":
        """Natural logarithm ln x elementwise."""
        return ops.Log.apply(self)

    def sqrt(self) -> "Tensor":
        """sqrt(x) elementwise."""
        return ops.Sqrt.apply(self)

    def tanh(self) -> "Tensor":
        """tanh x = (e^x - e^-x) / (e^x + e^-x) elementwise."""
        return ops.Tanh.apply(self)

    def relu(self) -> "Tensor":
        """max(x, 0) elementwise."""
        return ops.Relu.apply(self)

    def sigmoid(self) -> "Tensor":
        """1 / (1 + e^-x) elementwise."""
        return ops.Sigmoid.apply(self)

    def abs(self) -> "Tensor":
        """|x| elementwise (gradient sign(x), 0 at 0)."""
        return ops.Abs.apply(self)

    __abs__ = abs

    # -- shape -----------------------------------------------------------------------------------
    def reshape(self, *shape: Any) -> "Tensor":
        """Same data, new shape (one dimension may be -1)."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return shape_ops.Reshape.apply(self, shape=tuple(int(s) for s in shape))

    def transpose(self, *axes: Any) -> "Tensor":
        """Permute axes like ``numpy.transpose``; no axes reverses them."""
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        if not axes:
            axes = tuple(reversed(range(self.ndim)))
        if sorted(a % self.ndim for a in axes) != list(range(self.ndim)):
            raise ValueError(f"transpose: axes {axes} are not a permutation of the {self.ndim} axes "
                             f"of shape {self.shape}")
        return shape_ops.Transpose.apply(self, axes=tuple(a % self.ndim for a in axes))

    permute = transpose

    @property
    def T(self) -> "Tensor":
        """All axes reversed, as in NumPy."""
        return self.transpose()

    def flatten(self) -> "Tensor":
        """The values as one axis: ``reshape(-1)``."""
        return self.reshape(-1)



def install_operators() -> None:
    """Attach every method and property of ``TensorOperators`` to ``Tensor`` (idempotent)."""
    for name, member in vars(TensorOperators).items():
        if callable(member) or isinstance(member, property):  # skips __doc__, __module__, __dict__
            setattr(Tensor, name, member)
