"""DoRA (minilora/lora/variants/dora.py): W' = m ⊙ (W0 + s·B A) / ‖W0 + s·B A‖, the norm detached."""

from __future__ import annotations

import json

import numpy as np
import pytest
from lora_fixtures import CFG, host

from minilora import backend, nn, optim
from minilora.engine.gradcheck import gradcheck
from minilora.engine.tensor import Tensor, no_grad
from minilora.io import load_arrays
from minilora.lora import (
    DoraLinear,
    LoraConfig,
    LoRALinear,
    apply_lora,
    load_adapter,
    lora_layers,
    lora_parameters,
    merge_lora,
    save_adapter,
    unmerge_lora,
)
from minilora.lora.adapters import CONFIG_NAME, WEIGHTS_NAME, peft_magnitude_key
from minilora.models import GPT


def dora_layer(device, d=6, k=5, r=2, dtype=np.float32, **kwargs):
    base = nn.Linear(k, d, rng=0, dtype=dtype, device=device)
    return DoraLinear(base, r=r, rng=1, init_lora_weights="gaussian", **kwargs)


def randomize(layer, seed=1, scale=0.5):
    """Nonzero B, and m away from ‖W0‖: at init both hide most bugs."""
    rng = np.random.default_rng(seed)
    for p in (layer.lora_A, layer.lora_B):
        p.data = backend.to_device((scale * rng.standard_normal(p.shape)).astype(p.dtype), p.device)
    m = layer.lora_magnitude_vector
    m.data = m.data * backend.to_device(rng.uniform(0.5, 1.5, m.shape).astype(m.dtype), m.device)


def inputs(device, shape=(2, 3, 5), dtype=np.float32, seed=2):
    return Tensor(backend.to_device(np.random.default_rng(seed).standard_normal(shape).astype(dtype), device))


def reference(layer, x):
    """DoRA's forward in NumPy, float64: y = m / ‖W0 + s·B A‖_rows ⊙ (x (W0 + s·B A)ᵀ) + b."""
    w0, b = host(layer.base.weight).astype(np.float64), host(layer.base.bias).astype(np.float64)
    a, bm, m = (host(p).astype(np.float64) for p in (layer.lora_A, layer.lora_B, layer.lora_magnitude_vector))
    w = w0 + layer.scaling * bm @ a
    return (m / np.linalg.norm(w, axis=1)) * (x @ w.T) + b


def test_magnitude_starts_at_row_norms_and_step0_is_the_base(device):
    layer = dora_layer(device, lora_alpha=3.0)
    m, w0 = host(layer.lora_magnitude_vector), host(layer.base.weight)
    assert m.shape == (6,)                                              # one magnitude per output feature
    np.testing.assert_allclose(m, np.linalg.norm(w0, axis=1), rtol=1e-6)  # rows: the norm over the inputs
    x = inputs(device)
    np.testing.assert_allclose(host(layer(x)), host(layer.base(x)), rtol=1e-6, atol=1e-6)


def test_forward_matches_formula(device):
    layer = dora_layer(device, lora_alpha=6.0)
    randomize(layer)
    x = inputs(device)
    np.testing.assert_allclose(host(layer(x)), reference(layer, host(x).astype(np.float64)), rtol=1e-5, atol=1e-5)


def test_bias_is_not_rescaled(device):
    layer = dora_layer(device)
    randomize(layer)
    x = inputs(device)
    y = host(layer(x))
    layer.base.bias.data = layer.base.bias.data + 1.0
    np.testing.assert_allclose(host(layer(x)), y + 1.0, rtol=1e-5, atol=1e-5)


def test_gradcheck_float64_with_the_norm_held_constant(device):
    """The norm is detached, so backward gives the gradient of f(x, A, B, m; N) with N = ‖W0 + s·B A‖ a constant.

    Honest finite differences of *that* function: N is frozen at its value at the checked point (it is the true
    norm there), and every nudged A or B then leaves N alone, exactly as backward assumes.  Then two checks
    that the detachment is real and only where it should be: m does not enter N, so m's gradient is also
    the full derivative; B does, so the full derivative of the un-frozen forward differs from the gradient.
    """
    layer = dora_layer(device, d=4, k=5, r=2, dtype=np.float64, lora_alpha=3.0)
    randomize(layer, scale=1.0)
    x = Tensor(inputs(device, dtype=np.float64).data, requires_grad=True)
    frozen = layer.weight_norm()
    layer.weight_norm = lambda: frozen  # an instance attribute: the forward's N no longer follows A and B
    params = (layer.lora_A, layer.lora_B, layer.lora_magnitude_vector)
    assert gradcheck(lambda x, A, B, m: layer(x), x, *params, rtol=1e-5)
    assert layer.base.weight.grad is None and layer.base.bias.grad is None
    del layer.weight_norm  # back to the live norm
    np.testing.assert_array_equal(host(layer.weight_norm()), host(frozen))  # nothing was left nudged
    assert gradcheck(lambda x, m: layer(x), x, layer.lora_magnitude_vector, rtol=1e-5)
    with pytest.raises(AssertionError, match="input 1"):
        gradcheck(lambda x, B: layer(x), x, layer.lora_B, rtol=1e-5)


def test_merge_unmerge_exact(device):
    layer = dora_layer(device, lora_alpha=4.0)
    randomize(layer)
    w0 = host(layer.base.weight).copy()
    x = inputs(device)
    with no_grad():
        y = host(layer(x))
        layer.merge()
        assert layer.merged
        np.testing.assert_allclose(host(layer(x)), y, rtol=1e-5, atol=1e-5)
        w = w0 + layer.scaling * host(layer.lora_B) @ host(layer.lora_A)
        expected = (host(layer.lora_magnitude_vector) / np.linalg.norm(w, axis=1))[:, None] * w
        np.testing.assert_allclose(host(layer.base.weight), expected, rtol=1e-5, atol=1e-6)
    layer.unmerge()
    np.testing.assert_array_equal(host(layer.base.weight), w0)   # bit for bit
    with pytest.raises(RuntimeError, match="merged"):
        layer.merge()
        layer(x)                                                  # training mode, grad enabled


def test_apply_lora_use_dora_trains_a_b_and_m(device):
    model = GPT(CFG, seed=0, device=device)
    apply_lora(model, LoraConfig(r=2, target_modules=("q_proj", "v_proj"), use_dora=True,
                                 init_lora_weights="gaussian"), seed=0)
    layers = lora_layers(model)
    assert len(layers) == 4 and all(isinstance(layer, DoraLinear) for _, layer in layers)
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert {id(p) for p in trainable} == {id(p) for p in lora_parameters(model)}
    assert len(trainable) == 3 * 4
    rng = np.random.default_rng(0)
    idx = backend.to_device(rng.integers(0, CFG.vocab_size, (4, 8)), device)
    m0 = [host(layer.lora_magnitude_vector).copy() for _, layer in layers]
    opt = optim.AdamW(trainable, lr=1e-2, weight_decay=0.0)
    losses = []
    for _ in range(5):
        _, loss = model(idx, idx)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert all(not np.allclose(host(layer.lora_magnitude_vector), m) for (_, layer), m in zip(layers, m0))
    assert all(p.grad is None for n, p in model.named_parameters() if "base" in n)


def test_adapter_roundtrip(device, tmp_path):
    model = apply_lora(GPT(CFG, seed=0, device=device), LoraConfig(r=2, lora_alpha=4, use_dora=True), seed=0)
    for _, layer in lora_layers(model):
        randomize(layer, scale=0.2)
    idx = np.random.default_rng(1).integers(0, CFG.vocab_size, (2, 8))
    model.eval()
    expected = host(model(backend.to_device(idx, device))[0])
    save_adapter(model, tmp_path)
    config = json.loads((tmp_path / CONFIG_NAME).read_text())
    assert config["use_dora"] is True and config["peft_type"] == "LORA"
    arrays, _ = load_arrays(tmp_path / WEIGHTS_NAME)
    assert arrays[peft_magnitude_key("blocks.0.attn.q_proj")].shape == (CFG.n_embd,)
    assert len(arrays) == 3 * 4
    loaded = load_adapter(GPT(CFG, seed=0, device=device), tmp_path).eval()
    assert loaded.lora_config.use_dora and isinstance(lora_layers(loaded)[0][1], DoraLinear)
    np.testing.assert_allclose(host(loaded(backend.to_device(idx, device))[0]), expected, rtol=1e-5, atol=1e-5)
    merge_lora(loaded)
    np.testing.assert_allclose(host(loaded(backend.to_device(idx, device))[0]), expected, rtol=1e-4, atol=1e-5)
    unmerge_lora(loaded)
    plain = apply_lora(GPT(CFG, seed=0, device=device), LoraConfig(r=2, lora_alpha=4))
    with pytest.raises(ValueError, match="use_dora=True but the model's LoRA layer"):
        load_adapter(plain, tmp_path)


def test_config_checks():
    assert LoraConfig().use_dora is False
    with pytest.raises(ValueError, match="use_dora must be True or False, got 'yes'"):
        LoraConfig(use_dora="yes")
    with pytest.raises(ValueError, match="use_dora=True with init_lora_weights='pissa' is not supported"):
        LoraConfig(use_dora=True, init_lora_weights="pissa")
    assert not isinstance(LoRALinear(nn.Linear(3, 3, rng=0), r=1), DoraLinear)


def test_registry_method_dora():
    from minilora.experiments.methods import get_method

    method = get_method("dora")
    assert "use_dora" not in method.settings and method.adapter
    model = method.prepare(GPT(CFG, seed=0), {"r": 2, "target_modules": ["q_proj"]}, seed=0)
    assert all(isinstance(layer, DoraLinear) for _, layer in lora_layers(model)) and len(lora_layers(model)) == 2
    assert method.trainable(model) == 2 * (2 * (16 + 16) + 16)          # A, B and m per layer


class FixedMask(nn.Module):
    """A stand-in for the layer's dropout: multiplies by a known mask, so the training-mode formula can be checked."""

    def __init__(self, mask):
        super().__init__()
        self.mask = mask

    def forward(self, x):
        return x * Tensor(self.mask)


def test_dropout_path_is_peft_s(device):
    """With dropout active the base path sees x and the adapter dropout(x) = h, as in PEFT's DoraLinearLayer:
    y = x W0ᵀ + b + (m/‖·‖ − 1) ⊙ (h W0ᵀ) + (m/‖·‖) ⊙ s·(h Aᵀ) Bᵀ."""
    layer = dora_layer(device, lora_dropout=0.5)
    randomize(layer)
    x = inputs(device, shape=(4, 5))
    mask = (np.random.default_rng(5).random((4, 5)) > 0.5).astype(np.float32) * 2
    layer.lora_dropout = FixedMask(backend.to_device(mask, device))
    xh, w0, b = host(x), host(layer.base.weight), host(layer.base.bias)
    a, bm, m = host(layer.lora_A), host(layer.lora_B), host(layer.lora_magnitude_vector)
    scale = m / np.linalg.norm(w0 + layer.scaling * bm @ a, axis=1)
    h = xh * mask
    expected = xh @ w0.T + b + (scale - 1) * (h @ w0.T) + scale * (layer.scaling * (h @ a.T) @ bm.T)
    np.testing.assert_allclose(host(layer(x)), expected, rtol=1e-5, atol=1e-5)


def test_merge_and_unload_keeps_the_function(device):
    from minilora.lora import merge_and_unload

    model = apply_lora(GPT(CFG, seed=0, device=device), LoraConfig(r=2, use_dora=True), seed=0).eval()
    for _, layer in lora_layers(model):
        randomize(layer, scale=0.3)
    idx = backend.to_device(np.random.default_rng(1).integers(0, CFG.vocab_size, (2, 8)), device)
    expected = host(model(idx)[0])
    merge_and_unload(model)
    assert not lora_layers(model) and isinstance(model.blocks[0].attn.q_proj, nn.Linear)
    np.testing.assert_allclose(host(model(idx)[0]), expected, rtol=1e-4, atol=1e-5)
