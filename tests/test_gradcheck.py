"""gradcheck (minilora/gradcheck.py) itself: it must pass right gradients and catch wrong ones."""

import numpy as np
import pytest

import minilora as ml
from minilora.engine.tensor import Function


class WrongSquare(Function):
    """y = x^2 with a deliberately wrong backward (3x instead of 2x)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return (3 * x * g,)


class WrongSecondInput(Function):
    """y = a * b whose gradient for b is wrong at one element only (the last)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        db = g * a
        db[-1, -1] += 0.5
        return g * b, db


def _x(shape, device, requires_grad=True, dtype=np.float64):
    values = np.random.default_rng(0).uniform(0.5, 1.5, shape).astype(dtype)
    return ml.tensor(values, requires_grad=requires_grad, device=device)


def test_correct_gradients_pass(device):
    assert ml.gradcheck(lambda a, b: (a @ b).tanh(), _x((2, 3), device), _x((3, 2), device), rtol=1e-5)


def test_wrong_gradient_fails_naming_input_and_index(device):
    with pytest.raises(AssertionError, match=r"input 0 \(shape \(2, 2\)\) at index \(\d, \d\): analytic .* numeric"):
        ml.gradcheck(WrongSquare.apply, _x((2, 2), device))


def test_wrong_gradient_of_one_element_of_a_later_input_is_found(device):
    """Non-scalar outputs are weighted randomly, so a single wrong element cannot hide."""
    with pytest.raises(AssertionError, match=r"input 1 \(shape \(2, 3\)\) at index \(1, 2\)"):
        ml.gradcheck(WrongSecondInput.apply, _x((2, 3), device), _x((2, 3), device))


def test_inputs_without_requires_grad_are_not_checked(device):
    """Only the frozen input has the wrong gradient formula, so the check passes."""
    assert ml.gradcheck(WrongSecondInput.apply, _x((2, 3), device), _x((2, 3), device, requires_grad=False))


def test_float32_inputs_are_rejected(device):
    with pytest.raises(TypeError, match="input 0 has dtype float32.*float64"):
        ml.gradcheck(lambda x: x * 2, _x(3, device, dtype=np.float32))


def test_nothing_to_check_is_an_error(device):
    with pytest.raises(ValueError, match="requires_grad"):
        ml.gradcheck(lambda x: x * 2, _x(3, device, requires_grad=False))


def test_inputs_are_restored_after_checking(device):
    x = _x((2, 3), device)
    before = x.numpy()
    ml.gradcheck(lambda t: (t * t).sum(), x)
    np.testing.assert_array_equal(x.numpy(), before)


def test_non_contiguous_inputs_are_perturbed_too():
    """A transposed array cannot be flattened as a view; the check must perturb the input itself."""
    x = ml.tensor(np.arange(1.0, 7.0).reshape(2, 3).T, requires_grad=True)
    assert not x.data.flags["C_CONTIGUOUS"]
    assert ml.gradcheck(lambda t: (t * t).sum(), x)
