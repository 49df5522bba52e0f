"""Tensor and the graph (minilora/tensor.py): creation and dtype rules, backward, no_grad, deep graphs."""

import sys

import numpy as np
import pytest

import minilora as ml
from minilora import backend
from minilora.engine import ops


def _host(array):
    return backend.to_host(array)


# -- creation and dtype rules ---------------------------------------------------------------------


def test_python_floats_become_float32_and_integers_stay_integer(device):
    assert ml.tensor([1.0, 2.0], device=device).dtype == np.float32
    assert ml.tensor(2.5, device=device).dtype == np.float32
    assert ml.tensor([1, 2], device=device).dtype.kind == "i"
    assert ml.tensor([True, False], device=device).dtype == np.bool_


def test_numpy_data_keeps_its_dtype(device):
    assert ml.tensor(np.array([1.0]), device=device).dtype == np.float64
    assert ml.tensor(np.float64(1.0), device=device).dtype == np.float64
    assert ml.tensor(np.array([1], dtype=np.int32), device=device).dtype == np.int32
    assert ml.tensor([1.0], dtype=np.float64, device=device).dtype == np.float64


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_python_scalars_never_promote(dtype, device):
    x = ml.tensor(np.array([1.0, 2.0], dtype=dtype), device=device)
    for y in (x * 2.0, x + 1, 3.0 - x, x / 3, 1.0 / x, x**2, x**0.5, 2.0**x, -x):
        assert y.dtype == dtype and y.device == device


def test_integer_tensors_with_python_scalars(device):
    ids = ml.tensor([1, 2], device=device)
    assert (ids + 1).dtype.kind == "i"
    halves = ids * 0.5  # a float scalar makes floats (NumPy's promotion of the integer dtype)
    assert halves.dtype.kind == "f"
    np.testing.assert_array_equal(halves.numpy(), [0.5, 1.0])


def test_numpy_scalars_follow_the_tensor_to_its_device(device):
    x = ml.tensor(np.array([1.0, 2.0], dtype=np.float32), device=device)
    y = x * np.float32(3.0)
    assert y.device == device and y.dtype == np.float32
    np.testing.assert_array_equal(y.numpy(), [3.0, 6.0])


def test_only_floating_point_tensors_can_require_grad(device):
    with pytest.raises(TypeError, match="int"):
        ml.tensor([1, 2], requires_grad=True, device=device)


def test_creation_functions(device):
    assert ml.zeros((2, 3), device=device).shape == (2, 3)
    assert ml.ones(4, dtype=np.float64, device=device).dtype == np.float64
    np.testing.assert_array_equal(ml.full((2,), 7.0, device=device).numpy(), [7.0, 7.0])
    np.testing.assert_array_equal(ml.arange(2, 5, device=device).numpy(), [2, 3, 4])
    for t in (ml.zeros(1, device=device), ml.randn((2, 2), device=device), ml.rand(3, device=device)):
        assert t.device == device and t.dtype == np.float32
    assert ml.zeros(2, device=device, requires_grad=True).requires_grad


def test_conversions_and_repr(device):
    x = ml.tensor(np.array([[1.5, 2.0]]), device=device)
    host = x.numpy()
    assert isinstance(host, np.ndarray) and host.dtype == np.float64
    assert x.tolist() == [[1.5, 2.0]] and len(x) == 1
    assert x[0, 0].item() == 1.5 and isinstance(x[0, 0].item(), float)
    with pytest.raises(ValueError, match=r"\(1, 2\)"):
        x.item()
    assert "1.5" in repr(x) and ("device" in repr(x)) == (device != "cpu")


def test_as_tensor_returns_tensors_unchanged(device):
    x = ml.ones(2, device=device)
    assert ml.as_tensor(x) is x
    assert ml.as_tensor([1.0], device=device).device == device


def test_to_moves_data_and_gradients_flow_back(device):
    other = "cpu" if device != "cpu" else [d for d in backend.available_devices() if d != "cpu"][0]
    x = ml.tensor(np.array([1.0, 2.0]), requires_grad=True, device=device)
    assert x.to(device) is x
    y = x.to(other)
    assert y.device == other
    (y * y).sum().backward()
    assert backend.device_of(x.grad) == device
    np.testing.assert_array_equal(_host(x.grad), [2.0, 4.0])
    with pytest.raises(ValueError, match="unknown or unavailable device"):
        x.to("tpu")


def test_astype_casts_gradients_back_to_the_input_dtype(device):
    x = ml.tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True, device=device)
    assert x.astype(np.float32) is x
    y = x.double()
    assert y.dtype == np.float64 and y.float().dtype == np.float32
    (y * 3).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(_host(x.grad), [3.0, 3.0])


def test_comparisons_give_boolean_tensors_outside_the_graph(device):
    x = ml.tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True, device=device)
    for mask, expected in ((x > 2.0, [0, 0, 1]), (x >= 2.0, [0, 1, 1]), (x < 2.0, [1, 0, 0]), (x <= x, [1, 1, 1])):
        assert mask.dtype == np.bool_ and not mask.requires_grad and mask.device == device
        np.testing.assert_array_equal(mask.numpy(), expected)
    np.testing.assert_array_equal(x[x > 1.5].numpy(), [2.0, 3.0])


def test_detach_shares_data_but_leaves_the_graph(device):
    x = ml.tensor(np.array([1.0]), requires_grad=True, device=device)
    d = (x * 2).detach()
    assert not d.requires_grad and d._ctx is None
    assert x.detach().data is x.data


def test_host_numpy_arrays_on_the_left_use_the_tensor_operators():
    x = ml.tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = np.array([3.0, 4.0]) * x
    assert isinstance(y, ml.Tensor)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 4.0])


def test_a_tensor_used_twice_gets_both_gradients(device):
    x = ml.tensor(np.array([1.0, -2.0]), requires_grad=True, device=device)
    (x * x + x).sum().backward()  # d/dx (x^2 + x) = 2x + 1
    np.testing.assert_array_equal(_host(x.grad), [3.0, -3.0])


def test_gradients_accumulate_across_backward_calls_until_zeroed(device):
    x = ml.tensor(np.array([1.0, 2.0]), requires_grad=True, device=device)
    for _ in range(2):
        (x * 3).sum().backward()  # a new forward pass each time
    np.testing.assert_array_equal(_host(x.grad), [6.0, 6.0])
    x.zero_grad()
    assert x.grad is None
    (x * x).sum().backward()
    np.testing.assert_array_equal(_host(x.grad), [2.0, 4.0])


def test_leaf_gradient_does_not_alias_other_buffers(device):
    """The first gradient stored on a leaf is its own copy: later += must not change anything else."""
    x = ml.tensor(np.array([1.0]), requires_grad=True, device=device)
    y = ml.tensor(np.array([1.0]), requires_grad=True, device=device)
    (x + y).sum().backward()  # Add hands the same array to both inputs
    x.grad += 10
    np.testing.assert_array_equal(_host(y.grad), [1.0])


def test_graph_is_freed_after_backward(device):
    x = ml.tensor(np.array([1.0, 2.0]), requires_grad=True, device=device)
    loss = (x.exp() * 2).sum()
    loss.backward()
    assert loss._ctx.inputs is None and loss._ctx.saved_tensors == ()
    with pytest.raises(RuntimeError, match="already freed.*forward again"):
        loss.backward()


def test_backward_errors_are_clear(device):
    with pytest.raises(RuntimeError, match="does not require grad"):
        ml.ones(1, device=device).sum().backward()
    x = ml.ones((2, 3), device=device, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"single-element.*\(2, 3\)"):
        (x * 2).backward()
    with pytest.raises(ValueError, match=r"\(3,\).*\(2, 3\)"):
        (x * 2).backward(np.ones(3))


def test_backward_with_an_explicit_output_gradient(device):
    x = ml.ones((2, 2), dtype=np.float64, device=device, requires_grad=True)
    (x * 3).backward(np.array([[1.0, 2.0], [3.0, 4.0]]))  # host gradient, moved to the device
    np.testing.assert_array_equal(_host(x.grad), [[3.0, 6.0], [9.0, 12.0]])


def test_only_leaves_receive_grad(device):
    x = ml.tensor(np.array([2.0]), requires_grad=True, device=device)
    hidden = x * 3
    (hidden * hidden).sum().backward()
    assert x.is_leaf and not hidden.is_leaf and hidden.grad is None
    np.testing.assert_array_equal(_host(x.grad), [36.0])


def test_frozen_inputs_get_no_gradient_computed(device, monkeypatch):
    """LoRA's saving: W is frozen, so MatMul.backward is told not to compute dW and returns None."""
    calls = []
    original = ops.MatMul.backward

    def spy(ctx, g):
        grads = original(ctx, g)
        calls.append((ctx.needs_input_grad, grads))
        return grads

    monkeypatch.setattr(ops.MatMul, "backward", staticmethod(spy))
    rng = np.random.default_rng(0)
    x = ml.tensor(rng.standard_normal((4, 3)), device=device)
    w = ml.tensor(rng.standard_normal((3, 2)), device=device)  # frozen
    a = ml.tensor(rng.standard_normal((3, 2)), requires_grad=True, device=device)
    frozen_part = x @ w
    assert not frozen_part.requires_grad and frozen_part._ctx is None  # no node is even recorded
    (frozen_part + (x @ a)).sum().backward()
    assert [needs for needs, _ in calls] == [(False, True)]
    assert calls[0][1][0] is None  # no dx computed
    assert w.grad is None and x.grad is None and a.grad is not None


# -- no_grad --------------------------------------------------------------------------------------


def test_no_grad_builds_no_graph(device):
    x = ml.ones(2, device=device, requires_grad=True)
    with ml.no_grad():
        assert not ml.is_grad_enabled()
        y = x * 2
        with ml.enable_grad():
            z = x * 2
    assert ml.is_grad_enabled()
    assert not y.requires_grad and y._ctx is None
    assert z.requires_grad and z._ctx is not None


def test_no_grad_as_a_decorator(device):
    @ml.no_grad()
    def update(t):
        return t * 2

    y = update(ml.ones(2, device=device, requires_grad=True))
    assert not y.requires_grad and y._ctx is None
    assert ml.is_grad_enabled()


def test_no_grad_restores_the_mode_after_an_exception():
    with pytest.raises(KeyError):
        with ml.no_grad():
            raise KeyError("boom")
    assert ml.is_grad_enabled()


# -- deep graphs: no recursion --------------------------------------------------------------------


@pytest.fixture
def low_recursion_limit():
    """Allow only ~100 more Python frames: any recursive walk over a deep graph would fail."""
    depth, frame = 0, sys._getframe()
    while frame is not None:
        depth, frame = depth + 1, frame.f_back
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + 100)
    yield
    sys.setrecursionlimit(previous)


def test_thirty_layer_mlp_runs_backward(device, low_recursion_limit):
    rng = np.random.default_rng(0)
    x = ml.tensor(rng.standard_normal((4, 8)), device=device)
    layers = [(ml.tensor(rng.standard_normal((8, 8)) / 3, requires_grad=True, device=device),
               ml.tensor(np.zeros(8), requires_grad=True, device=device)) for _ in range(30)]
    h = x
    for weight, bias in layers:
        h = (h @ weight.T + bias).tanh()  # a Linear + tanh layer built from primitive ops
    h.sum().backward()
    for weight, _bias in layers:
        assert weight.grad.shape == (8, 8) and np.isfinite(_host(weight.grad)).all()
    assert np.abs(_host(layers[0][1].grad)).sum() > 0


def test_thousand_op_residual_stack_runs_backward(device, low_recursion_limit):
    x = ml.tensor(np.array([1.0, 2.0]), requires_grad=True, device=device)
    h = x
    for _ in range(1000):
        h = h + h * 0.001  # 2000 ops deep; dh/dx = 1.001^1000
    h.sum().backward()
    np.testing.assert_allclose(_host(x.grad), 1.001**1000, rtol=1e-12)


def test_intermediate_arrays_no_op_saved_are_freed_before_backward(device):
    """The graph keeps what backward needs, not every intermediate: h + 2 needs nothing of h."""
    import gc
    import weakref

    x = ml.randn((64, 64), rng=0, device=device, requires_grad=True)
    h = x + 1.0
    out = (h + 2.0).sum()
    freed = [weakref.ref(h)] + ([weakref.ref(h.data)] if device == "cpu" else [])  # device arrays may refuse weakrefs
    del h
    gc.collect()
    assert all(ref() is None for ref in freed)
    out.backward()
    np.testing.assert_array_equal(ml.Tensor(x.grad).numpy(), np.ones((64, 64), np.float32))


def test_comparisons_are_elementwise_and_truth_needs_one_element(device):
    a = ml.tensor([1.0, 2.0, 3.0], device=device)
    b = ml.tensor([1.0, 0.0, 3.0], device=device)
    assert (a == b).numpy().tolist() == [True, False, True]
    assert (a != b).numpy().tolist() == [False, True, False]
    assert bool(a[1] == 2.0)
    with pytest.raises(ValueError, match="ambiguous"):
        bool(a == b)
    assert {a: 1}[a] == 1  # still hashable by identity


def test_backward_returning_the_wrong_number_of_gradients_is_an_error():
    class Forgetful(ml.Function):
        @staticmethod
        def forward(ctx, a, b):
            return a + b

        @staticmethod
        def backward(ctx, g):
            return (g,)  # one gradient for two inputs

    a = ml.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="Forgetful.backward returned 1 gradients for 2 inputs"):
        Forgetful.apply(a, a).sum().backward()
