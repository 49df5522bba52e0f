"""Checks for notebook 01, autograd from scratch: a stable Function of your own, the adjoint of broadcasting, two
predictions (a gradient accumulated over two backward passes, the forward difference's best step)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

import minilora as ml
from checks import NotYet, exercise, expect_close
from minilora.engine.autograd import unbroadcast


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -x))  # 1 / (1 + e⁻ˣ) without overflow


@exercise("01")
def Softplus(answer: Any) -> str:
    """Softplus.apply(x) = log(1 + eˣ) elementwise, finite and right for |x| up to 800, and its backward passes
    gradcheck in float64 and is finite and right (g · σ(x)) at large |x|."""
    if not (isinstance(answer, type) and issubclass(answer, ml.Function)):
        raise NotYet(f"Softplus should be a subclass of ml.Function, got {answer!r}")
    with np.errstate(all="ignore"):  # an overflowing answer is reported below, not as a warning in the notebook
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
        # at x = ±12 softplus is still 6e-6 away from max(x, 0): a cut-off at |x| = 10 is wrong there
        big_host = np.array([-800.0, -40.0, -12.0, 12.0, 40.0, 800.0])
        big = ml.tensor(big_host, requires_grad=True)
        values = answer.apply(big)
        forward = values.numpy()
        if not np.all(np.isfinite(forward)):
            raise NotYet(f"Softplus forward at x = {big_host.tolist()} gives {forward.tolist()}: eˣ overflows float64 "
                         "for x above about 709; rewrite log(1 + eˣ) so that exp is only ever taken of a number ≤ 0")
        try:
            expect_close(f"Softplus forward at x = {big_host.tolist()}", forward, np.logaddexp(0.0, big_host))
        except NotYet as wrong:
            raise NotYet(f"{wrong}; hint: softplus(−12) = 6.1e-6, not 0 — if you replaced log(1 + eˣ) by max(x, 0) "
                         "beyond some |x|, rewrite it exactly instead (exp of a number ≤ 0 never overflows)") from None
        upstream = np.array([0.5, -1.0, 1.5, -0.5, 2.0, 3.0])
        (values * ml.tensor(upstream)).sum().backward()
        grad = big.grad
        if grad is None or not np.all(np.isfinite(grad)):
            shown = grad if grad is None else grad.tolist()
            raise NotYet(f"Softplus backward at x = {big_host.tolist()} gives {shown}: "
                         "an exponential overflows to inf there (and inf/inf is nan); write σ(x) in a form that "
                         "stays finite for every x")
        expect_close(f"Softplus backward at x = {big_host.tolist()}", grad, upstream * _sigmoid(big_host))
    return ("Softplus computes log(1 + eˣ) for every x, and its backward (g · σ(x)) passes gradcheck and stays "
            "finite at x = ±800")


@exercise("01")
def sum_to(answer: Any) -> str:
    """sum_to(grad, shape) reduces a broadcast gradient back to ``shape`` (what the engine's unbroadcast does)."""
    rng = np.random.default_rng(1)
    cases = [((4, 3, 5), (3, 1)), ((2, 3), (3,)), ((2, 3), (1, 3)), ((2, 3), (2, 1)), ((2, 3), (2, 3)),
             ((5, 1, 4), (1,)), ((2, 3), ()), ((3, 3), (3, 1))]
    for grad_shape, shape in cases:
        grad = rng.normal(size=grad_shape)
        got = answer(grad.copy(), shape)
        expect_close(f"sum_to(grad of shape {grad_shape}, {shape})", got, unbroadcast(grad, shape), atol=1e-12)
    return (f"sum_to reduces gradients correctly in all {len(cases)} cases (leading axes summed, "
            "size-1 axes summed with keepdims)")


@exercise("01")
def predicted_a_grad(answer: Any) -> str:
    """predicted_a_grad(a, b) = a.grad after backward() of Σ(a·b + a²) and then of Σ(a·a·b), without zero_grad."""
    rng = np.random.default_rng(2)
    a_host, b_host = rng.normal(size=(2, 3)), rng.normal(size=(2, 3))
    got = answer(a_host.copy(), b_host.copy())
    a, b = ml.tensor(a_host, requires_grad=True), ml.tensor(b_host, requires_grad=True)
    (a * b + a**2).sum().backward()
    first = a.grad.copy()
    (a * a * b).sum().backward()
    try:
        expect_close("your a.grad", got, a.grad)
    except NotYet as wrong:
        got = np.asarray(got, dtype=np.float64)
        if got.shape == first.shape and (np.allclose(got, first) or np.allclose(got, a.grad - first)):
            raise NotYet(f"{wrong}; hint: your answer is the gradient of one of the two backward passes — "
                         "what does a.grad do between two backward() calls?") from None
        raise NotYet(f"{wrong}; hint: in each expression count every place where a is used (a·a uses it twice), "
                     "and each path contributes its own term") from None
    return "a.grad = (b + 2a) + 2ab: each use of a adds a term, and the second backward() adds to the first"


def _forward_difference_best_eps() -> float:
    """The step that minimises the forward difference's error for sin in float64, on a grid of 1/10-decade steps,
    from the error averaged (geometrically) over 40 points x in [0.5, 1.5] (one point's curve is ragged)."""
    steps = np.logspace(-13, -2, 111)
    xs = np.linspace(0.5, 1.5, 40)[:, None]
    errors = np.abs((np.sin(xs + steps) - np.sin(xs)) / steps - np.cos(xs)) + 1e-300
    return float(steps[np.argmin(np.log(errors).mean(axis=0))])


DECADES = 0.6  # how far (in powers of ten) a prediction may sit from the measured best step


@exercise("01")
def forward_difference_best_eps(answer: Any) -> str:
    """A prediction: the step ε, within about half a decade (a factor of 4), where (sin(x + ε) − sin(x)) / ε is most
    accurate: a power of ten one decade off is ten times less accurate there, so it is not the answer."""
    if isinstance(answer, bool) or not isinstance(answer, (int, float)) or not answer > 0:
        raise NotYet(f"forward_difference_best_eps should be a positive number such as 1e-3, got {answer!r}")
    best = _forward_difference_best_eps()
    decades = math.log10(answer / best)
    if decades > DECADES:
        raise NotYet(f"ε = {answer:.0e} is too large: there the truncation error (order ε) still dominates; "
                     "balance it against the rounding error u/ε with float64's u ≈ 1.1e-16")
    if decades < -DECADES:
        raise NotYet(f"ε = {answer:.0e} is too small: there the rounding error (order u/ε) dominates; "
                     "balance it against the truncation error, which is of order ε here, not ε²")
    return (f"the measured best ε is {best:.0e} (about √u, u ≈ 1.1e-16): smaller than the central difference's "
            "∛u, because a first-order truncation error is larger at the same ε")
