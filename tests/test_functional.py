"""The functional API (minilora/functional.py): values, argument handling and clear errors."""

import numpy as np
import pytest

import minilora as ml
import minilora.functional as F
from minilora import backend


def _t(values, device, requires_grad=False):
    return ml.tensor(np.asarray(values, dtype=np.float64), requires_grad=requires_grad, device=device)


# -- softmax family and activations ---------------------------------------------------------------


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_softmax_sums_to_one_along_its_axis_only(axis, device):
    x = _t(np.random.default_rng(0).standard_normal((3, 4)), device)
    p = F.softmax(x, axis=axis).numpy()
    np.testing.assert_allclose(p.sum(axis=axis), 1.0, rtol=1e-12)
    np.testing.assert_allclose(np.exp(F.log_softmax(x, axis=axis).numpy()), p, rtol=1e-12)


def test_activation_wrappers_compute_their_formulas(device):
    x = np.linspace(-2, 2, 5)
    np.testing.assert_allclose(F.relu(_t(x, device)).numpy(), np.maximum(x, 0))
    np.testing.assert_allclose(F.sigmoid(_t(x, device)).numpy(), 1 / (1 + np.exp(-x)), rtol=1e-12)
    np.testing.assert_allclose(F.tanh(_t(x, device)).numpy(), np.tanh(x), rtol=1e-12)


def test_bad_axis_is_a_clear_error(device):
    with pytest.raises(ValueError, match="axis 2"):
        F.softmax(_t(np.ones((2, 2)), device), axis=2)


# -- cross entropy --------------------------------------------------------------------------------


def test_cross_entropy_over_batch_and_time_equals_the_flattened_rows(device):
    rng = np.random.default_rng(1)
    logits, targets = rng.standard_normal((2, 3, 5)), rng.integers(0, 5, (2, 3))
    full = F.cross_entropy(_t(logits, device), targets).item()
    flat = F.cross_entropy(_t(logits.reshape(6, 5), device), targets.reshape(6)).item()
    assert full == pytest.approx(flat, rel=1e-12)


def test_ignore_index_is_the_same_as_dropping_those_rows(device):
    rng = np.random.default_rng(2)
    logits, targets = rng.standard_normal((4, 3)), np.array([2, -100, 0, -100])
    kept = F.cross_entropy(_t(logits[[0, 2]], device), targets[[0, 2]]).item()
    assert F.cross_entropy(_t(logits, device), targets, ignore_index=-100).item() == pytest.approx(kept, rel=1e-12)


def test_cross_entropy_accepts_device_target_tensors(device):
    logits = _t(np.zeros((2, 4)), device)
    targets = ml.tensor(np.array([1, 3]), device=device)
    assert F.cross_entropy(logits, targets).item() == pytest.approx(np.log(4), rel=1e-12)


@pytest.mark.parametrize("bad", [3, -1])
def test_cross_entropy_target_out_of_range_is_a_clear_error(bad, device):
    with pytest.raises(ValueError, match=rf"target {bad} is out of range for 3 classes"):
        F.cross_entropy(_t(np.zeros((2, 3)), device), [0, bad])


def test_cross_entropy_rejects_float_targets_and_mismatched_shapes(device):
    logits = _t(np.zeros((2, 3)), device)
    with pytest.raises(TypeError, match="integers"):
        F.cross_entropy(logits, np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(3,\)"):
        F.cross_entropy(logits, [0, 1, 2])


# -- layer norm, embedding, dropout ---------------------------------------------------------------


def test_layer_norm_weight_and_bias_shapes_are_checked(device):
    with pytest.raises(ValueError, match=r"\(4,\)"):
        F.layer_norm(_t(np.ones((2, 4)), device), _t(np.ones(3), device), _t(np.zeros(4), device))


def test_layer_norm_applies_weight_and_bias_per_feature(device):
    x = _t([[1.0, 3.0]], device)
    y = F.layer_norm(x, _t([2.0, 10.0], device), _t([0.5, -1.0], device), eps=0.0)
    np.testing.assert_allclose(y.numpy(), [[-2.0 + 0.5, 10.0 - 1.0]], rtol=1e-12)


@pytest.mark.parametrize("ids", [[0, 3], [-1, 0]])
def test_embedding_id_out_of_range_is_a_clear_error(ids, device):
    """CuPy would silently wrap bad ids; minilora refuses them on every device."""
    weight = _t(np.zeros((3, 2)), device)
    with pytest.raises(ValueError, match=rf"token id {ids[0] if ids[0] < 0 else ids[1]} .*3 rows"):
        F.embedding(np.array(ids), weight)


def test_embedding_takes_lists_host_arrays_and_device_tensors(device):
    weight = _t(np.arange(6.0).reshape(3, 2), device)
    expected = [[4.0, 5.0], [0.0, 1.0]]
    for ids in ([2, 0], np.array([2, 0]), ml.tensor(np.array([2, 0]), device=device)):
        out = F.embedding(ids, weight)
        assert out.device == device
        np.testing.assert_array_equal(out.numpy(), expected)
    with pytest.raises(TypeError, match="integers"):
        F.embedding(np.array([0.0]), weight)


def test_dropout_is_the_identity_when_off(device):
    x = _t(np.ones(10), device)
    assert F.dropout(x, p=0.5, training=False) is x
    assert F.dropout(x, p=0.0) is x
    for p in (-0.1, 1.0):
        with pytest.raises(ValueError, match="dropout"):
            F.dropout(x, p=p)


def test_dropout_masks_scale_and_route_the_gradient(device):
    x = _t(np.ones(1000), device, requires_grad=True)
    y = F.dropout(x, p=0.25, rng=np.random.default_rng(0))
    values = y.numpy()
    assert set(np.unique(values)) == {0.0, 1 / 0.75}
    assert abs(values.mean() - 1.0) < 0.1  # inverted dropout keeps the expectation
    y.sum().backward()
    np.testing.assert_array_equal(backend.to_host(x.grad), values)  # dy/dx is the scaled mask itself


def test_dropout_mask_depends_only_on_the_seed_not_the_device(device):
    on_device = F.dropout(_t(np.ones(50), device), p=0.5, rng=np.random.default_rng(3)).numpy()
    on_cpu = F.dropout(_t(np.ones(50), "cpu"), p=0.5, rng=np.random.default_rng(3)).numpy()
    np.testing.assert_array_equal(on_device, on_cpu)


# -- concat / stack / split / where / masked_fill -------------------------------------------------


def test_concat_and_stack_match_numpy(device):
    a, b = np.arange(6.0).reshape(2, 3), -np.arange(4.0).reshape(2, 2)
    np.testing.assert_array_equal(F.concat([_t(a, device), _t(b, device)], axis=-1).numpy(),
                                  np.concatenate([a, b], axis=-1))
    np.testing.assert_array_equal(F.stack([_t(a, device), _t(a * 2, device)], axis=1).numpy(),
                                  np.stack([a, a * 2], axis=1))
    with pytest.raises(ValueError, match="stack"):
        F.stack([_t(a, device)], axis=3)


def test_split_into_equal_parts_and_sizes_and_back(device):
    x = _t(np.arange(12.0).reshape(2, 6), device, requires_grad=True)
    parts = F.split(x, 3, axis=1)
    assert [p.shape for p in parts] == [(2, 2)] * 3
    _, second = F.split(x, [1, 5], axis=-1)
    np.testing.assert_array_equal(second.numpy(), np.arange(12.0).reshape(2, 6)[:, 1:])
    (F.concat(parts[::-1], axis=1) * _t(np.arange(12.0).reshape(2, 6), device)).sum().backward()
    # reversing the parts routes each gradient block to its original place
    np.testing.assert_array_equal(backend.to_host(x.grad)[:, :2], np.arange(12.0).reshape(2, 6)[:, 4:])
    with pytest.raises(ValueError, match="4 equal parts"):
        F.split(x, 4, axis=1)
    with pytest.raises(ValueError, match="add up to 5"):
        F.split(x, [2, 3], axis=1)


def test_where_and_masked_fill_values(device):
    cond = np.array([True, False, True])
    a, b = _t([1.0, 2.0, 3.0], device), _t([-1.0, -2.0, -3.0], device)
    np.testing.assert_array_equal(F.where(cond, a, b).numpy(), [1.0, -2.0, 3.0])
    np.testing.assert_array_equal(F.where(cond, a, 0.0).numpy(), [1.0, 0.0, 3.0])
    np.testing.assert_array_equal(F.masked_fill(a, cond, -np.inf).numpy(), [-np.inf, 2.0, -np.inf])
    with pytest.raises(TypeError, match="boolean"):
        F.where(np.array([1, 0, 1]), a, b)
    with pytest.raises(TypeError, match="boolean"):
        F.masked_fill(a, np.array([1, 0, 1]), 0.0)


def test_causal_mask_then_softmax_gives_no_weight_to_the_future(device):
    scores = _t(np.random.default_rng(4).standard_normal((2, 4, 4)), device, requires_grad=True)
    future = np.triu(np.ones((4, 4), dtype=bool), k=1)
    probs = F.softmax(F.masked_fill(scores, future, -np.inf), axis=-1)
    assert (probs.numpy()[:, future] == 0).all()
    probs[:, 0].sum().backward()  # row 0 attends only to itself: its softmax is constant 1
    np.testing.assert_allclose(backend.to_host(scores.grad), 0.0, atol=1e-15)


def test_attention_and_linear_check_their_shapes(device):
    q = _t(np.zeros((1, 2, 3, 4)), device)
    with pytest.raises(ValueError, match="shape"):
        F.scaled_dot_product_attention(q, q, _t(np.zeros((1, 2, 3, 5)), device))
    with pytest.raises(ValueError, match=r"\(5, 3\)"):
        F.linear(_t(np.zeros((2, 4)), device), _t(np.zeros((5, 3)), device))


@pytest.mark.parametrize("op", [F.softmax, F.log_softmax, F.softmax_composed, F.log_softmax_composed,
                                lambda x: F.cross_entropy(x, np.array([0, 1]))])
def test_softmax_family_refuses_integer_tensors_with_one_clear_error(op, device):
    ids = ml.tensor(np.arange(4).reshape(2, 2), device=device)  # integer data stays integer
    with pytest.raises(TypeError, match=r"expects a floating-point tensor, got dtype int64; cast it first"):
        op(ids)
