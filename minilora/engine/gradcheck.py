"""Finite-difference gradient checking: the test that every backward() formula must pass.

For a function f of tensors, the analytic gradient from ``backward()`` is compared with the
central difference  df/dx_i ≈ (f(x + eps e_i) - f(x - eps e_i)) / (2 eps),  which has error O(eps²).
Non-scalar outputs are reduced to a scalar with fixed random weights, L = sum(w * f(x)), so every
output element takes part.  Inputs must be float64: in float32 the rounding error of f swamps
the difference quotient.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from minilora import backend
from minilora.engine.tensor import Tensor, no_grad

__all__ = ["gradcheck"]


def _scalar_loss(out: Tensor, weights: Any) -> Tensor:
    return out if weights is None else (out * Tensor(weights)).sum()


def gradcheck(fn: Callable[..., Tensor], *inputs: Tensor, eps: float = 1e-6, atol: float = 1e-5,
              rtol: float = 1e-3, seed: int = 0) -> bool:
    """Check ``fn``'s analytic gradients against central differences; True or AssertionError.

    Passes when |analytic - numeric| <= atol + rtol * |numeric| for every element of every input
    that requires grad.  On failure the error names the input, the worst index and both values.
    The checked inputs' ``.grad`` is overwritten with the analytic gradient; their values are
    nudged in place during the check and restored exactly afterwards.
    """
    checked = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True, so there is nothing to check")
    for i in checked:
        if inputs[i].dtype != np.float64:
            raise TypeError(f"gradcheck: input {i} has dtype {inputs[i].dtype}; finite differences need float64 inputs")

    out = fn(*inputs)
    weights = None
    if out.size != 1:
        host = np.random.default_rng(seed).standard_normal(out.shape).astype(out.dtype)
        weights = backend.to_device(host, out.device)
    for i in checked:
        inputs[i].grad = None
    _scalar_loss(out, weights).backward()

    for i in checked:
        x = inputs[i]
        analytic = backend.to_host(x.grad) if x.grad is not None else np.zeros(x.shape)
        numeric = np.zeros(x.shape)
        with no_grad():
            for j in np.ndindex(x.shape):  # index x.data itself: a reshape of a non-contiguous array is a copy
                original = x.data[j].item()
                x.data[j] = original + eps
                plus = _scalar_loss(fn(*inputs), weights).item()
                x.data[j] = original - eps
                minus = _scalar_loss(fn(*inputs), weights).item()
                x.data[j] = original
                numeric[j] = (plus - minus) / (2 * eps)
        error = np.abs(analytic - numeric) - (atol + rtol * np.abs(numeric))
        if (error > 0).any():
            worst = np.unravel_index(int(np.argmax(error)), x.shape) if x.ndim else ()
            raise AssertionError(
                f"gradcheck failed for input {i} (shape {x.shape}) at index {tuple(int(k) for k in worst)}: "
                f"analytic {analytic[worst]:.8g} vs numeric {numeric[worst]:.8g} "
                f"(|diff| {abs(analytic[worst] - numeric[worst]):.3g} > atol {atol} + rtol {rtol} * |numeric|)"
            )
    return True
