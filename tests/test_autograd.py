"""The backward walk (minilora/autograd.py): what the graph keeps, what it checks, how it reduces."""

import gc
import weakref

import numpy as np
import pytest

import minilora as ml
from minilora.engine.autograd import unbroadcast


@pytest.mark.parametrize("grad_shape,shape,expected", [
    ((4, 3, 5), (3, 1), np.full((3, 1), 20.0)),  # a leading axis added, and an axis of size 1 stretched
    ((2, 3), (3,), np.full(3, 2.0)),
    ((2, 3), (2, 3), np.ones((2, 3))),
    ((2, 3), (), np.array(6.0)),
])
def test_unbroadcast_sums_back_to_the_input_shape(grad_shape, shape, expected):
    np.testing.assert_array_equal(unbroadcast(np.ones(grad_shape), shape), expected)


def test_frozen_inputs_are_not_kept_alive_by_the_graph(device):
    """A tensor that needs no gradient and that no op saved is freed as soon as the user drops it."""
    w = ml.randn((8, 8), rng=0, device=device, requires_grad=True)
    frozen = ml.randn((8, 8), rng=1, device=device)  # e.g. the output of a frozen base layer
    out = (frozen + w).sum()
    freed = weakref.ref(frozen)
    del frozen
    gc.collect()
    assert freed() is None
    out.backward()
    np.testing.assert_array_equal(ml.Tensor(w.grad).numpy(), np.ones((8, 8), np.float32))


def test_a_root_gradient_takes_the_roots_dtype():
    x = ml.tensor([1.0, 2.0, 3.0], requires_grad=True)  # float32
    (x * 2.0).backward(ml.tensor(np.ones(3)))  # a float64 upstream gradient
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad, [2.0, 2.0, 2.0])


def test_comparing_tensors_on_two_devices_names_both(device):
    if device == "cpu":
        pytest.skip("needs a second device")
    with pytest.raises(RuntimeError, match="different devices"):
        ml.tensor([1.0]) == ml.tensor([1.0], device=device)
