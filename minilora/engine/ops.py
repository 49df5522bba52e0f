"""Primitive differentiable operations: one ``Function`` subclass per primitive.

Each works on raw arrays (``Array``: a NumPy or CuPy ndarray, see engine/tensor.py).  ``forward``
computes y = f(x...) and saves what ``backward`` needs; ``backward(ctx, g)`` receives g = dL/dy and
returns dL/dx_i = (dy/dx_i)^T g for each input, skipping inputs with ``ctx.needs_input_grad[i] == False``.
Gradients may keep a broadcast shape: the engine sums them back to each input's shape (``tensor.unbroadcast``).
A backward never modifies ``g`` in place (it may be shared by several inputs).
"""

from __future__ import annotations

import numpy as np

from minilora import backend
from minilora.engine.tensor import Array, Function, unbroadcast

# ---------------------------------------------------------------------------------------------
# arithmetic
# ---------------------------------------------------------------------------------------------


class Add(Function):
    """y = a + b (broadcasting); da = g, db = g."""

    @staticmethod
    def forward(ctx: Function, a: Array, b: Array) -> Array:
        return a + b

    @staticmethod
    def backward(ctx: Function, g: Array) -> tuple[Array | None, ...]:
        return g, g


class Sub(Function):
    """y = a - b; da = g, db = -g."""

    @staticmethod
    def forward(ctx: Function, a: Array, b: Array) -> Array:
        return a - b

    @staticmethod
    def backward(ctx: Function, g: Array) -> tuple[Array | None, ...]:
        return g, (-g if ctx.needs_input_grad[1] else None)


class Mul(Function):
    """y = a * b; da = g * b, db = g * a."""

    @staticmethod
    def forward(ctx: Function, a: Array, b: Array) -> Array:
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx: Function, g: Array) -> tuple[Array | None, ...]:
        a, b = ctx.saved_tensors
        da = g * b if ctx.needs_input_grad[0] else None
        db = g * a if ctx.needs_input_grad[1] else None
        return da, db


class Div(Function):
    """y = a / b; da = g / b, db = -g * a / b^2."""

    @staticmethod
    def forward(ctx: Function, a: Array, b: Array) -> Array:
        ctx.save_for_backward(a, b)
        return a / b

    @staticmethod
    def backward(ctx: Function, g: Array) -> tuple[Array | None, ...]:
        a, b = ctx.saved_tensors
        da = g / b if ctx.needs_input_grad[0] else None
        db = -g * a / (b * b) if ctx.needs_input_grad[1] else None
        return da, db


class Neg(Function):
    """y = -x; dx = -g."""

    @staticmethod
    def forward(ctx: Function, x: Array) -> Array:
        return -x

    @staticmethod
    def backward(ctx: Function, g: Array) -> tuple[Array | None, ...]:
        return (-g,)


class PowScalar(Function):
    """y = x^p for a constant exponent p; dx = g * p * x^(p-1)."""

    @staticmethod
    def forward(ctx: Function, x: Array, exponent: float) -> Array:
        ctx.save_for_backward(x)
        ctx.exponent = exponent
        return x**exponent

    @staticmethod
    def backward(ctx: Function, g: Array) -> tuple[Array | None, ...]:
        (x,) = ctx.saved_tensors
        p = ctx.exponent
        return (g * (p * x ** (p - 1)),)


class Pow(Function):
    """y = a^b for tensors; da = g * b * a^(b-1), db = g * y * log(a) (a > 0)."""

    @staticmethod
    def forward(ctx: Function, a: Array, b: Array) -> Array:
        y = a**b
        ctx.save_for_backward(a, b, y)
        return y

    @staticmethod
    def backward(ctx: Function, g: Array) -> tuple[Array | None, ...]:
        a, b, y = ctx.saved_tensors
        xp = backend.get_xp(a)
        da = g * b * a ** (b - 1) if ctx.needs_input_grad[0] else None
        db = None
        if ctx.needs_input_grad[1]:
            safe_log = xp.log(xp.where(a > 0, a, xp.ones_like(a)))
            db = g * y * safe_log
        return da, db


class MatMul(Function):
    """y = a @ b (batched, broadcasting, 1-D operands as in NumPy); da = g @ b^T, db = a^T @ g."""

    @staticmethod
    def forward(ctx: Function, a: Array, b: Array) -> Array:
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(f"matmul: operands must have at least one dimension, got shapes {a.shape} and {b.shape}")
        k_a = a.shape[-1]
        k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
        if k_a != k_b:
            raise ValueError(
                f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} are not aligned: "
                f"a's last axis has {k_a} but b's {'only' if b.ndim == 1 else 'second-to-last'} axis has {k_b}"
            )
        ctx.save_for_backward(a, b)
        return a @ b

    @staticmethod
    def backward(ctx: Function, g: Array) -> tuple[Array | None, ...]:
        a, b = ctx.saved_tensors
        a2 = a[None, :] if a.ndim == 1 else a  # promote 1-D operands to matrices, as NumPy does
        b2 = b[:, None] if b.ndim == 1 else b
        if b.ndim == 1:
            g = g[..., None]
        if a.ndim == 1:
            g = g[..., None, :]
        da = db = None
        if ctx.needs_input_grad[0]:
            da = g @ b2.swapaxes(-1, -2)
            if a.ndim == 1:
                da = unbroadcast(da, a2.shape).reshape(a.shape)
        if ctx.needs_input_grad[1] and b.ndim == 2 and a2.ndim > 2:
            # a batch of inputs times one matrix: fold the batch into rows, one 2-D matmul
            db = a2.reshape(-1, a2.shape[-1]).T @ g.reshape(-1, g.shape[-1])
        elif ctx.needs_input_grad[1]:
            db = a2.swapaxes(-1, -2) @ g
            if b.ndim == 1:
                db = unbroadcast(db, b2.shape).reshape(b.shape)
        return da, db


# ---------------------------------------------------------------------------------------------
# elementwise functions
# ---------------------------------------------------------------------------------------------


class Exp(Function):
    """y = e^x; dx = g * y."""

    @staticmethod
    def forward(ctx: Function, x: Array) -> Array:
        y = backend.get_xp(x).exp(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Function, g: Array) -> tuple[Array | None, ...]:
        (y,) = ctx.saved_tensors
        return (g * y,)


class Log(Function):
    """y = ln x; dx = g / x."""

    @staticmethod
    def forward(ctx: Function, x: Array) -> Array:
        ctx.save_for_backward(x)
        return backend.get_xp(x).log(x)

    @staticmethod
    def backward(ctx: Function, g: Array) -> tuple[Array | None, ...]:
        (x,) = ctx.saved_tensors
        return (g / x,)


class Sqrt(Function):
    """y = sqrt(x); dx = g / (2 y)."""

    @staticmethod
    def forward(ctx: Function, x: Array) -> Array:
        y = backend.get_xp(x).sqrt(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Function, g: Array) -> tuple[Array | None, ...]:
        (y,) = ctx.saved_tensors
        return (g / (2 * y),)


class Tanh(Function):
    """y = tanh x; dx = g * (1 - y^2)."""

    @staticmethod
    def forward(ctx: Function, x: Array) -> Array:
        y = backend.get_xp(x).tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Function, g: Array) -> tuple[Array | None, ...]:
        (y,) = ctx.saved_tensors
        return (g * (1 - y * y),)


class Relu(Function):
    """y = max(x, 0); dx = g * [x > 0]."""

    @staticmethod
    def forward(ctx: Function, x: Array) -> Array:
        y = backend.get_xp(x).maximum(x, 0)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Function, g: Array) -> tuple[Array | None, ...]:
        (y,) = ctx.saved_tensors
        return (g * (y > 0),)


class Sigmoid(Function):
    """y = 1 / (1 + e^-x); dx = g * y * (1 - y)."""

    @staticmethod
    def forward(ctx: Function, x: Array) -> Array:
        xp = backend.get_xp(x)
        # stable for large |x|: e^-|x| never overflows
        z = xp.exp(-xp.abs(x))
        y = xp.where(x >= 0, 1 / (1 + z), z / (1 + z))
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Function, g: Array) -> tuple[Array | None, ...]:
        (y,) = ctx.saved_tensors
        return (g * y * (1 - y),)


class Abs(Function):
    """y = |x|; dx = g * sign(x)."""

    @staticmethod
    def forward(ctx: Function, x: Array) -> Array:
        ctx.save_for_backward(x)
        return backend.get_xp(x).abs(x)

    @staticmethod
    def backward(ctx: Function, g: Array) -> tuple[Array | None, ...]:
        (x,) = ctx.saved_tensors
        return (g * backend.get_xp(x).sign(x),)


class Cast(Function):
    """y = x converted to another dtype; dx = g converted back."""

    @staticmethod
    def forward(ctx: Function, x: Array, dtype: np.dtype) -> Array:
        ctx.dtype_in = x.dtype
        return x.astype(dtype)

    @staticmethod
    def backward(ctx: Function, g: Array) -> tuple[Array | None, ...]:
        return (g.astype(ctx.dtype_in),)


class ToDevice(Function):
    """y = x copied to another device; dx = g copied back."""

    @staticmethod
    def forward(ctx: Function, x: Array, device: str) -> Array:
        ctx.device_in = backend.device_of(x)
        return backend.to_device(x, device)

    @staticmethod
    def backward(ctx: Function, g: Array) -> tuple[Array | None, ...]:
        return (backend.to_device(g, ctx.device_in),)


# ---------------------------------------------------------------------------------------------
# reductions
# ---------------------------------------------------------------------------------------------


def _expand_reduced(g: Array, shape: tuple[int, ...], axis: tuple[int, ...] | None, keepdims: bool) -> Array:
    """Give a reduced gradient back the reduced axes (size 1) so it broadcasts against the input."""
    if keepdims or axis is None and g.ndim == len(shape):
        return g
    if axis is None:
        return g.reshape((1,) * len(shape))
    return backend.get_xp(g).expand_dims(g, axis)


class Sum(Function):
    """y = sum of x over ``axis``; dx = g broadcast back to x's shape."""

    @staticmethod
    def forward(ctx: Function, x: Array, axis: tuple[int, ...] | None, keepdims: bool) -> Array:
        ctx.shape, ctx.axis, ctx.keepdims = x.shape, axis, keepdims
        return x.sum(axis=axis, keepdims=keepdims)

    @staticmethod
    def backward(ctx: Function, g: Array) -> tuple[Array | None, ...]:
        g = _expand_reduced(g, ctx.shape, ctx.axis, ctx.keepdims)
        return (backend.get_xp(g).broadcast_to(g, ctx.shape),)


def _count(shape: tuple[int, ...], axis: tuple[int, ...] | None) -> int:
    return int(np.prod(shape if axis is None else [shape[a] for a in axis]))


class Mean(Function):
    """y = sum(x) / n over ``axis``; dx = g / n broadcast back."""

    @staticmethod
    def forward(ctx: Function, x: Array, axis: tuple[int, ...] | None, keepdims: bool) -> Array:
        ctx.shape, ctx.axis, ctx.keepdims = x.shape, axis, keepdims
        return x.mean(axis=axis, keepdims=keepdims)

    @staticmethod
    def backward(ctx: Function, g: Array) -> tuple[Array | None, ...]:
        g = _expand_reduced(g, ctx.shape, ctx.axis, ctx.keepdims) / _count(ctx.shape, ctx.axis)
        return (backend.get_xp(g).broadcast_to(g, ctx.shape),)


class Max(Function):
    """y = max of x over ``axis``; dx = g * [x == y] / (number of ties)."""

    @staticmethod
    def forward(ctx: Function, x: Array, axis: tuple[int, ...] | None, keepdims: bool) -> Array:
        y = x.max(axis=axis, keepdims=True)
        ctx.save_for_backward(x, y)
        ctx.shape, ctx.axis, ctx.keepdims = x.shape, axis, keepdims
        if keepdims:
            return y
        return y.reshape(()) if axis is None else y.squeeze(axis=axis)

    @staticmethod
    def backward(ctx: Function, g: Array) -> tuple[Array | None, ...]:
        x, y = ctx.saved_tensors
        g = _expand_reduced(g, ctx.shape, ctx.axis, ctx.keepdims)
        winners = (x == y).astype(x.dtype)
        winners /= winners.sum(axis=ctx.axis, keepdims=True)
        return (g * winners,)


class Var(Function):
    """y = sum((x - mean)^2) / (n - ddof) over ``axis``; dx = g * 2 (x - mean) / (n - ddof)."""

    @staticmethod
    def forward(ctx: Function, x: Array, axis: tuple[int, ...] | None, keepdims: bool, ddof: int) -> Array:
        centered = x - x.mean(axis=axis, keepdims=True)
        n = _count(x.shape, axis)
        if n - ddof <= 0:
            raise ValueError(f"var: {n} values with ddof={ddof} leave no degrees of freedom")
        ctx.save_for_backward(centered)
        ctx.shape, ctx.axis, ctx.keepdims, ctx.dof = x.shape, axis, keepdims, n - ddof
        return ((centered * centered).sum(axis=axis, keepdims=keepdims) / (n - ddof)).astype(x.dtype)

    @staticmethod
    def backward(ctx: Function, g: Array) -> tuple[Array | None, ...]:
        (centered,) = ctx.saved_tensors
        g = _expand_reduced(g, ctx.shape, ctx.axis, ctx.keepdims)
        return (g * centered * (2.0 / ctx.dof),)
