"""VeRA (minilora/lora/variants/vera.py): shared frozen projections, trainable λ vectors, merge, files."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from lora_fixtures import CFG, batch, host

from minilora import backend, nn, optim
from minilora.engine.gradcheck import gradcheck
from minilora.engine.tensor import Tensor, no_grad
from minilora.lora import (
    LoraConfig,
    VeraConfig,
    VeraLinear,
    apply_lora,
    apply_vera,
    init_vera_projections,
    load_adapter,
    merge_vera,
    save_adapter,
    unmerge_vera,
    vera_layers,
    vera_param_count,
    vera_parameters,
)
from minilora.lora.adapters import CONFIG_NAME
from minilora.models import GPT

TARGETS = ("q_proj", "v_proj", "fc_in", "fc_out")


def vera_layer(device, d=6, k=5, r=3, K=7, D=9, dtype=np.float32, seed=0, **kwargs):
    """A VeraLinear whose projections are larger than it needs (K > k, D > d): slicing matters."""
    a, b = init_vera_projections(r, K, D, seed)
    shared = [nn.Parameter(backend.to_device(p.astype(dtype), device), requires_grad=False) for p in (a, b)]
    return VeraLinear(nn.Linear(k, d, rng=0, dtype=dtype, device=device), *shared, rng=1, **kwargs)


def randomize_lambdas(model_or_layer, seed=1, scale=0.5):
    """λ_b = 0 at init hides most bugs: give both vectors O(1) values, as after training."""
    rng = np.random.default_rng(seed)
    layers = ([model_or_layer] if isinstance(model_or_layer, VeraLinear)
              else [layer for _, layer in vera_layers(model_or_layer)])
    for layer in layers:
        for p in (layer.vera_lambda_b, layer.vera_lambda_d):
            p.data = backend.to_device((scale * rng.standard_normal(p.shape)).astype(p.dtype), p.device)


# -- config and projections ------------------------------------------------------------------------


def test_config_defaults_are_peft_and_bad_values_are_named():
    config = VeraConfig()
    assert (config.r, config.projection_prng_key, config.save_projection, config.vera_dropout, config.d_initial) == (
        256, 0, True, 0.0, 0.1)
    assert VeraConfig(target_modules="fc_in").target_modules == ("fc_in",)
    for kwargs, word in [({"r": 0}, "r must"), ({"r": 2.0}, "r must"), ({"vera_dropout": 1.0}, "vera_dropout"),
                         ({"d_initial": math.nan}, "d_initial"), ({"projection_prng_key": -1}, "projection_prng_key"),
                         ({"target_modules": ()}, "target_modules"), ({"save_projection": False}, "save_projection")]:
        with pytest.raises(ValueError, match=word):
            VeraConfig(**kwargs)


def test_projections_are_kaiming_uniform_and_seeded():
    a, b = init_vera_projections(64, 400, 300, projection_prng_key=3)
    assert a.shape == (64, 400) and b.shape == (300, 64)
    for m, fan_in in ((a, 400), (b, 64)):  # U(±sqrt(6 / fan_in)): max near the bound, variance bound²/3 = 2 / fan_in
        bound = math.sqrt(6 / fan_in)
        assert np.abs(m).max() <= bound and np.abs(m).max() > 0.99 * bound
        assert abs(m.var() * fan_in / 2 - 1) < 0.05
    np.testing.assert_array_equal(init_vera_projections(64, 400, 300, 3)[1], b)
    assert not np.allclose(init_vera_projections(64, 400, 300, 4)[0], a)


# -- the layer -------------------------------------------------------------------------------------


def test_layer_init_shapes_freezing_and_step0_is_base(device):
    layer = vera_layer(device, d_initial=0.25)
    assert layer.vera_A.shape == (3, 7) and layer.vera_B.shape == (9, 3)
    np.testing.assert_array_equal(host(layer.vera_lambda_d), np.full(3, 0.25, np.float32))
    np.testing.assert_array_equal(host(layer.vera_lambda_b), np.zeros(6, np.float32))
    trainable = [n for n, p in layer.named_parameters() if p.requires_grad]
    assert trainable == ["vera_lambda_d", "vera_lambda_b"]
    assert layer.vera_lambda_b.device == layer.vera_A.device == device
    x = Tensor(backend.to_device(np.random.default_rng(2).standard_normal((2, 3, 5)).astype(np.float32), device))
    np.testing.assert_array_equal(host(layer(x)), host(layer.base(x)))  # λ_b = 0: exactly the base


def test_forward_matches_formula_with_slices(device):
    layer = vera_layer(device)
    randomize_lambdas(layer)
    x = np.random.default_rng(4).standard_normal((4, 5)).astype(np.float32)
    y = host(layer(Tensor(backend.to_device(x, device))))
    w0, b = host(layer.base.weight), host(layer.base.bias)
    a, bm = host(layer.vera_A)[:, :5], host(layer.vera_B)[:6, :]   # PEFT's vera_A[:, :in], vera_B[:out, :]
    lb, ld = host(layer.vera_lambda_b), host(layer.vera_lambda_d)
    np.testing.assert_allclose(y, x @ w0.T + b + lb * ((ld * (x @ a.T)) @ bm.T), rtol=1e-5, atol=1e-6)
    delta = np.diag(lb) @ bm @ np.diag(ld) @ a
    np.testing.assert_allclose(host(layer.delta_weight()), delta, rtol=1e-5, atol=1e-7)


def test_gradcheck_float64(device):
    layer = vera_layer(device, d=4, k=5, r=3, dtype=np.float64)
    randomize_lambdas(layer)
    x = Tensor(backend.to_device(np.random.default_rng(3).standard_normal((2, 3, 5)), device), requires_grad=True)
    assert gradcheck(lambda x, ld, lb: layer(x), x, layer.vera_lambda_d, layer.vera_lambda_b, rtol=1e-5)
    assert layer.vera_A.grad is None and layer.vera_B.grad is None and layer.base.weight.grad is None


def test_at_init_only_lambda_b_has_a_nonzero_gradient(device):
    layer = vera_layer(device)
    x = Tensor(backend.to_device(np.random.default_rng(5).standard_normal((4, 5)).astype(np.float32), device))
    (layer(x) ** 2).sum().backward()
    assert np.abs(host(layer.vera_lambda_b.grad)).max() > 0
    np.testing.assert_array_equal(host(layer.vera_lambda_d.grad), np.zeros(3, np.float32))  # ∂/∂λ_d ∝ λ_b = 0


def test_merge_unmerge_is_exact_and_merged_refuses_training(device):
    layer = vera_layer(device, d=16, k=12, K=12, D=16, r=8)
    w0 = host(layer.base.weight).copy()
    x = Tensor(backend.to_device(np.random.default_rng(5).standard_normal((3, 12)).astype(np.float32), device))
    for cycle in range(2):
        randomize_lambdas(layer, seed=cycle)
        layer.eval()
        y = host(layer(x))
        layer.merge()
        layer.merge()  # twice: a no-op
        np.testing.assert_array_equal(host(layer.base.weight), w0 + host(layer.delta_weight()))
        np.testing.assert_allclose(host(layer(x)), y, rtol=1e-5, atol=1e-6)
        layer.train()
        with pytest.raises(RuntimeError, match="merged.*unmerge"):
            layer(x)
        with no_grad():
            layer(x)
        layer.unmerge()
        np.testing.assert_array_equal(host(layer.base.weight), w0)  # bit for bit


def test_layer_refuses_projections_too_small():
    with pytest.raises(ValueError, match=r"too small for a 6x5 weight.*K >= 5"):
        vera_layer("cpu", K=4)
    with pytest.raises(ValueError, match=r"D >= 6"):
        vera_layer("cpu", D=5)


# -- apply_vera on a GPT ---------------------------------------------------------------------------


def test_apply_vera_gpt_shares_projections_and_trains_only_lambdas(device):
    idx, targets = batch(device)
    plain = GPT(CFG, seed=0, device=device)
    config = VeraConfig(r=32, target_modules=TARGETS)  # r = 32 > n_embd = 16: allowed in VeRA
    model = apply_vera(GPT(CFG, seed=0, device=device), config)
    names = [n for n, _ in vera_layers(model)]
    assert names == [f"blocks.{i}.{p}" for i in range(2)
                     for p in ("attn.q_proj", "attn.v_proj", "mlp.fc_in", "mlp.fc_out")]
    layers = [layer for _, layer in vera_layers(model)]
    assert all(layer.vera_A is layers[0].vera_A and layer.vera_B is layers[0].vera_B for layer in layers)
    assert layers[0].vera_A.shape == (32, 64) and layers[0].vera_B.shape == (64, 32)  # k_max = d_max = 4 · 16
    a, b = init_vera_projections(32, 64, 64, 0)
    np.testing.assert_array_equal(host(layers[0].vera_A), a.astype(np.float32))
    np.testing.assert_array_equal(host(layers[0].vera_B), b.astype(np.float32))
    assert model.vera_config == config
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable == [f"{n}.vera_lambda_{v}" for n in names for v in "db"]
    assert [id(p) for p in vera_parameters(model)] == [id(p) for p in model.parameters() if p.requires_grad]
    expected = sum(32 + d for d in (16, 16, 64, 16)) * 2  # Σ_layers (r + out_features)
    assert vera_param_count(GPT(CFG, seed=0), config) == model.num_parameters(trainable_only=True) == expected
    assert vera_param_count(GPT(CFG, seed=0), VeraConfig(r=32, target_modules=("fc_in",))) == 2 * (32 + 64)
    np.testing.assert_array_equal(host(model(idx)[0]), host(plain(idx)[0]))  # step 0: the base model exactly

    opt = optim.AdamW(list(vera_parameters(model)), lr=1e-2)
    before = {n: host(p).copy() for n, p in model.named_parameters()}
    for _ in range(3):
        opt.zero_grad()
        model(idx, targets)[1].backward()
        opt.step()
    changed = {n for n, p in model.named_parameters() if not np.array_equal(host(p), before[n])}
    assert changed == set(trainable)


def test_apply_vera_refusals():
    with pytest.raises(ValueError, match=r"apply_vera: target module 'nope' matches no Linear"):
        apply_vera(GPT(CFG, seed=0), VeraConfig(r=4, target_modules=("nope",)))
    model = apply_vera(GPT(CFG, seed=0), VeraConfig(r=4))
    with pytest.raises(ValueError, match="already has adapter layers"):
        apply_vera(model, VeraConfig(r=4))
    with pytest.raises(ValueError, match="already has adapter layers"):
        apply_vera(apply_lora(GPT(CFG, seed=0), LoraConfig(r=2)), VeraConfig(r=4))
    with pytest.raises(TypeError, match="VeraConfig"):
        apply_vera(GPT(CFG, seed=0), LoraConfig(r=2))
    with pytest.raises(ValueError, match="unmerge_vera: GPT has no VeRA layers"):
        unmerge_vera(GPT(CFG, seed=0))


def test_merge_vera_model_exact_and_moves_with_the_model(device):
    idx, _ = batch(device)
    model = apply_vera(GPT(CFG, seed=0), VeraConfig(r=8, target_modules=TARGETS)).eval()
    randomize_lambdas(model)
    model.to(device)
    assert all(layer.vera_A.device == device for _, layer in vera_layers(model))
    w0 = {n: host(layer.base.weight).copy() for n, layer in vera_layers(model)}
    logits = host(model(idx)[0])
    merge_vera(model)
    assert all(layer.merged for _, layer in vera_layers(model))
    np.testing.assert_allclose(host(model(idx)[0]), logits, rtol=1e-4, atol=1e-5)
    unmerge_vera(model)
    for n, layer in vera_layers(model):
        np.testing.assert_array_equal(host(layer.base.weight), w0[n])


# -- adapter files -----------------------------------------------------------------------------------


def test_save_load_roundtrip(tmp_path, device):
    idx, _ = batch(device)
    model = apply_vera(GPT(CFG, seed=0, device=device), VeraConfig(r=8, target_modules=TARGETS, d_initial=0.05)).eval()
    randomize_lambdas(model)
    save_adapter(model, tmp_path, base_model_name_or_path="tiny")
    written = json.loads((tmp_path / CONFIG_NAME).read_text())
    assert ((written["peft_type"], written["r"], written["save_projection"], written["d_initial"])
            == ("VERA", 8, True, 0.05))
    loaded = load_adapter(GPT(CFG, seed=0, device=device), tmp_path).eval()
    assert loaded.vera_config == model.vera_config
    np.testing.assert_array_equal(host(loaded(idx)[0]), host(model(idx)[0]))
    with pytest.raises(ValueError, match="another base model"):
        load_adapter(GPT(CFG, seed=1), tmp_path)


def test_file_without_projections_is_refused_in_one_line(tmp_path):
    save_adapter(apply_vera(GPT(CFG, seed=0), VeraConfig(r=4)), tmp_path)
    config = json.loads((tmp_path / CONFIG_NAME).read_text())
    (tmp_path / CONFIG_NAME).write_text(json.dumps({**config, "save_projection": False}))
    with pytest.raises(ValueError, match=r"save_projection=False is not supported") as err:
        load_adapter(GPT(CFG, seed=0), tmp_path)
    assert "\n" not in str(err.value)
