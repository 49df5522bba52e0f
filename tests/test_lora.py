"""LoRA layers and their injection into models (minilora/lora/layer.py, minilora/lora/inject.py)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from lora_fixtures import CFG, batch, host

from minilora import backend, nn, optim
from minilora.engine import fused
from minilora.engine.gradcheck import gradcheck
from minilora.engine.tensor import Tensor, no_grad
from minilora.lora import (
    LoraConfig,
    LoRALinear,
    apply_lora,
    lora_layers,
    lora_parameters,
    merge_and_unload,
    merge_lora,
    unmerge_lora,
)
from minilora.models import GPT


def randomize_B(model_or_layer, seed=1, scale=0.1):
    """Give every lora_B nonzero values (at init B = 0, which hides most bugs)."""
    rng = np.random.default_rng(seed)
    layers = ([model_or_layer] if isinstance(model_or_layer, LoRALinear)
              else [layer for _, layer in lora_layers(model_or_layer)])
    for layer in layers:
        b = layer.lora_B
        b.data = backend.to_device((scale * rng.standard_normal(b.shape)).astype(b.dtype), b.device)


def lora_layer(device, d=6, k=5, r=2, dtype=np.float32, init_lora_weights="gaussian", **kwargs):
    base = nn.Linear(k, d, rng=0, dtype=dtype, device=device)
    return LoRALinear(base, r=r, rng=1, init_lora_weights=init_lora_weights, **kwargs)


class MLP(nn.Module):
    """Not a GPT: LoRA must work on any module tree (attributes, ModuleList, Sequential)."""

    def __init__(self, device):
        super().__init__()
        self.fc1 = nn.Linear(6, 8, rng=0, device=device)
        self.blocks = nn.ModuleList([nn.Linear(8, 8, rng=i + 1, device=device) for i in range(2)])
        self.head = nn.Sequential(nn.GELU(), nn.Linear(8, 3, rng=9, device=device))

    def forward(self, x):
        x = self.fc1(x).relu()
        for block in self.blocks:
            x = block(x).relu()
        return self.head(x)


# -- LoraConfig -------------------------------------------------------------------------------------


def test_config_defaults_and_scaling():
    c = LoraConfig()
    assert (c.r, c.lora_alpha, c.lora_dropout, c.scaling, c.target_modules) == (4, None, 0.0, 1.0, ("q_proj", "v_proj"))
    assert (c.init_lora_weights, c.use_rslora) == (True, False)         # PEFT's defaults: kaiming-uniform A
    assert LoraConfig(r=4, lora_alpha=16).scaling == 4.0                 # α / r
    assert LoraConfig(r=4, lora_alpha=16, use_rslora=True).scaling == 8.0  # α / sqrt(r)
    assert LoraConfig(r=9, use_rslora=True).scaling == 3.0               # α = r when None: r / sqrt(r)
    assert LoraConfig(target_modules="q_proj").target_modules == ("q_proj",)
    assert LoraConfig(target_modules=["q_proj", "k_proj"]).target_modules == ("q_proj", "k_proj")


@pytest.mark.parametrize("kwargs, shown", [
    ({"r": 0}, "r must be an integer >= 1, got 0"),
    ({"r": 2.5}, "got 2.5"),
    ({"r": True}, "got True"),
    ({"lora_alpha": -1.0}, "lora_alpha must be a positive number (or None, meaning lora_alpha = r), got -1.0"),
    ({"lora_alpha": float("inf")}, "got inf"),
    ({"lora_dropout": 1.0}, "lora_dropout must be a number in [0, 1), got 1.0"),
    ({"lora_dropout": -0.1}, "got -0.1"),
    ({"init_lora_weights": "xavier"}, "init_lora_weights must be True (kaiming-uniform A, PEFT's default), 'gaussian', "
     "'pissa' or 'olora', got 'xavier'"),
    ({"init_lora_weights": "kaiming"}, "got 'kaiming'"),       # minilora's old spelling: PEFT says True
    ({"init_lora_weights": 1}, "got 1"),
    ({"target_modules": ()}, "got ()"),
    ({"target_modules": ("q_proj", "")}, "non-empty"),
    ({"use_rslora": "yes"}, "got 'yes'"),
])
def test_config_rejects_bad_values(kwargs, shown):
    with pytest.raises(ValueError, match=re.escape(shown)):
        LoraConfig(**kwargs)
    layer_kwargs = {k: v for k, v in kwargs.items() if k != "target_modules"}
    if layer_kwargs:                                      # the layer speaks the same names, checked by the same code
        with pytest.raises(ValueError, match=re.escape(shown)):
            LoRALinear(nn.Linear(5, 6), **layer_kwargs)


def test_old_spellings_are_gone():
    """One spelling, PEFT's: alpha / dropout / init are not accepted (no second name for one setting)."""
    for old in ("alpha", "dropout", "init"):
        with pytest.raises(TypeError, match=old):
            LoraConfig(**{old: 1})
        with pytest.raises(TypeError, match=old):
            LoRALinear(nn.Linear(5, 6), **{old: 1})


def test_numpy_numbers_become_python_numbers():
    """NumPy scalars (e.g. from a sweep over np.arange) are stored as int/float: configs are written as JSON."""
    c = LoraConfig(r=np.int64(4), lora_alpha=np.float32(8), lora_dropout=np.float64(0.25), use_rslora=np.bool_(False))
    assert (c.r, c.lora_alpha, c.lora_dropout, c.use_rslora) == (4, 8.0, 0.25, False)
    assert [type(v) for v in (c.r, c.lora_alpha, c.lora_dropout, c.use_rslora)] == [int, float, float, bool]
    assert (type(LoraConfig(lora_alpha=np.int32(16)).lora_alpha) is int
            and type(LoraConfig(lora_alpha=16).lora_alpha) is int)
    layer = LoRALinear(nn.Linear(5, 6), r=np.int64(2), lora_alpha=np.float32(8), lora_dropout=np.float32(0.5),
                       use_rslora=np.bool_(True))
    assert ([type(v) for v in (layer.r, layer.lora_alpha, layer.lora_dropout.p, layer.use_rslora)]
            == [int, float, float, bool])
    assert type(LoRALinear(nn.Linear(5, 6), r=np.int64(2)).lora_alpha) is int   # alpha None: alpha = r


# -- LoRALinear -------------------------------------------------------------------------------------


def test_layer_shapes_init_and_freezing(device):
    layer = lora_layer(device, d=6, k=5, r=2)
    assert layer.lora_A.shape == (2, 5) and layer.lora_B.shape == (6, 2)
    assert layer.lora_A.device == layer.lora_B.device == device
    assert layer.lora_A.dtype == layer.lora_B.dtype == np.float32
    assert not np.any(host(layer.lora_B))                        # B = 0
    assert np.any(host(layer.lora_A))
    assert layer.lora_A.requires_grad and layer.lora_B.requires_grad
    assert not layer.base.weight.requires_grad and not layer.base.bias.requires_grad
    assert [n for n, p in layer.named_parameters() if p.requires_grad] == ["lora_A", "lora_B"]
    assert "r=2" in repr(layer) and "merged=False" in repr(layer)
    assert lora_layer(device, dtype=np.float64).lora_A.dtype == np.float64


def test_init_distributions():
    g = LoRALinear(nn.Linear(512, 512, rng=0), r=8, rng=0, init_lora_weights="gaussian").lora_A.numpy()
    assert abs(g.std() - 1 / 8) < 0.005 and abs(g.mean()) < 0.005        # PEFT: N(0, (1/r)²)
    u = LoRALinear(nn.Linear(400, 512, rng=0), r=8, rng=0).lora_A.numpy()   # True, the default: kaiming-uniform
    bound = 1 / np.sqrt(400)                                             # kaiming-uniform, a = sqrt(5)
    assert np.abs(u).max() <= bound and np.abs(u).max() > 0.99 * bound
    assert abs(u.std() - bound / np.sqrt(3)) < 0.002


def test_same_seed_same_adapter_on_every_device(device):
    a_cpu = lora_layer("cpu").lora_A.numpy()
    np.testing.assert_array_equal(host(lora_layer(device).lora_A), a_cpu)


def test_rank_outside_range_is_an_error():
    base = nn.Linear(5, 6)
    with pytest.raises(ValueError, match=r"r=6 is too large for a 6x5 weight.*min\(d, k\) = 5"):
        LoRALinear(base, r=6)
    with pytest.raises(ValueError, match="got 0"):
        LoRALinear(base, r=0)
    with pytest.raises(TypeError, match="wraps an nn.Linear, got LayerNorm"):
        LoRALinear(nn.LayerNorm(4), r=1)
    assert LoRALinear(base, r=5).r == 5


def test_output_equals_base_at_init(device):
    layer = lora_layer(device)
    x = Tensor(backend.to_device(np.random.default_rng(2).standard_normal((2, 3, 5)).astype(np.float32), device))
    np.testing.assert_array_equal(host(layer(x)), host(layer.base(x)))


@pytest.mark.parametrize("use_rslora", [False, True])
def test_gradcheck_float64(device, use_rslora):
    layer = lora_layer(device, d=4, k=5, r=2, dtype=np.float64, lora_alpha=3.0, use_rslora=use_rslora)
    randomize_B(layer, scale=0.5)
    layer.lora_A.data = layer.lora_A.data * 3  # O(1) entries: a sharper test than N(0, 1/r²)
    x = Tensor(backend.to_device(np.random.default_rng(3).standard_normal((2, 3, 5)), device), requires_grad=True)
    assert gradcheck(lambda x, A, B: layer(x), x, layer.lora_A, layer.lora_B, rtol=1e-5)
    assert layer.base.weight.grad is None and layer.base.bias.grad is None


def test_forward_matches_formula(device):
    layer = lora_layer(device, d=6, k=5, r=3, lora_alpha=6.0)
    randomize_B(layer)
    x = np.random.default_rng(4).standard_normal((4, 5)).astype(np.float32)
    y = host(layer(Tensor(backend.to_device(x, device))))
    w0, b = host(layer.base.weight), host(layer.base.bias)
    a, bm = host(layer.lora_A), host(layer.lora_B)
    np.testing.assert_allclose(y, x @ w0.T + b + 2.0 * (x @ a.T) @ bm.T, rtol=1e-5, atol=1e-6)


def test_dropout_only_while_training(device):
    layer = lora_layer(device, lora_dropout=0.5)
    randomize_B(layer, scale=1.0)
    x = Tensor(backend.to_device(np.ones((8, 5), np.float32), device))
    y_train = host(layer(x))
    layer.eval()
    y_eval1, y_eval2 = host(layer(x)), host(layer(x))
    np.testing.assert_array_equal(y_eval1, y_eval2)
    assert not np.allclose(y_train, y_eval1)


# -- merge / unmerge --------------------------------------------------------------------------------


def test_merge_unmerge_is_exact(device):
    layer = lora_layer(device, d=16, k=12, r=4, lora_alpha=8.0)
    w0 = host(layer.base.weight).copy()
    x = Tensor(backend.to_device(np.random.default_rng(5).standard_normal((3, 12)).astype(np.float32), device))
    for cycle in range(3):
        randomize_B(layer, seed=cycle)       # as if training changed B between merges
        layer.eval()
        y = host(layer(x))
        layer.merge()
        assert layer.merged
        merged_w = host(layer.base.weight).copy()
        layer.merge()                        # twice: a no-op
        np.testing.assert_array_equal(host(layer.base.weight), merged_w)
        np.testing.assert_allclose(host(layer(x)), y, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(merged_w, w0 + host(layer.delta_weight()), rtol=0, atol=0)
        layer.unmerge()
        assert not layer.merged
        np.testing.assert_array_equal(host(layer.base.weight), w0)   # bit for bit
        layer.unmerge()                      # twice: a no-op
        np.testing.assert_array_equal(host(layer.base.weight), w0)
    # why W0 is kept: subtracting the update back is not exact in floating point
    delta = host(layer.delta_weight())
    assert not np.array_equal((w0 + delta) - delta, w0)


@given(d=st.integers(1, 12), k=st.integers(1, 12), data=st.data(), dtype=st.sampled_from([np.float32, np.float64]))
def test_merge_property_any_shape(d, k, data, dtype):
    r = data.draw(st.integers(1, min(d, k)), label="r")
    alpha = data.draw(st.floats(0.5, 32.0), label="alpha")
    seed = data.draw(st.integers(0, 2**16), label="seed")
    layer = LoRALinear(nn.Linear(k, d, rng=seed, dtype=dtype), r=r, lora_alpha=alpha, rng=seed).eval()
    randomize_B(layer, seed=seed)
    x = Tensor(np.random.default_rng(seed).standard_normal((3, k)).astype(dtype))
    w0, y = layer.base.weight.numpy().copy(), layer(x).numpy()
    layer.merge()
    np.testing.assert_allclose(layer(x).numpy(), y, rtol=1e-4, atol=1e-5)
    layer.unmerge()
    np.testing.assert_array_equal(layer.base.weight.numpy(), w0)
    assert layer.base.weight.dtype == dtype


def test_merged_layer_refuses_to_train(device):
    layer = lora_layer(device)
    x = Tensor(backend.to_device(np.ones((2, 5), np.float32), device))
    layer.merge()
    with pytest.raises(RuntimeError, match="merged.*unmerge"):
        layer(x)
    with no_grad():
        layer(x)                              # inference in training mode, no gradients: fine
    layer.eval()
    layer(x)                                  # eval mode: fine
    layer.unmerge()
    layer.train()
    layer(x).sum().backward()
    assert layer.lora_B.grad is not None


def test_unmerge_after_moving_device(device):
    layer = lora_layer("cpu")
    randomize_B(layer)
    w0 = layer.base.weight.numpy().copy()
    layer.merge()
    layer.to(device)
    layer.unmerge()
    assert layer.base.weight.device == device
    np.testing.assert_array_equal(host(layer.base.weight), w0)


# -- apply_lora on a GPT ----------------------------------------------------------------------------


def test_apply_lora_gpt_names_freezing_and_identity(device):
    idx, _ = batch(device)
    plain = GPT(CFG, seed=0, device=device)
    model = apply_lora(GPT(CFG, seed=0, device=device), LoraConfig(r=2))
    names = [n for n, _ in lora_layers(model)]
    assert names == [f"blocks.{i}.attn.{p}" for i in range(2) for p in ("q_proj", "v_proj")]
    assert isinstance(model.blocks[1].attn.v_proj, LoRALinear)
    assert not isinstance(model.blocks[1].attn.k_proj, LoRALinear)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable == [f"{n}.lora_{m}" for n in names for m in "AB"]
    assert [id(p) for p in lora_parameters(model)] == [id(p) for p in model.parameters() if p.requires_grad]
    assert model.lora_config == LoraConfig(r=2)
    np.testing.assert_array_equal(host(model(idx)[0]), host(plain(idx)[0]))   # B = 0: the base model


def test_only_lora_gets_gradients_and_base_gets_none_computed(device, monkeypatch):
    model = apply_lora(GPT(CFG, seed=0, device=device), LoraConfig(r=2, target_modules=("q_proj", "v_proj", "fc_in")))
    randomize_B(model)
    calls = []
    original = fused.LinearFn.backward

    def spy(ctx, g):
        grads = original(ctx, g)
        calls.append((ctx.inputs[1].requires_grad, ctx.needs_input_grad[1], grads[1] is not None))
        return grads

    monkeypatch.setattr(fused.LinearFn, "backward", staticmethod(spy))
    idx, targets = batch(device)
    _, loss = model(idx, targets)
    loss.backward()
    for name, p in model.named_parameters():
        if "lora_" in name:
            assert p.grad is not None and p.grad.shape == p.shape, name
            assert np.isfinite(host(p.grad)).all()
        else:
            assert p.grad is None, name
    frozen_calls = [c for c in calls if not c[0]]  # weight input does not require grad
    assert frozen_calls, "the frozen base Linears ran backward (for dx)"
    assert not any(needed or computed for _, needed, computed in frozen_calls)   # no dW computed
    assert any(computed for trainable, _, computed in calls if trainable)        # lora_A / lora_B got dW


def test_training_changes_only_lora(device):
    model = apply_lora(GPT(CFG, seed=0, device=device), LoraConfig(r=4, lora_alpha=8))
    before = model.state_dict()
    opt = optim.AdamW(model.parameters(), lr=1e-2)   # ALL parameters, frozen ones included
    idx, targets = batch(device)
    losses = []
    for _ in range(8):
        _, loss = model(idx, targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    after = model.state_dict()
    for name, value in before.items():
        if "lora_" in name:
            assert not np.array_equal(after[name], value), name
        else:
            np.testing.assert_array_equal(after[name], value, err_msg=name)
    assert set(opt.state) == {id(p) for p in lora_parameters(model)}


def test_merge_lora_gpt(device):
    model = apply_lora(GPT(CFG, seed=0, device=device),
                       LoraConfig(r=2, target_modules=("q_proj", "k_proj", "v_proj", "o_proj")))
    randomize_B(model)
    model.eval()
    idx, _ = batch(device)
    before = model.state_dict()
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    logits = host(model(idx)[0])
    merge_lora(model)
    assert all(layer.merged for _, layer in lora_layers(model))
    assert [n for n, p in model.named_parameters() if p.requires_grad] == trainable   # W0 + s·B A stays frozen
    np.testing.assert_allclose(host(model(idx)[0]), logits, rtol=1e-4, atol=1e-5)
    for _ in range(2):
        unmerge_lora(model)
        merge_lora(model)
    unmerge_lora(model)
    assert [n for n, p in model.named_parameters() if p.requires_grad] == trainable   # still only A and B
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name], err_msg=name)
    np.testing.assert_array_equal(host(model(idx)[0]), logits)


def test_merge_and_unload(device):
    model = apply_lora(GPT(CFG, seed=0, device=device), LoraConfig(r=2))
    randomize_B(model)
    model.eval()
    idx, _ = batch(device)
    logits = host(model(idx)[0])
    merge_and_unload(model)
    assert not lora_layers(model) and not hasattr(model, "lora_config")
    assert not any(p.requires_grad for p in model.parameters())   # stays frozen, as documented
    assert type(model.blocks[0].attn.q_proj) is nn.Linear
    fresh = GPT(CFG, seed=1, device=device).eval()
    fresh.load_state_dict(model.state_dict())   # a plain GPT again: same names
    np.testing.assert_allclose(host(fresh(idx)[0]), logits, rtol=1e-4, atol=1e-5)


def test_merge_without_lora_is_an_error():
    for fn in (merge_lora, unmerge_lora, merge_and_unload):
        with pytest.raises(ValueError, match=rf"^{fn.__name__}: GPT has no LoRA layers; call apply_lora"):
            fn(GPT(CFG))


# -- apply_lora errors and other models ----------------------------------------------------------


def test_unknown_target_lists_existing_linears():
    model = GPT(CFG)
    with pytest.raises(ValueError, match=r"'query'.*blocks\.0\.attn\.q_proj.*blocks\.1\.mlp\.fc_out.*head") as err:
        apply_lora(model, LoraConfig(target_modules=("q_proj", "query")))
    assert "q_proj" in str(err.value) and "fc_in" in str(err.value)
    with pytest.raises(ValueError, match=r"'ln_f'.*not Linear: ln_f \(LayerNorm\)"):
        apply_lora(model, LoraConfig(target_modules=("ln_f",)))
    assert not lora_layers(model) and all(p.requires_grad for p in model.parameters())  # untouched


def test_rank_too_big_names_the_layer():
    model = GPT(CFG)
    with pytest.raises(ValueError, match=r"r=17 is too large for blocks\.0\.attn\.q_proj, a 16x16 weight.*= 16"):
        apply_lora(model, LoraConfig(r=17))
    assert not lora_layers(model)


def test_apply_twice_is_an_error():
    model = apply_lora(GPT(CFG), LoraConfig(r=2))
    with pytest.raises(ValueError, match="already has LoRA layers"):
        apply_lora(model, LoraConfig(r=2, target_modules=("k_proj",)))


def test_custom_mlp(device):
    model = MLP(device)
    x = Tensor(backend.to_device(np.random.default_rng(6).standard_normal((5, 6)).astype(np.float32), device))
    y0 = host(model(x))
    apply_lora(model, LoraConfig(r=2, target_modules=("fc1", "blocks.1", "head.1")))  # suffixes with dots too
    assert [n for n, _ in lora_layers(model)] == ["fc1", "blocks.1", "head.1"]
    assert isinstance(model.blocks[1], LoRALinear) and isinstance(model.head[1], LoRALinear)  # ModuleList order kept
    assert not isinstance(model.blocks[0], LoRALinear)
    np.testing.assert_array_equal(host(model(x)), y0)
    opt = optim.SGD(model.parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        (model(x) ** 2).mean().backward()
        opt.step()
    assert not np.allclose(host(model(x)), y0)
    assert {n for n, p in model.named_parameters() if p.grad is not None} == {
        f"{m}.lora_{ab}" for m in ("fc1", "blocks.1", "head.1") for ab in "AB"}
