"""Solutions to the exercises of 01_autograd_from_scratch (try them yourself first)."""

import numpy as np

import minilora as ml
from minilora.backend import get_xp


class Softplus(ml.Function):
    """y = log(1 + eˣ);  ∂L/∂x = g · σ(x) with σ(x) = 1 / (1 + e⁻ˣ).

    Both written so that exp only ever sees a number ≤ 0: log(1 + eˣ) = max(x, 0) + log(1 + e^{−|x|}) (what
    ``logaddexp(0, x)`` computes) and σ(x) = exp(−softplus(−x)).
    """

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return get_xp(x).logaddexp(0, x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        xp = get_xp(x)
        return (g * xp.exp(-xp.logaddexp(0, -x)),)


def sum_to(grad: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum the axes broadcasting added in front, then (keeping them) the axes where ``shape`` has size 1."""
    extra = grad.ndim - len(shape)
    grad = grad.sum(axis=tuple(range(extra)))
    ones = tuple(i for i, n in enumerate(shape) if n == 1)
    return grad.sum(axis=ones, keepdims=True)


def predicted_a_grad(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """First pass Σ(a·b + a²): b + 2a (two uses of a). Second pass Σ(a·a·b): 2ab (a used twice again).
    No zero_grad in between, so a.grad holds the sum."""
    return (b + 2 * a) + 2 * a * b


forward_difference_best_eps = 1e-8
"""Truncation ≈ ε|f''|/2 and rounding ≈ 2u|f|/ε balance at ε* = 2√(u|f|/|f''|) ≈ 2√u ≈ 2e-8 for sin near 1."""


# Common mistakes: tests/test_tutorials.py checks that each one fails its check.
class _SoftplusNaive(Softplus):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.log(1 + np.exp(x))  # e^800 = inf: the forward overflows for large x


class _SoftplusWrongBackward(Softplus):
    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return (g * x,)  # not the derivative of softplus


class _SoftplusForgetsG(Softplus):
    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return (np.exp(-np.logaddexp(0, -x)),)  # σ(x) alone: the upstream gradient g is dropped


class _SoftplusUnstableBackward(Softplus):
    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return (g * np.exp(x) / (1 + np.exp(x)),)  # right for moderate x, inf/inf = nan at x = 800


class _SoftplusSignFlipped(Softplus):
    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return (g * np.exp(-np.logaddexp(0, x)),)  # σ(−x) instead of σ(x)


class _SoftplusReluTails(Softplus):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        inner = np.log1p(np.exp(np.clip(x, -10, 10)))
        return np.where(x > 10, x, np.where(x < -10, 0.0, inner))  # max(x, 0) beyond |x| = 10: 6e-6 off at x = −12


MISTAKES = {
    "Softplus": [_SoftplusNaive, _SoftplusWrongBackward, _SoftplusForgetsG, _SoftplusUnstableBackward,
                 _SoftplusSignFlipped, _SoftplusReluTails],
    "sum_to": [
        lambda grad, shape: grad.sum(axis=tuple(range(grad.ndim - len(shape)))),  # size-1 axes not summed
        # size-1 axes summed but dropped (no keepdims): (3, 5) comes back as (3,)
        lambda grad, shape: grad.sum(axis=tuple(range(grad.ndim - len(shape)))).sum(
            axis=tuple(i for i, n in enumerate(shape) if n == 1)),
        # the mean instead of the sum: the adjoint of copying is summing
        lambda grad, shape: sum_to(grad, shape) * np.prod(shape, dtype=float) / grad.size,
        # shapes aligned from the left: trailing axes summed instead of the leading ones
        lambda grad, shape: grad.sum(axis=tuple(range(len(shape), grad.ndim))),
    ],
    "predicted_a_grad": [
        lambda a, b: 2 * a * b,  # only the second backward(): gradients accumulate
        lambda a, b: (b + 2 * a) + a * b,  # a·a·b counted with one use of a
        lambda a, b: (b + a) + 2 * a * b,  # d(a²)/da taken as a
        lambda a, b: b + 2 * a,  # only the first backward()
    ],
    "forward_difference_best_eps": [
        1e-6,  # gradcheck's ε, the central difference's choice (∛u)
        1e-16,  # machine epsilon itself: rounding dominates
        1e-11,  # where the central difference's error is smallest, not the best step
        1e-4,  # truncation dominates
        1e-7,  # a decade too large: there the truncation error is still ten times the best error
    ],
}
