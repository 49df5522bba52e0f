"""Bottleneck adapters (minilora.alternatives.bottleneck): identity at step 0, the parameter count, placement,
only the adapters train, float64 gradients on every device, the registry entry and its files."""

from __future__ import annotations

import numpy as np
import pytest

import minilora as ml
from minilora import backend
from minilora.alternatives import (
    AdaptedModule,
    AdapterConfig,
    BottleneckAdapter,
    adapter_layers,
    adapter_param_count,
    apply_adapters,
)
from minilora.models import GPT, GPTConfig

CFG = GPTConfig(vocab_size=16, block_size=8, n_layer=2, n_head=2, n_embd=16)


def _ids(shape, seed=0):
    return np.random.default_rng(seed).integers(0, CFG.vocab_size, shape)


@pytest.mark.parametrize("placement", ["houlsby", "lin"])
def test_the_adapted_model_computes_the_base_logits_bit_for_bit_at_step_0(device, placement):
    model = GPT(CFG, seed=1, device=device)
    idx = backend.to_device(_ids((3, 8)), device)
    with ml.no_grad():
        before = backend.to_host(model(idx)[0].data)
        apply_adapters(model, AdapterConfig(4, placement), seed=2)
        after = backend.to_host(model(idx)[0].data)
    np.testing.assert_array_equal(after, before)


@pytest.mark.parametrize("placement, names", [
    ("houlsby", ["blocks.0.attn", "blocks.0.mlp", "blocks.1.attn", "blocks.1.mlp"]),
    ("lin", ["blocks.0.mlp", "blocks.1.mlp"]),
])
def test_placement_decides_which_sublayers_get_an_adapter(placement, names):
    model = apply_adapters(GPT(CFG), AdapterConfig(4, placement))
    assert [name for name, _ in adapter_layers(model)] == names


@pytest.mark.parametrize("placement", ["houlsby", "lin"])
@pytest.mark.parametrize("m", [1, 4, 16])
def test_only_the_adapters_train_and_their_count_is_the_formula(placement, m):
    model = apply_adapters(GPT(CFG), AdapterConfig(m, placement))
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(".adapter." in name for name in trainable)
    d, n = CFG.n_embd, 2 * CFG.n_layer if placement == "houlsby" else CFG.n_layer
    assert model.num_parameters(trainable_only=True) == adapter_param_count(d, CFG.n_layer, m, placement)
    assert adapter_param_count(d, CFG.n_layer, m, placement) == n * (2 * d * m + m + d)


def test_up_projection_starts_at_zero_and_down_is_seeded():
    a = apply_adapters(GPT(CFG), AdapterConfig(4), seed=3).state_dict()
    b = apply_adapters(GPT(CFG), AdapterConfig(4), seed=3).state_dict()
    c = apply_adapters(GPT(CFG), AdapterConfig(4), seed=4).state_dict()
    assert not a["blocks.0.mlp.adapter.up.weight"].any() and not a["blocks.0.mlp.adapter.up.bias"].any()
    np.testing.assert_array_equal(a["blocks.1.attn.adapter.down.weight"], b["blocks.1.attn.adapter.down.weight"])
    assert not np.array_equal(a["blocks.1.attn.adapter.down.weight"], c["blocks.1.attn.adapter.down.weight"])


def test_adapter_layer_gradcheck_float64(device):
    rng = np.random.default_rng(0)
    adapter = BottleneckAdapter(6, 3, rng=rng, dtype=np.float64, device=device)
    adapter.up.weight.data = backend.to_device(rng.normal(0, 0.5, (6, 3)), device)  # not zero: a real check
    x = ml.tensor(backend.to_device(rng.normal(size=(2, 4, 6)), device), requires_grad=True)
    params = [adapter.down.weight, adapter.down.bias, adapter.up.weight, adapter.up.bias]
    assert ml.gradcheck(lambda *_: adapter(x), x, *params, rtol=1e-5)


def test_adapted_gpt_loss_gradcheck_float64(device):
    model = apply_adapters(GPT(CFG, seed=5, device=device), AdapterConfig(2, "houlsby"), seed=6).astype(np.float64)
    rng = np.random.default_rng(7)
    for _, layer in adapter_layers(model):  # non-zero up-projections, so down gets a gradient too
        up = layer.adapter.up.weight
        up.data = backend.to_device(rng.normal(0, 0.3, up.shape), device)
    idx, targets = backend.to_device(_ids((2, 5), 8), device), backend.to_device(_ids((2, 5), 9), device)
    params = [p for name, p in model.named_parameters() if name.startswith("blocks.1.attn.adapter")]
    assert ml.gradcheck(lambda *_: model(idx, targets)[1], *params, rtol=1e-5)
    model.zero_grad()
    model(idx, targets)[1].backward()
    assert all(p.grad is None for name, p in model.named_parameters() if ".adapter." not in name)


def test_wrapping_keeps_the_base_module_and_refuses_a_second_time():
    model = GPT(CFG)
    attn = model.blocks[0].attn
    apply_adapters(model)
    assert isinstance(model.blocks[0].attn, AdaptedModule) and model.blocks[0].attn.base is attn
    with pytest.raises(ValueError, match="already has bottleneck adapters"):
        apply_adapters(model)


@pytest.mark.parametrize("kwargs, match", [
    ({"bottleneck": 0}, "bottleneck must be an integer >= 1, got 0"),
    ({"bottleneck": 2.5}, "bottleneck must be an integer >= 1"),
    ({"bottleneck": True}, "bottleneck must be an integer >= 1"),
    ({"placement": "pfeiffer"}, "placement must be one of houlsby, lin, got 'pfeiffer'"),
])
def test_bad_settings_are_one_line_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AdapterConfig(**kwargs)


def test_a_model_without_the_sublayers_is_refused():
    with pytest.raises(ValueError, match="no module named attn or mlp"):
        apply_adapters(ml.nn.Sequential(ml.nn.Linear(4, 4)))


def test_the_adapter_computes_h_plus_up_gelu_down_h():
    rng = np.random.default_rng(1)
    adapter = BottleneckAdapter(5, 2, rng=rng, dtype=np.float64)
    adapter.up.weight.data, adapter.up.bias.data = rng.normal(size=(5, 2)), rng.normal(size=5)
    h = rng.normal(size=(3, 5))
    z = h @ adapter.down.weight.data.T + adapter.down.bias.data
    gelu = 0.5 * z * (1 + np.tanh(np.sqrt(2 / np.pi) * (z + 0.044715 * z**3)))
    expected = h + gelu @ adapter.up.weight.data.T + adapter.up.bias.data
    np.testing.assert_allclose(adapter(ml.tensor(h)).numpy(), expected, rtol=1e-12)
