"""Checks for notebook 01, autograd from scratch: a Function of your own, the adjoint of broadcasting, a fan-out."""

from __future__ import annotations

from typing import Any

import numpy as np

import minilora as ml
from checks import NotYet, exercise, expect_close
from minilora.engine.autograd import unbroadcast


@exercise("01")
def Softplus(answer: Any) -> str:
    """Softplus.apply(x) = log(1 + eˣ) elementwise, and its backward passes gradcheck in float64."""
    if not (isinstance(answer, type) and issubclass(answer, ml.Function)):
        raise NotYet(f"Softplus should be a subclass of ml.Function, got {answer!r}")
    host = np.random.default_rng(0).normal(0.0, 2.0, (3, 4))
    x = ml.tensor(host, requires_grad=True)
    out = answer.apply(x)
    if not isinstance(out, ml.Tensor):
        raise NotYet(f"Softplus.apply returned {type(out).__name__}; forward must return an array")
    expect_close("Softplus forward", out.numpy(), np.logaddexp(0.0, host))
    try:
        ml.gradcheck(answer.apply, x)
    except AssertionError as err:
        raise NotYet(f"the forward is right but backward disagrees with finite differences: {err}") from None
    return "Softplus computes log(1 + eˣ) and its backward (the sigmoid times g) passes gradcheck"


@exercise("01")
def sum_to(answer: Any) -> str:
    """sum_to(grad, shape) reduces a broadcast gradient back to ``shape`` (what the engine's unbroadcast does)."""
    rng = np.random.default_rng(1)
    cases = [((4, 3, 5), (3, 1)), ((2, 3), (3,)), ((2, 3), (1, 3)), ((2, 3), (2, 1)), ((2, 3), (2, 3)),
             ((5, 1, 4), (1,)), ((2, 3), ())]
    for grad_shape, shape in cases:
        grad = rng.normal(size=grad_shape)
        got = answer(grad.copy(), shape)
        expect_close(f"sum_to(grad of shape {grad_shape}, {shape})", got, unbroadcast(grad, shape), atol=1e-12)
    return (f"sum_to reduces gradients correctly in all {len(cases)} cases (leading axes summed, "
            "size-1 axes summed with keepdims)")


@exercise("01")
def fanout_grads(answer: Any) -> str:
    """fanout_grads(a, b) = (∂y/∂a, ∂y/∂b) for y = Σ(a·b + a²), worked out by hand (a is used twice)."""
    rng = np.random.default_rng(2)
    a_host, b_host = rng.normal(size=(2, 3)), rng.normal(size=(2, 3))
    result = answer(a_host.copy(), b_host.copy())
    if not (isinstance(result, tuple) and len(result) == 2):
        raise NotYet(f"fanout_grads should return a pair (grad_a, grad_b), got {type(result).__name__}")
    a, b = ml.tensor(a_host, requires_grad=True), ml.tensor(b_host, requires_grad=True)
    (a * b + a * a).sum().backward()
    expect_close("grad_a", result[0], a.grad)
    expect_close("grad_b", result[1], b.grad)
    return "∂y/∂a = b + 2a: the two paths through a add up, as backward() accumulates them"
