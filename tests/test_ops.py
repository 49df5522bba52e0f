"""Primitive ops (minilora/engine/ops.py): forward values, finite-difference gradients, dtypes, errors.

Every Function in ops.py has at least one gradient case (``@case``, a registry from tests/gradcases.py);
``test_every_op_has_a_gradient_case`` fails when a new Function is added without one.  Each case is checked
in float64 against central differences and, in float32, for gradients that keep float32.
"""

import numpy as np
import pytest
from gradcases import GradCases, Maker, assert_typed_with_the_array_alias, check_float32_case, check_gradient_case
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minilora as ml
import minilora.functional as F
from minilora import backend
from minilora.engine import ops, shape_ops

# -- the registry: op name -> cases; a case returns (fn, *inputs) ---------------------------------

case = GradCases()


@case("Add")
def add_broadcast(m):
    return (lambda a, b: a + b), m(2, 3), m(3)


@case("Add")
def add_python_scalar(m):
    return (lambda a: 2.0 + a + 1), m(2, 2)


@case("Sub")
def sub_broadcast_both_ways(m):
    return (lambda a, b: a - b), m(2, 1), m(1, 3)


@case("Sub")
def rsub_python_scalar(m):
    return (lambda a: 1.0 - a), m(3)


@case("Mul")
def mul_broadcast_with_0d(m):
    return (lambda a, b, c: a * b * c), m(2, 3, 1), m(4), m()


@case("Mul")
def mul_same_input_twice(m):
    return (lambda a: a * a), m(3)


@case("Div")
def div_broadcast(m):
    return (lambda a, b: a / b), m(2, 3), m(2, 1)


@case("Div")
def rdiv_python_scalar(m):
    return (lambda a: 1.0 / a), m(4)


@case("Neg")
def neg(m):
    return (lambda a: -a), m(2, 2)


@case("PowScalar")
def pow_integer_exponent(m):
    return (lambda a: a**3), m(2, 3)


@case("PowScalar")
def pow_fractional_and_negative_exponent(m):
    return (lambda a: a**0.5 + a**-1.5), m(4, positive=True)


@case("Pow")
def pow_tensor_exponent_broadcast(m):
    return (lambda a, b: a**b), m(2, 3, positive=True), m(3)


@case("Pow")
def rpow_python_base(m):
    return (lambda b: 2.0**b), m(3)


@case("MatMul")
def matmul_2d(m):
    return (lambda a, b: a @ b), m(2, 3), m(3, 4)


@case("MatMul")
def matmul_batched_broadcast(m):
    return (lambda a, b: a @ b), m(2, 1, 3, 4), m(3, 4, 2)


@case("MatMul")
def matmul_vector_matrix(m):
    return (lambda a, b: a @ b), m(3), m(3, 2)


@case("MatMul")
def matmul_matrix_vector(m):
    return (lambda a, b: a @ b), m(2, 3), m(3)


@case("MatMul")
def matmul_vector_vector_gives_0d(m):
    return (lambda a, b: a @ b), m(3), m(3)


@case("MatMul")
def matmul_vector_batched(m):
    return (lambda a, b: a @ b), m(3), m(2, 3, 2)


@case("Exp")
def exp(m):
    return (lambda a: a.exp()), m(2, 3)


@case("Log")
def log(m):
    return (lambda a: a.log()), m(2, 3, positive=True)


@case("Sqrt")
def sqrt(m):
    return (lambda a: a.sqrt()), m(2, 3, positive=True)


@case("Tanh")
def tanh(m):
    return (lambda a: a.tanh()), m(2, 3)


@case("Relu")
def relu(m):
    return (lambda a: a.relu()), m(2, 3)


@case("Sigmoid")
def sigmoid(m):
    return (lambda a: a.sigmoid()), m(2, 3)


@case("Abs")
def abs_(m):
    return (lambda a: a.abs()), m(2, 3)


@case("Cast")
def cast_to_float64(m):
    """float64 -> float64 keeps finite differences exact; in float32 graphs this is a real up-cast."""
    return (lambda a: ops.Cast.apply(a, dtype=np.dtype(np.float64)) * 3.0), m(2, 3)


@case("ToDevice")
def to_other_device_and_back(m):
    other = m.other_device
    return (lambda a, b: (a.to(other) * 2.0).to(m.device) * b), m(2, 3), m(3)


@case("Sum")
def sum_all_to_0d(m):
    return (lambda a: a.sum()), m(2, 3)


@case("Sum")
def sum_axes_keepdims(m):
    return (lambda a: a.sum(axis=(0, 2), keepdims=True)), m(2, 3, 2)


@case("Sum")
def sum_negative_axis(m):
    return (lambda a: a.sum(axis=-1)), m(2, 3)


@case("Mean")
def mean_all(m):
    return (lambda a: a.mean()), m(3, 2)


@case("Mean")
def mean_negative_axis_keepdims(m):
    return (lambda a: a.mean(axis=-2, keepdims=True)), m(2, 3, 2)


@case("Max")
def max_all(m):
    return (lambda a: a.max()), m(3, 4)


@case("Max")
def max_axis_keepdims(m):
    return (lambda a: a.max(axis=-1, keepdims=True)), m(3, 4)


@case("Max")
def max_axis(m):
    return (lambda a: a.max(axis=0)), m(3, 4)


@case("Var")
def var_last_axis(m):
    return (lambda a: a.var(axis=-1)), m(2, 4)


@case("Var")
def var_ddof_keepdims(m):
    return (lambda a: a.var(axis=0, keepdims=True, ddof=1)), m(3, 2)


@case("Var")
def var_all(m):
    return (lambda a: a.var()), m(2, 3)


@case("Reshape")
def reshape(m):
    return (lambda a: a.reshape(3, -1) * m.const(np.arange(4.0).astype(m.dtype))), m(2, 6)


@case("Reshape")
def flatten(m):
    return (lambda a: a.flatten()), m(2, 2)


@case("Transpose")
def transpose_reverse(m):
    return (lambda a: a.T), m(2, 3, 4)


@case("Transpose")
def transpose_negative_axes(m):
    return (lambda a: a.transpose(0, -1, -2) @ m.const(np.ones((3, 2), dtype=m.dtype))), m(2, 3, 3)


@case("GetItem")
def getitem_slices_and_int(m):
    return (lambda a: a[1:, ::-2, 0]), m(3, 4, 2)


@case("GetItem")
def getitem_repeated_indices(m):
    return (lambda a: a[[0, 0, 2]]), m(3, 2)


@case("GetItem")
def getitem_device_index_tensors(m):
    rows, cols = m.const([2, 0, 2]), m.const([1, 1, 1])
    return (lambda a: a[rows, cols]), m(3, 2)


@case("GetItem")
def getitem_boolean_mask(m):
    mask = m.const([[True, False, True], [False, False, True]])
    return (lambda a: a[mask]), m(2, 3)


@case("GetItem")
def getitem_newaxis_ellipsis(m):
    return (lambda a: a[None, ..., -1]), m(2, 3)


@case("GetItem")
def split_into_sizes(m):
    """F.split is built from GetItem slices."""
    weights = m.const(np.arange(1.0, 5.0, dtype=m.dtype))
    return (lambda a: F.concat(F.split(a, [1, 3], axis=-1)[::-1], axis=-1) * weights), m(2, 4)


@case("Concat")
def concat_with_constant(m):
    frozen = m(2, 1, requires_grad=False)
    return (lambda a, b: F.concat([a, frozen, b], axis=-1)), m(2, 3), m(2, 2)


@case("Stack")
def stack_first_axis(m):
    return (lambda a, b: F.stack([a, b])), m(2, 3), m(2, 3)


@case("Stack")
def stack_last_axis(m):
    return (lambda a, b: F.stack([a, b], axis=-1)), m(3), m(3)


@case("Where")
def where_broadcast_cond(m):
    cond = m.const([[True], [False]])
    return (lambda a, b: F.where(cond, a, b)), m(2, 3), m(3)


@case("Where")
def where_python_scalar_branch(m):
    cond = m.const([True, False, True])
    return (lambda a: F.where(cond, 0.5, a)), m(3)


@case("MaskedFill")
def masked_fill_broadcast_mask(m):
    causal = m.const(np.triu(np.ones((3, 3), dtype=bool), k=1))
    return (lambda a: F.masked_fill(a, causal, -1e9).exp()), m(2, 3, 3)


ALL_CASES = case.params()


# -- gradients ------------------------------------------------------------------------------------


def test_every_op_has_a_gradient_case():
    """A Function added to ops.py or shape_ops.py without a gradient case here makes this test fail."""
    case.assert_covers(ops, shape_ops)


def test_every_op_is_typed_with_the_array_alias():
    """forward(ctx: Function, a: Array, ...) -> Array and backward(ctx: Function, g: Array) -> tuple[Array | None,
    ...]."""
    assert_typed_with_the_array_alias(ops)
    assert_typed_with_the_array_alias(shape_ops)


@pytest.mark.parametrize("op, build", ALL_CASES)
def test_gradient_matches_finite_differences(op, build, device):
    check_gradient_case(op, build, device)


@pytest.mark.parametrize("op, build", ALL_CASES)
def test_float32_graph_gives_float32_gradients(op, build, device, monkeypatch):
    check_float32_case(build, device, monkeypatch)


SHAPES = dict(min_dims=0, max_dims=3, max_side=3)


def _make_inputs(device, shapes, seed, positive_last=False):
    m = Maker(device)
    m.rng = np.random.default_rng(seed)
    return [m(*shape, positive=positive_last and i == len(shapes) - 1) for i, shape in enumerate(shapes)]


@pytest.mark.parametrize("op", ["+", "-", "*", "/"])
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, **SHAPES), seed=st.integers(0, 2**16))
def test_arithmetic_gradients_under_any_broadcast(device, op, shapes, seed):
    a, b = _make_inputs(device, shapes.input_shapes, seed, positive_last=op == "/")
    fn = {"+": lambda a, b: a + b, "-": lambda a, b: a - b,
          "*": lambda a, b: a * b, "/": lambda a, b: a / b}[op]
    out = fn(a, b)
    assert out.shape == shapes.result_shape
    assert ml.gradcheck(fn, a, b, rtol=1e-5, atol=1e-7)


@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=3, **SHAPES), seed=st.integers(0, 2**16))
def test_where_gradients_under_any_broadcast(device, shapes, seed):
    cond_shape, a_shape, b_shape = shapes.input_shapes
    cond = ml.tensor(np.random.default_rng(seed).random(cond_shape) < 0.5, device=device)
    a, b = _make_inputs(device, [a_shape, b_shape], seed)
    fn = lambda a, b: F.where(cond, a, b)  # noqa: E731
    assert fn(a, b).shape == shapes.result_shape
    assert ml.gradcheck(fn, a, b, rtol=1e-5, atol=1e-7)


# -- forward values against NumPy -----------------------------------------------------------------

VALUES = [
    ("add", lambda a, b: a + b, np.add),
    ("sub", lambda a, b: a - b, np.subtract),
    ("mul", lambda a, b: a * b, np.multiply),
    ("div", lambda a, b: a / b, np.divide),
    ("pow", lambda a, b: a.abs() ** b, lambda a, b: np.abs(a) ** b),
    ("matmul", lambda a, b: a @ b.T, lambda a, b: a @ b.T),
    ("exp", lambda a, b: a.exp(), lambda a, b: np.exp(a)),
    ("log", lambda a, b: a.abs().log(), lambda a, b: np.log(np.abs(a))),
    ("sqrt", lambda a, b: a.abs().sqrt(), lambda a, b: np.sqrt(np.abs(a))),
    ("tanh", lambda a, b: a.tanh(), lambda a, b: np.tanh(a)),
    ("relu", lambda a, b: a.relu(), lambda a, b: np.maximum(a, 0)),
    ("sigmoid", lambda a, b: a.sigmoid(), lambda a, b: 1 / (1 + np.exp(-a))),
    ("neg-abs", lambda a, b: -a.abs(), lambda a, b: -np.abs(a)),
    ("sum", lambda a, b: a.sum(axis=0), lambda a, b: a.sum(axis=0)),
    ("mean", lambda a, b: a.mean(axis=-1, keepdims=True), lambda a, b: a.mean(axis=-1, keepdims=True)),
    ("max", lambda a, b: a.max(axis=1), lambda a, b: a.max(axis=1)),
    ("var-ddof", lambda a, b: a.var(axis=1, ddof=1), lambda a, b: a.var(axis=1, ddof=1)),
    ("reshape-T", lambda a, b: a.reshape(4, 3).T, lambda a, b: a.reshape(4, 3).T),
    ("getitem", lambda a, b: a[[2, 0], 1:], lambda a, b: a[[2, 0], 1:]),
]


@pytest.mark.parametrize("name, fn, reference", VALUES, ids=[v[0] for v in VALUES])
def test_forward_values_match_numpy(name, fn, reference, device):
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    out = fn(ml.tensor(a, device=device), ml.tensor(b, device=device))
    assert out.device == device
    np.testing.assert_allclose(out.numpy(), reference(a, b), rtol=1e-12, atol=1e-12)


def test_sigmoid_is_stable_for_huge_inputs(device):
    x = ml.tensor(np.array([-1000.0, 0.0, 1000.0]), device=device)
    np.testing.assert_array_equal(x.sigmoid().numpy(), [0.0, 0.5, 1.0])


def test_repeated_indices_accumulate_their_gradients(device):
    x = ml.tensor(np.arange(3.0), requires_grad=True, device=device)
    x[[0, 0, 2, 0]].sum().backward()
    np.testing.assert_array_equal(backend.to_host(x.grad), [3.0, 0.0, 1.0])


def test_max_ties_share_the_gradient_equally(device):
    x = ml.tensor(np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]]), requires_grad=True, device=device)
    x.max(axis=1).sum().backward()
    np.testing.assert_allclose(backend.to_host(x.grad), [[0.0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])


def test_pow_exponent_gradient_is_zero_where_the_log_is_undefined(device):
    a = ml.tensor(np.array([-2.0, 0.0, 2.0]), device=device)
    b = ml.tensor(np.array([2.0, 2.0, 2.0]), requires_grad=True, device=device)
    (a**b).sum().backward()
    np.testing.assert_allclose(backend.to_host(b.grad), [0.0, 0.0, 4.0 * np.log(2.0)])


def test_var_with_ddof_matches_numpy(device):
    x = np.random.default_rng(2).standard_normal((4, 5))
    for ddof in (0, 1, 2):
        np.testing.assert_allclose(ml.tensor(x, device=device).var(axis=0, ddof=ddof).numpy(),
                                   x.var(axis=0, ddof=ddof), rtol=1e-12)


# -- errors ---------------------------------------------------------------------------------------


def test_matmul_shape_mismatch_names_both_shapes(device):
    a, b = ml.zeros((2, 3), device=device), ml.zeros((4, 5), device=device)
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 5\)"):
        a @ b
    with pytest.raises(ValueError, match="at least one dimension"):
        a @ ml.zeros((), device=device)


def test_var_without_degrees_of_freedom_is_an_error(device):
    with pytest.raises(ValueError, match="ddof=2"):
        ml.zeros(2, device=device).var(ddof=2)


def test_bad_reshape_transpose_and_axis_are_clear_errors(device):
    x = ml.zeros((2, 3), device=device)
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 2\)"):
        x.reshape(4, 2)
    with pytest.raises(ValueError, match="permutation"):
        x.transpose(0, 0)
    with pytest.raises(ValueError, match="axis 2"):
        x.sum(axis=2)


def test_index_errors_name_the_shape(device):
    x = ml.zeros((2, 3), device=device)
    with pytest.raises(IndexError, match=r"\(2, 3\)"):
        x[5]
    with pytest.raises(TypeError, match="integer or boolean"):
        x[np.array([0.0, 1.0])]


def test_mixing_devices_names_both(device):
    other = Maker(device).other_device
    a, b = ml.ones(2, device=device), ml.ones(2, device=other)
    with pytest.raises(RuntimeError, match=rf"Add.*'{device}'.*'{other}'"):
        a + b
    with pytest.raises(RuntimeError, match=rf"MatMul.*'{other}'.*'{device}'"):
        b @ a
