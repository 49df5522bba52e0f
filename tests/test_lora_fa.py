"""LoRA-FA (minilora/lora/variants/lorafa.py): A frozen, only B trains; the memory that saves, in bytes."""

from __future__ import annotations

import numpy as np
import pytest
from lora_fixtures import CFG

from minilora import backend, nn, optim
from minilora.lora import LoraConfig, apply_lora, lora_layers
from minilora.lora.variants.lorafa import freeze_lora_A, lorafa_memory
from minilora.models import GPT


def prepared(device, lorafa, use_dora=False):
    model = apply_lora(GPT(CFG, seed=0, device=device), LoraConfig(r=2, use_dora=use_dora), seed=0)
    return freeze_lora_A(model) if lorafa else model


def train_steps(model, device, steps=4):
    """AdamW steps on one batch; returns (optimizer, losses, gradient bytes after the last backward)."""
    idx = backend.to_device(np.random.default_rng(0).integers(0, CFG.vocab_size, (4, 8)), device)
    opt = optim.AdamW(list(model.parameters()), lr=1e-2, weight_decay=0.0)
    losses = []
    for _ in range(steps):
        _, loss = model(idx, idx)
        opt.zero_grad()
        loss.backward()
        grad_bytes = sum(p.grad.nbytes for p in model.parameters() if p.grad is not None)
        opt.step()
        losses.append(loss.item())
    return opt, losses, grad_bytes


def test_a_stays_b_trains(device):
    model = prepared(device, lorafa=True)
    before = {name: (layer.lora_A.numpy().copy(), layer.lora_B.numpy().copy()) for name, layer in lora_layers(model)}
    _, losses, _ = train_steps(model, device)
    assert losses[-1] < losses[0]
    for name, layer in lora_layers(model):
        a0, b0 = before[name]
        np.testing.assert_array_equal(layer.lora_A.numpy(), a0)      # A: bit for bit what it was drawn as
        assert not np.allclose(layer.lora_B.numpy(), b0)               # B learned
        assert layer.lora_A.grad is None                               # no gradient was even computed


@pytest.mark.parametrize("use_dora", [False, True])
def test_memory_saved_in_bytes(device, use_dora):
    lora, fa = prepared(device, lorafa=False, use_dora=use_dora), prepared(device, lorafa=True, use_dora=use_dora)
    memory = lorafa_memory(fa)
    assert memory == lorafa_memory(lora)                               # counted from shapes, frozen or not
    a_numbers = len(lora_layers(lora)) * 2 * CFG.n_embd               # 4 layers, A: r × k = 2 × 16
    assert memory.saved == (2 * 4 + 4) * a_numbers == 1536             # float32: AdamW's m, v and the gradient of A
    opt_lora, _, grads_lora = train_steps(lora, device, steps=1)
    opt_fa, _, grads_fa = train_steps(fa, device, steps=1)
    assert (opt_lora.state_bytes(), grads_lora) == (memory.lora_optimizer_bytes, memory.lora_gradient_bytes)
    assert (opt_fa.state_bytes(), grads_fa) == (memory.lorafa_optimizer_bytes, memory.lorafa_gradient_bytes)


def test_needs_lora_layers():
    with pytest.raises(ValueError, match="freeze_lora_A: Linear has no LoRA layers"):
        freeze_lora_A(nn.Linear(3, 3, rng=0))


def test_registry_method_lora_fa():
    from minilora.experiments.methods import get_method

    method = get_method("lora-fa")
    model = method.prepare(GPT(CFG, seed=0), {"r": 2, "target_modules": ["q_proj"]}, seed=0)
    assert all(not layer.lora_A.requires_grad and layer.lora_B.requires_grad for _, layer in lora_layers(model))
    assert method.trainable(model) == 2 * (16 * 2)                       # B only: d × r per layer
