"""Tests for minilora.nn: registration, state, modes, devices, and every layer's forward/backward."""

from __future__ import annotations

import numpy as np
import pytest

import minilora as ml
from minilora import backend, nn
from minilora.engine import fused


def _x(shape, device, seed=0, dtype=np.float64, requires_grad=True):
    data = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    return ml.tensor(data, requires_grad=requires_grad, device=device)


class Tiny(nn.Module):
    """Two Linears sharing one weight, a LayerNorm and a raw Parameter."""

    def __init__(self, device=None):
        super().__init__()
        self.scale = nn.Parameter(np.ones(3, dtype=np.float32))
        self.first = nn.Linear(3, 3, rng=0, device=device)
        self.second = nn.Linear(3, 3, rng=1, device=device)
        self.second.weight = self.first.weight  # tied
        self.norm = nn.LayerNorm(3, device=device)
        self.to(device or "cpu")

    def forward(self, x):
        return self.norm(self.second(self.first(x) * self.scale))


# -- registration and traversal -------------------------------------------------------------------


def test_module_registers_parameters_and_submodules_in_order():
    m = Tiny()
    names = [n for n, _ in m.named_parameters()]
    # the tied weight appears once, under the first path that reaches it
    assert names == ["scale", "first.weight", "first.bias", "second.bias", "norm.weight", "norm.bias"]
    assert len(list(m.parameters())) == 6
    assert [n for n, _ in m.named_modules()] == ["", "first", "second", "norm"]
    assert list(m.children()) == [m.first, m.second, m.norm]
    # 3 + (9 + 3) + 3 + (3 + 3): the shared 3x3 weight counts once
    assert m.num_parameters() == 24


def test_reassigning_an_attribute_unregisters_it():
    lin = nn.Linear(2, 2, rng=0)
    lin.bias = None
    assert [n for n, _ in lin.named_parameters()] == ["weight"]
    m = Tiny()
    m.norm = "not a module"
    assert "norm" not in dict(m.named_modules())
    del m.scale
    assert "scale" not in dict(m.named_parameters())


def test_setattr_before_super_init_is_a_clear_error():
    class Broken(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(np.zeros(2))

    with pytest.raises(AttributeError, match="super\\(\\).__init__"):
        Broken()


def test_dotted_paths_through_module_lists():
    class Block(nn.Module):
        def __init__(self, seed):
            super().__init__()
            self.attn = nn.Module()
            self.attn.q_proj = nn.Linear(4, 4, rng=seed)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList([Block(0), Block(1)])

    names = [n for n, _ in Net().named_parameters()]
    assert names == [
        "blocks.0.attn.q_proj.weight", "blocks.0.attn.q_proj.bias",
        "blocks.1.attn.q_proj.weight", "blocks.1.attn.q_proj.bias",
    ]


def test_module_list_indexing_iteration_and_replacement():
    layers = nn.ModuleList([nn.Linear(2, 2, rng=i) for i in range(3)])
    assert len(layers) == 3
    assert [n for n, _ in layers.named_modules()] == ["", "0", "1", "2"]
    assert list(layers) == [layers[0], layers[1], layers[2]]
    new = nn.Linear(2, 2, bias=False, rng=9)
    setattr(layers, "1", new)  # how apply_lora swaps a layer in place
    assert layers[1] is new
    assert [n for n, _ in layers.named_parameters()] == ["0.weight", "0.bias", "1.weight", "2.weight", "2.bias"]
    layers.append(nn.LayerNorm(2))
    assert len(layers) == 4 and "3.weight" in dict(layers.named_parameters())


def test_sequential_applies_modules_in_order(device):
    a, b = nn.Linear(3, 5, rng=0, device=device), nn.Linear(5, 2, rng=1, device=device)
    seq = nn.Sequential(a, nn.GELU(), b)
    x = _x((4, 3), device, dtype=np.float32, requires_grad=False)
    expected = b(ml.functional.gelu(a(x)))
    np.testing.assert_array_equal(seq(x).numpy(), expected.numpy())
    assert [n for n, _ in seq.named_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias"]


# -- state_dict / load_state_dict -----------------------------------------------------------------


def test_state_dict_is_host_numpy_copies(device):
    m = Tiny(device)
    sd = m.state_dict()
    assert list(sd) == [n for n, _ in m.named_parameters()]
    assert all(type(v) is np.ndarray for v in sd.values())
    before = {k: v.copy() for k, v in sd.items()}
    for p in m.parameters():
        p.data += 1.0  # in place on the device buffers
    for k in sd:
        np.testing.assert_array_equal(sd[k], before[k])
    assert not np.array_equal(m.state_dict()["first.weight"], sd["first.weight"])


def test_load_state_dict_round_trip_keeps_dtype_and_device(device):
    src, dst = nn.Linear(3, 2, rng=0, device=device), nn.Linear(3, 2, rng=1, device=device)
    sd64 = {k: v.astype(np.float64) for k, v in src.state_dict().items()}
    assert dst.load_state_dict(sd64) == nn.LoadResult([], [])
    assert dst.weight.dtype == np.float32 and dst.device == device
    for k, v in dst.state_dict().items():
        np.testing.assert_array_equal(v, src.state_dict()[k])
    # the model does not alias the caller's arrays
    sd = src.state_dict()
    dst.load_state_dict(sd)
    sd["weight"][...] = 123.0
    assert not np.any(dst.state_dict()["weight"] == 123.0)


def test_load_state_dict_accepts_tensors_and_device_arrays(device):
    src, dst = nn.Linear(3, 2, rng=0, device=device), nn.Linear(3, 2, rng=1, device=device)
    dst.load_state_dict({"weight": src.weight, "bias": src.bias.data})  # a Tensor and a device array
    np.testing.assert_array_equal(dst.weight.numpy(), src.weight.numpy())
    np.testing.assert_array_equal(dst.bias.numpy(), src.bias.numpy())
    assert dst.weight.data is not src.weight.data


def test_load_state_dict_strict_errors_name_the_keys():
    m = nn.Linear(3, 2, rng=0)
    sd = m.state_dict()
    with pytest.raises(ValueError, match=r"missing: \['bias'\]"):
        m.load_state_dict({"weight": sd["weight"]})
    with pytest.raises(ValueError, match=r"unexpected: \['extra'\]"):
        m.load_state_dict({**sd, "extra": np.zeros(1)})
    with pytest.raises(ValueError, match=r"weight: checkpoint \(2, 4\) vs model \(2, 3\)"):
        m.load_state_dict({**sd, "weight": np.zeros((2, 4))})
    # a failed load changes nothing
    np.testing.assert_array_equal(m.state_dict()["weight"], sd["weight"])


def test_load_state_dict_non_strict_returns_skipped_keys():
    m = nn.Linear(3, 2, rng=0)
    w = np.full((2, 3), 0.5, dtype=np.float32)
    result = m.load_state_dict({"weight": w, "extra": np.zeros(1)}, strict=False)
    assert result.missing_keys == ["bias"] and result.unexpected_keys == ["extra"]
    np.testing.assert_array_equal(m.weight.numpy(), w)
    with pytest.raises(ValueError, match="mis-shaped"):  # shapes are checked even when not strict
        m.load_state_dict({"weight": np.zeros((3, 2))}, strict=False)


# -- modes, freezing, devices, dtypes -------------------------------------------------------------


def test_train_eval_flags_propagate_to_every_module():
    m = nn.Sequential(nn.Linear(2, 2, rng=0), nn.Sequential(nn.Dropout(0.5), nn.LayerNorm(2)))
    assert all(mod.training for mod in m.modules())
    assert m.eval() is m
    assert not any(mod.training for mod in m.modules())
    m.train()
    assert all(mod.training for mod in m.modules())
    m.train(False)
    assert not any(mod.training for mod in m.modules())


def test_zero_grad_clears_every_gradient(device):
    m = Tiny(device)
    m(_x((2, 3), device, dtype=np.float32)).sum().backward()
    assert all(p.grad is not None for p in m.parameters())
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())


def test_requires_grad_freezes_and_num_parameters_counts_trainable(device):
    m = Tiny(device)
    assert m.num_parameters(trainable_only=True) == m.num_parameters() == 24
    m.requires_grad_(False)
    assert m.num_parameters(trainable_only=True) == 0 and m.num_parameters() == 24
    m.norm.requires_grad_(True)
    assert m.num_parameters(trainable_only=True) == 6
    x = _x((2, 3), device, dtype=np.float32)
    m(x).sum().backward()
    assert x.grad is not None
    assert m.first.weight.grad is None and m.scale.grad is None
    assert m.norm.weight.grad is not None


def test_to_device_moves_parameters_and_gradients(device):
    m = Tiny("cpu")
    m(_x((2, 3), "cpu", dtype=np.float32)).sum().backward()
    before = m.state_dict()
    assert m.to(device) is m
    assert m.device == device
    for p in m.parameters():
        assert p.device == device and backend.device_of(p.grad) == device
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v, before[k])
    m.to("cpu")
    assert all(type(p.data) is np.ndarray for p in m.parameters())
    assert nn.Module().device == "cpu"


def test_astype_casts_parameters_and_drops_gradients(device):
    m = Tiny(device)
    m(_x((2, 3), device, dtype=np.float32)).sum().backward()
    m.astype(np.float64)
    assert all(p.dtype == np.float64 and p.grad is None and p.device == device for p in m.parameters())
    assert m.first.weight is m.second.weight  # still tied
    out = m(_x((2, 3), device))
    assert out.dtype == np.float64


def test_repr_lists_children():
    text = repr(nn.Sequential(nn.Linear(2, 3, rng=0), nn.LayerNorm(3)))
    assert "(0): Linear(in_features=2, out_features=3, bias=True)" in text
    assert "(1): LayerNorm(3, eps=1e-05)" in text
    assert repr(nn.Parameter(np.zeros(2))).startswith("Parameter(")


# -- Linear -------------------------------------------------------------------------------------


def test_linear_init_is_uniform_within_pytorch_bounds():
    lin = nn.Linear(64, 200, rng=0)
    bound = 1 / np.sqrt(64)
    w, b = lin.weight.numpy(), lin.bias.numpy()
    assert w.shape == (200, 64) and b.shape == (200,) and w.dtype == np.float32
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert w.max() > 0.95 * bound and w.min() < -0.95 * bound  # fills the interval
    assert abs(w.mean()) < 0.01 and abs(w.var() - bound**2 / 3) < 0.1 * bound**2 / 3
    # the seed decides the weights
    np.testing.assert_array_equal(nn.Linear(64, 200, rng=0).weight.numpy(), w)
    assert not np.array_equal(nn.Linear(64, 200, rng=1).weight.numpy(), w)


@pytest.mark.parametrize("bias", [True, False])
def test_linear_forward_matches_numpy(device, bias):
    lin = nn.Linear(5, 3, bias=bias, rng=0, device=device)
    x = np.random.default_rng(1).standard_normal((2, 4, 5)).astype(np.float32)
    y = lin(ml.tensor(x, device=device))
    expected = x @ lin.weight.numpy().T + (lin.bias.numpy() if bias else 0)
    assert y.shape == (2, 4, 3) and y.device == device
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_linear_rejects_wrong_input_dimension_and_bad_sizes():
    lin = nn.Linear(3, 4, rng=0)
    with pytest.raises(ValueError, match=r"Linear\(3, 4\): input has last dimension 5, expected 3"):
        lin(ml.zeros((2, 5)))
    with pytest.raises(ValueError, match="in_features must be a positive integer"):
        nn.Linear(0, 4)
    with pytest.raises(ValueError, match="out_features must be a positive integer, got 2.5"):
        nn.Linear(3, 2.5)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 3)])
def test_linear_gradcheck(device, bias, shape):
    lin = nn.Linear(3, 2, bias=bias, rng=0, device=device).astype(np.float64)
    x = _x(shape, device)
    params = [lin.weight] + ([lin.bias] if bias else [])
    assert ml.gradcheck(lambda *_: lin(x), x, *params, rtol=1e-5)


def test_frozen_linear_computes_only_the_input_gradient(device, monkeypatch):
    calls = []
    original = fused.LinearFn.backward

    def spy(ctx, g):
        grads = original(ctx, g)
        calls.append((ctx.needs_input_grad, grads))
        return grads

    monkeypatch.setattr(fused.LinearFn, "backward", staticmethod(spy))
    lin = nn.Linear(3, 2, rng=0, device=device).requires_grad_(False)
    x = _x((4, 3), device, dtype=np.float32)
    lin(x).sum().backward()
    assert len(calls) == 1
    needs, (dx, dw, db) = calls[0]
    assert needs == (True, False, False)
    assert dw is None and db is None  # never computed, not merely discarded
    assert lin.weight.grad is None and lin.bias.grad is None
    np.testing.assert_allclose(backend.to_host(x.grad), np.tile(lin.weight.numpy().sum(0), (4, 1)), rtol=1e-6)


# -- LayerNorm, Embedding, Sequential gradients ---------------------------------------------------


def test_layer_norm_forward_and_gradcheck(device):
    ln = nn.LayerNorm(5, device=device).astype(np.float64)
    rng = np.random.default_rng(0)
    ln.weight.data = backend.to_device(rng.standard_normal(5), device)
    ln.bias.data = backend.to_device(rng.standard_normal(5), device)
    x = _x((2, 3, 5), device, seed=1)
    xh = x.numpy()
    ref = (xh - xh.mean(-1, keepdims=True)) / np.sqrt(xh.var(-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(ln(x).numpy(), ref * ln.weight.numpy() + ln.bias.numpy(), rtol=1e-10)
    assert ml.gradcheck(lambda *_: ln(x), x, ln.weight, ln.bias, rtol=1e-5)


def test_layer_norm_init_and_no_bias():
    ln = nn.LayerNorm(4, bias=False)
    np.testing.assert_array_equal(ln.weight.numpy(), np.ones(4, np.float32))
    assert ln.bias is None and [n for n, _ in ln.named_parameters()] == ["weight"]
    out = ln(ml.tensor([[1.0, 2.0, 3.0, 4.0]]))
    np.testing.assert_allclose(out.numpy().mean(), 0, atol=1e-6)


def test_embedding_lookup_and_gradcheck_with_repeated_ids(device):
    emb = nn.Embedding(5, 3, rng=0, device=device).astype(np.float64)
    ids = np.array([[0, 2, 2], [4, 0, 2]])
    out = emb(ids)
    assert out.shape == (2, 3, 3) and out.device == device
    np.testing.assert_array_equal(out.numpy(), emb.weight.numpy()[ids])
    assert ml.gradcheck(lambda w: emb(ids), emb.weight, rtol=1e-5)
    emb.weight.grad = None
    emb(ids).sum().backward()  # repeated ids accumulate: row 2 appears three times, row 1 never
    np.testing.assert_array_equal(backend.to_host(emb.weight.grad)[:, 0], [2, 0, 3, 0, 1])


@pytest.mark.parametrize("bad", [5, -1, 100])
def test_embedding_out_of_range_id_raises_on_every_device(device, bad):
    emb = nn.Embedding(5, 3, rng=0, device=device)
    ids = np.array([[0, bad]])
    for given in (ids, backend.to_device(ids, device), ml.tensor(ids, device=device)):
        with pytest.raises(ValueError, match=f"token id {bad} is out of range .* 5 rows"):
            emb(given)
    with pytest.raises(TypeError, match="integers"):
        emb(np.array([0.0, 1.0]))


def test_sequential_gradcheck(device):
    seq = nn.Sequential(
        nn.Linear(3, 4, rng=0, device=device), nn.GELU(), nn.LayerNorm(4, device=device),
        nn.Linear(4, 2, rng=1, device=device),
    ).astype(np.float64)
    x = _x((2, 3), device)
    assert ml.gradcheck(lambda *_: seq(x), x, *seq.parameters(), rtol=1e-5)


# -- Dropout ------------------------------------------------------------------------------------


def test_dropout_eval_mode_is_identity(device):
    drop = nn.Dropout(0.5, rng=0).eval()
    x = _x((10, 10), device, dtype=np.float32)
    np.testing.assert_array_equal(drop(x).numpy(), x.numpy())
    assert nn.Dropout(0.0, rng=0)(x) is x  # p = 0: identity even while training


def test_dropout_training_zeroes_p_and_scales_the_rest(device):
    p = 0.3
    drop = nn.Dropout(p, rng=0)
    x = ml.ones((200, 200), device=device, requires_grad=True)
    out = drop(x)
    assert out.device == device
    y = out.numpy()
    assert abs((y == 0).mean() - p) < 0.01
    np.testing.assert_allclose(y[y != 0], 1 / (1 - p), rtol=1e-6)
    out.sum().backward()  # the gradient is the same mask
    np.testing.assert_array_equal(backend.to_host(x.grad), y)


def test_dropout_same_seed_same_mask_and_masks_change_between_calls(device):
    x = ml.ones((50, 50), device=device)
    a, b = nn.Dropout(0.5, rng=7), nn.Dropout(0.5, rng=7)
    first = a(x).numpy()
    np.testing.assert_array_equal(first, b(x).numpy())
    assert not np.array_equal(first, a(x).numpy())


def test_dropout_rejects_bad_probability():
    for p in (-0.1, 1.0):
        with pytest.raises(ValueError, match="p must be in"):
            nn.Dropout(p)


def test_modulelist_item_assignment_replaces_in_place():
    layers = nn.ModuleList([nn.Linear(2, 2, rng=0), nn.Linear(2, 2, rng=1)])
    replacement = nn.Linear(2, 3, rng=2)
    layers[-1] = replacement
    assert layers[1] is replacement
    assert dict(layers.named_parameters())["1.weight"] is replacement.weight
    with pytest.raises(IndexError, match="out of range"):
        layers[2] = replacement


def test_named_parameters_without_recursion_lists_only_the_modules_own():
    seq = nn.Sequential(nn.Linear(2, 3, rng=0), nn.Linear(3, 1, rng=1))
    assert list(seq.named_parameters(recurse=False)) == []
    assert [name for name, _ in seq[0].named_parameters(recurse=False)] == ["weight", "bias"]
    assert len(list(seq.named_parameters())) == 4
