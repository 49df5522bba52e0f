"""Fused ops (minilora/engine/fused.py): gradients, agreement with the composed versions, stability.

Every Function in fused.py has a gradient case (``@case``, a registry from tests/gradcases.py; checked by a
meta-test), and each fused op must agree with its ``*_composed`` twin in functional.py on values and gradients.
"""

import numpy as np
import pytest
from gradcases import GradCases, assert_typed_with_the_array_alias, check_float32_case, check_gradient_case

import minilora as ml
import minilora.functional as F
from minilora import backend
from minilora.engine import fused

case = GradCases()


@case("Softmax")
def softmax_last_axis(m):
    return (lambda x: F.softmax(x, axis=-1)), m(2, 2, 3)


@case("Softmax")
def softmax_middle_axis(m):
    return (lambda x: F.softmax(x, axis=1)), m(2, 3, 2)


@case("LogSoftmax")
def log_softmax_last_axis(m):
    return (lambda x: F.log_softmax(x)), m(3, 4)


@case("LogSoftmax")
def log_softmax_first_axis(m):
    return (lambda x: F.log_softmax(x, axis=0)), m(3, 2)


@case("CrossEntropy")
def cross_entropy_rows(m):
    targets = m.const([0, 2, 2])
    return (lambda z: F.cross_entropy(z, targets)), m(3, 4)


@case("CrossEntropy")
def cross_entropy_batch_time(m):
    targets = m.const([[1, 0, 3], [2, 2, 0]])
    return (lambda z: F.cross_entropy(z, targets)), m(2, 3, 4)


@case("CrossEntropy")
def cross_entropy_ignore_index(m):
    targets = m.const([[1, -100], [-100, 3]])
    return (lambda z: F.cross_entropy(z, targets, ignore_index=-100)), m(2, 2, 4)


@case("CrossEntropy")
def cross_entropy_ignore_a_real_class(m):
    targets = m.const([0, 1, 0, 2])
    return (lambda z: F.cross_entropy(z, targets, ignore_index=0)), m(4, 3)


@case("Gelu")
def gelu(m):
    return (lambda x: F.gelu(x * 2.0)), m(3, 4)


@case("LayerNorm")
def layer_norm_affine(m):
    return (lambda x, w, b: F.layer_norm(x, w, b)), m(2, 3, 4), m(4), m(4)


@case("LayerNorm")
def layer_norm_1d_without_affine(m):
    return (lambda x: F.layer_norm(x, eps=1e-3)), m(5)


@case("Embedding")
def embedding_repeated_ids(m):
    ids = m.const([[0, 2, 0], [1, 0, 0]])
    return (lambda w: F.embedding(ids, w)), m(3, 2)


@case("LinearFn")
def linear_batched_with_bias(m):
    return (lambda x, w, b: F.linear(x, w, b)), m(2, 3, 4), m(5, 4), m(5)


@case("LinearFn")
def linear_vector_without_bias(m):
    return (lambda x, w: F.linear(x, w)), m(3), m(2, 3)


@case("Attention")
def attention_causal(m):
    return (lambda q, k, v: F.scaled_dot_product_attention(q, k, v)), m(1, 2, 3, 2), m(1, 2, 3, 2), m(1, 2, 3, 2)


@case("Attention")
def attention_bidirectional(m):
    q, k, v = m(2, 1, 3, 2), m(2, 1, 3, 2), m(2, 1, 3, 2)
    return (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, causal=False)), q, k, v


ALL_CASES = case.params()


def test_every_fused_op_has_a_gradient_case():
    """A Function added to fused.py without a gradient case here makes this test fail."""
    case.assert_covers(fused)


def test_every_fused_op_is_typed_with_the_array_alias():
    """forward(ctx: Function, x: Array, ...) -> Array and backward(ctx: Function, g: Array) -> tuple[Array | None,
    ...]."""
    assert_typed_with_the_array_alias(fused)


@pytest.mark.parametrize("op, build", ALL_CASES)
def test_gradient_matches_finite_differences(op, build, device):
    check_gradient_case(op, build, device)


@pytest.mark.parametrize("op, build", ALL_CASES)
def test_float32_graph_gives_float32_gradients(op, build, device, monkeypatch):
    check_float32_case(build, device, monkeypatch)


# -- fused == composed ----------------------------------------------------------------------------


TARGETS = np.array([[1, 0, 3], [0, 2, 1]])  # host arrays: cross_entropy moves them to the logits' device
IGNORED = np.array([[1, 0, 3], [-1, 2, -1]])
X = [(2, 3, 4)]  # most pairs take one input of this shape

PAIRS = [
    ("softmax-1", lambda x: F.softmax(x, axis=-1), lambda x: F.softmax_composed(x, axis=-1), X),
    ("softmax0", lambda x: F.softmax(x, axis=0), lambda x: F.softmax_composed(x, axis=0), X),
    ("log_softmax-1", lambda x: F.log_softmax(x), lambda x: F.log_softmax_composed(x), X),
    ("log_softmax1", lambda x: F.log_softmax(x, axis=1), lambda x: F.log_softmax_composed(x, axis=1), X),
    ("gelu", F.gelu, F.gelu_composed, X),
    ("layer_norm", F.layer_norm, F.layer_norm_composed, [(2, 3, 4), (4,), (4,)]),
    ("cross_entropy", lambda x: F.cross_entropy(x, TARGETS), lambda x: F.cross_entropy_composed(x, TARGETS), X),
    ("cross_entropy-ignore", lambda x: F.cross_entropy(x, IGNORED, ignore_index=-1),
     lambda x: F.cross_entropy_composed(x, IGNORED, ignore_index=-1), X),
    ("linear", F.linear, lambda x, w, b: x @ w.T + b, [(2, 3, 4), (5, 4), (5,)]),
    ("attention-causal", F.scaled_dot_product_attention, F.attention_composed, [(2, 2, 4, 3)] * 3),
    ("attention", lambda q, k, v: F.scaled_dot_product_attention(q, k, v, causal=False),
     lambda q, k, v: F.attention_composed(q, k, v, causal=False), [(2, 2, 4, 3)] * 3),
]


@pytest.mark.parametrize("name, fused, composed, shapes", PAIRS, ids=[p[0] for p in PAIRS])
def test_fused_and_composed_agree_on_values_and_gradients(name, fused, composed, shapes, device):
    rng = np.random.default_rng(3)
    hosts = [rng.standard_normal(shape) * 3 for shape in shapes]
    results = []
    for fn in (fused, composed):
        inputs = [ml.tensor(h, requires_grad=True, device=device) for h in hosts]
        y = fn(*inputs)
        (y * ml.tensor(np.cos(np.arange(y.size)).reshape(y.shape), device=device)).sum().backward()
        results.append([y.numpy()] + [backend.to_host(x.grad) for x in inputs])
    for from_fused, from_composed in zip(*results):
        np.testing.assert_allclose(from_fused, from_composed, rtol=1e-10, atol=1e-12)


# -- numerical stability and edge cases ----------------------------------------------------------


def test_softmax_family_is_stable_for_huge_logits(device):
    x = ml.tensor(np.array([[1000.0, 0.0, -1000.0]]), requires_grad=True, device=device)
    np.testing.assert_allclose(F.softmax(x).numpy(), [[1.0, 0.0, 0.0]])
    np.testing.assert_allclose(F.log_softmax(x).numpy(), [[0.0, -1000.0, -2000.0]])
    loss = F.cross_entropy(x, [1])
    np.testing.assert_allclose(loss.item(), 1000.0)
    loss.backward()
    np.testing.assert_allclose(backend.to_host(x.grad), [[1.0, -1.0, 0.0]], atol=1e-12)


def test_cross_entropy_value_is_the_mean_negative_log_likelihood(device):
    logits = np.random.default_rng(5).standard_normal((4, 3))
    targets = np.array([0, 2, 1, 2])
    log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    expected = -log_probs[np.arange(4), targets].mean()
    assert F.cross_entropy(ml.tensor(logits, device=device), targets).item() == pytest.approx(expected, rel=1e-12)


def test_cross_entropy_with_every_target_ignored_is_zero_with_zero_gradient(device):
    x = ml.tensor(np.ones((2, 3)), requires_grad=True, device=device)
    loss = F.cross_entropy(x, [-100, -100], ignore_index=-100)
    assert loss.item() == 0.0
    loss.backward()
    np.testing.assert_array_equal(backend.to_host(x.grad), np.zeros((2, 3)))


def test_gelu_matches_its_formula_at_known_points(device):
    x = np.array([-3.0, -1.0, 0.0, 1.0, 3.0])
    expected = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))
    np.testing.assert_allclose(F.gelu(ml.tensor(x, device=device)).numpy(), expected, rtol=1e-12)
    assert F.gelu(ml.tensor(np.array([0.0]), device=device)).item() == 0.0


def test_layer_norm_output_has_zero_mean_and_unit_variance(device):
    x = ml.tensor(np.random.default_rng(6).standard_normal((4, 8)) * 5 + 3, device=device)
    y = F.layer_norm(x, eps=0.0).numpy()
    np.testing.assert_allclose(y.mean(axis=-1), 0.0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=-1), 1.0, rtol=1e-12)


def test_embedding_gradient_accumulates_repeated_ids(device):
    weight = ml.tensor(np.arange(6.0).reshape(3, 2), requires_grad=True, device=device)
    out = F.embedding(np.array([[2, 0], [2, 2]]), weight)
    np.testing.assert_array_equal(out.numpy(), [[[4, 5], [0, 1]], [[4, 5], [4, 5]]])
    out.sum().backward()
    np.testing.assert_array_equal(backend.to_host(weight.grad), [[1, 1], [0, 0], [3, 3]])


# -- the CPU's cache-sized pieces give the same numbers as one whole pass --------------------------


@pytest.mark.parametrize("name, fn, composed, shapes", [
    ("attention-prefix", F.scaled_dot_product_attention, F.attention_composed, [(3, 2, 5, 3), (3, 2, 7, 3),
                                                                               (3, 2, 7, 3)]),
    ("layer_norm", F.layer_norm, F.layer_norm_composed, [(5, 3, 4), (4,), (4,)]),
])
def test_pieces_match_the_composed_twin(name, fn, composed, shapes, monkeypatch):
    monkeypatch.setattr(fused, "_PIECE", 8)  # several pieces: one sequence (attention), two rows (layer norm)
    assert len(fused._pieces(3, 2 * 7 * 5, "cpu", fused._SCORE_PIECES)) == 3 and len(fused._pieces(15, 4, "cpu")) == 8
    rng = np.random.default_rng(4)
    hosts = [rng.standard_normal(shape) for shape in shapes]
    results = []
    for f in (fn, composed):
        inputs = [ml.tensor(h, requires_grad=True) for h in hosts]
        y = f(*inputs)
        (y * ml.tensor(np.sin(np.arange(y.size)).reshape(y.shape))).sum().backward()
        results.append([y.numpy()] + [x.grad for x in inputs])
    for from_fn, from_composed in zip(*results):
        np.testing.assert_allclose(from_fn, from_composed, rtol=1e-10, atol=1e-12)
