"""PiSSA and OLoRA (minilora/lora/variants/pissa.py): A, B from W0's SVD / QR, the base replaced by the residual;
saved as a plain rank-2r LoRA on the original base."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from lora_fixtures import CFG, host

from minilora import backend, nn, optim
from minilora.lora import (
    LoraConfig,
    LoRALinear,
    apply_lora,
    load_adapter,
    lora_layers,
    save_adapter,
)
from minilora.lora.adapters import (
    CONFIG_NAME,
    adapter_state_dict,
    base_fingerprint,
    peft_key,
)
from minilora.lora.variants.pissa import lora_from_mutated_init, olora_init, pissa_init
from minilora.models import GPT

INITS = ["pissa", "olora"]


def logits(model, device, seed=0):
    idx = np.random.default_rng(seed).integers(0, CFG.vocab_size, (3, 8))
    return host(model(backend.to_device(idx, device))[0])


def test_pissa_factors_are_the_principal_part():
    w0 = np.random.default_rng(0).standard_normal((6, 5))
    r, s = 2, 3.0
    a, b, residual = pissa_init(w0, r, s)
    u, sigma, vt = np.linalg.svd(w0, full_matrices=False)
    np.testing.assert_allclose(s * b @ a, (u[:, :r] * sigma[:r]) @ vt[:r], atol=1e-12)   # s·B A = U_r S_r V_rᵀ
    np.testing.assert_allclose(np.linalg.svd(residual, compute_uv=False)[:3], sigma[r:], atol=1e-12)  # the rest
    np.testing.assert_allclose(b, u[:, :r] * np.sqrt(sigma[:r] / s), atol=1e-12)  # scaling divided out of S
    np.testing.assert_allclose(a @ a.T, np.diag(sigma[:r] / s), atol=1e-12)


def test_olora_factors_are_the_qr():
    w0 = np.random.default_rng(1).standard_normal((6, 5))
    a, b, residual = olora_init(w0, 3, 2.0)
    np.testing.assert_allclose(b.T @ b, np.eye(3), atol=1e-12)        # B = Q[:, :r]: orthonormal columns
    np.testing.assert_allclose(np.tril(a, -1), 0.0, atol=1e-12)       # A = R[:r]: upper triangular
    np.testing.assert_allclose(residual + 2.0 * b @ a, w0, atol=1e-12)


def test_conversion_to_plain_lora_is_the_difference():
    rng = np.random.default_rng(2)
    a, a0, b, b0 = (rng.standard_normal((2, 5)), rng.standard_normal((2, 5)), rng.standard_normal((6, 2)),
                    rng.standard_normal((6, 2)))
    a2, b2 = lora_from_mutated_init(a, b, a0, b0)
    assert a2.shape == (4, 5) and b2.shape == (6, 4)
    np.testing.assert_allclose(b2 @ a2, b @ a - b0 @ a0, atol=1e-12)


@pytest.mark.parametrize("init", INITS)
def test_step0_is_the_base_model(device, init):
    base = GPT(CFG, seed=0, device=device)
    expected = logits(base, device)
    w0 = host(base.blocks[0].attn.q_proj.weight).copy()
    model = apply_lora(base, LoraConfig(r=2, lora_alpha=3, target_modules=("q_proj", "v_proj", "fc_in"),
                                        init_lora_weights=init), seed=0)
    layer = dict(lora_layers(model))["blocks.0.attn.q_proj"]
    assert not np.allclose(host(layer.base.weight), w0)          # the base weight is now the residual
    assert not np.allclose(host(layer.lora_B), 0.0)               # and B is not zero
    np.testing.assert_array_equal(layer.original_weight, w0)
    np.testing.assert_allclose(host(layer.base.weight) + layer.scaling * host(layer.lora_B) @ host(layer.lora_A),
                               w0, atol=1e-6)
    np.testing.assert_allclose(logits(model, device), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("init, use_rslora", [("pissa", False), ("olora", False), ("pissa", True)])
def test_saved_adapter_is_plain_lora_on_the_original_base(device, tmp_path, init, use_rslora):
    model = apply_lora(GPT(CFG, seed=0, device=device),
                       LoraConfig(r=2, lora_alpha=3, target_modules=("q_proj", "v_proj", "fc_out"),
                                  init_lora_weights=init, use_rslora=use_rslora), seed=0)
    fingerprint = base_fingerprint(GPT(CFG, seed=0, device=device))
    assert base_fingerprint(model) == fingerprint                  # the original base, not the residual
    params = [p for p in model.parameters() if p.requires_grad]
    opt = optim.AdamW(params, lr=1e-2, weight_decay=0.0)
    idx = backend.to_device(np.random.default_rng(3).integers(0, CFG.vocab_size, (4, 8)), device)
    for _ in range(3):                                              # train: A, B leave their initial values
        _, loss = model(idx, idx)
        opt.zero_grad()
        loss.backward()
        opt.step()
    expected = logits(model, device)
    save_adapter(model, tmp_path)
    config = json.loads((tmp_path / CONFIG_NAME).read_text())
    assert (config["r"], config["init_lora_weights"]) == (4, True)
    assert math.isclose(config["lora_alpha"], 3 * (math.sqrt(2) if use_rslora else 2))
    assert LoraConfig(r=4, lora_alpha=config["lora_alpha"], use_rslora=use_rslora).scaling == pytest.approx(
        LoraConfig(r=2, lora_alpha=3, use_rslora=use_rslora).scaling)
    assert adapter_state_dict(model)[peft_key("blocks.1.mlp.fc_out", "A")].shape == (4, CFG.n_embd * 4)
    loaded = load_adapter(GPT(CFG, seed=0, device=device), tmp_path)   # the original base; its fingerprint matches
    assert all(type(layer) is LoRALinear and layer.initial_weights is None for _, layer in lora_layers(loaded))
    np.testing.assert_allclose(logits(loaded, device), expected, rtol=1e-4, atol=1e-5)


def test_merge_and_unmerge_keep_the_residual(device):
    base = nn.Linear(5, 6, rng=0, device=device)
    layer = LoRALinear(base, r=2, init_lora_weights="pissa", rng=0)
    residual = host(layer.base.weight).copy()
    layer.merge()
    np.testing.assert_allclose(host(layer.base.weight), layer.original_weight, atol=1e-6)  # W_res + s·B A = W0
    layer.unmerge()
    np.testing.assert_array_equal(host(layer.base.weight), residual)


def test_refusals():
    with pytest.raises(ValueError,
                       match=r"init_lora_weights='pissa_niter_4' \(PEFT's randomised fast SVD\) is not supported"):
        LoraConfig(init_lora_weights="pissa_niter_4")
    with pytest.raises(ValueError, match="'gaussian', 'pissa' or 'olora', got 'corda'"):
        LoraConfig(init_lora_weights="corda")


@pytest.mark.parametrize("name", INITS)
def test_registry_methods_pissa_olora(name):
    from minilora.experiments.methods import get_method

    method = get_method(name)
    with pytest.raises(ValueError, match=f"init_lora_weights does not apply to method '{name}'"):
        method.check({"init_lora_weights": "gaussian"})
    model = method.prepare(GPT(CFG, seed=0), {"r": 2, "target_modules": ["q_proj"]}, seed=0)
    assert {layer.init_lora_weights for _, layer in lora_layers(model)} == {name}
