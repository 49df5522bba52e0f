"""Solutions to the exercises of 01_autograd_from_scratch (try them yourself first)."""

import numpy as np

import minilora as ml
from minilora.backend import get_xp


class Softplus(ml.Function):
    """y = log(1 + eˣ);  ∂L/∂x = g · σ(x) with σ(x) = 1 / (1 + e⁻ˣ)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return get_xp(x).logaddexp(0, x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        xp = get_xp(x)
        return (g / (1 + xp.exp(-x)),)


def sum_to(grad: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum the axes broadcasting added in front, then (keeping them) the axes where ``shape`` has size 1."""
    extra = grad.ndim - len(shape)
    grad = grad.sum(axis=tuple(range(extra)))
    ones = tuple(i for i, n in enumerate(shape) if n == 1)
    return grad.sum(axis=ones, keepdims=True)


def fanout_grads(a: np.ndarray, b: np.ndarray) -> tuple:
    """y = Σ(a·b + a²):  ∂y/∂a = b + 2a (the two uses of a add up),  ∂y/∂b = a."""
    return b + 2 * a, a.copy()


# Common mistakes, one per exercise: tests/test_tutorials.py checks that each one fails its check.
class _SoftplusWrongBackward(Softplus):
    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return (g * x,)  # not the derivative of softplus


MISTAKES = {
    "Softplus": _SoftplusWrongBackward,
    "sum_to": lambda grad, shape: grad.sum(axis=tuple(range(grad.ndim - len(shape)))),  # size-1 axes not summed
    "fanout_grads": lambda a, b: (b + a, a),  # d(a²)/da taken as a
}
