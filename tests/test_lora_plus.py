"""LoRA+ (minilora/lora/variants/loraplus.py): B at λ× A's learning rate, in PEFT's parameter groups."""

from __future__ import annotations

import numpy as np
import pytest
from lora_fixtures import CFG

from minilora import backend, optim
from minilora.lora import LoraConfig, apply_lora, lora_layers
from minilora.lora.variants.loraplus import loraplus_param_groups
from minilora.models import GPT


def model_with(device, use_dora=False):
    return apply_lora(GPT(CFG, seed=0, device=device), LoraConfig(r=2, use_dora=use_dora), seed=0)


def test_groups_as_peft_builds_them(device):
    model = model_with(device, use_dora=True)
    model.ln_f.requires_grad_(True)                        # 1-D parameters PEFT puts in B's group, without decay
    model.blocks[0].attn.q_proj.base.bias.requires_grad_(True)
    groups = loraplus_param_groups(model, lr=1e-3, loraplus_lr_ratio=16, weight_decay=0.1)
    names = {id(p): n for n, p in model.named_parameters()}
    got = [(g["lr"], g["weight_decay"], sorted(names[id(p)] for p in g["params"])) for g in groups]
    layers = [n for n, _ in lora_layers(model)]
    assert got[0] == (1e-3, 0.1, sorted(f"{n}.lora_A" for n in layers))
    assert got[1] == (16e-3, 0.1,
                      sorted([f"{n}.lora_B" for n in layers] + [f"{n}.lora_magnitude_vector" for n in layers]))
    assert got[2] == (16e-3, 0.0, sorted(["ln_f.weight", "ln_f.bias", "blocks.0.attn.q_proj.base.bias"]))


def test_b_steps_at_ratio_times_a_lr(device):
    """One AdamW step with known gradients: Adam's first step moves each number by lr·g/(|g| + eps) ≈ lr·sign(g),
    so B moves λ times as far as A."""
    model = model_with(device)
    layer = lora_layers(model)[0][1]
    ratio, lr = 8.0, 1e-3
    opt = optim.AdamW(loraplus_param_groups(model, lr=lr, loraplus_lr_ratio=ratio), lr=lr)
    for p in (layer.lora_A, layer.lora_B):
        p.grad = backend.to_device(np.full(p.shape, 0.5, dtype=p.dtype), p.device)
    a0, b0 = layer.lora_A.numpy().copy(), layer.lora_B.numpy().copy()
    opt.step()
    np.testing.assert_allclose(a0 - layer.lora_A.numpy(), lr, rtol=1e-4)
    np.testing.assert_allclose(b0 - layer.lora_B.numpy(), ratio * lr, rtol=1e-4)


def test_bad_ratio():
    with pytest.raises(ValueError, match="loraplus_lr_ratio must be a positive number, got 0"):
        loraplus_param_groups(model_with("cpu"), lr=1e-3, loraplus_lr_ratio=0)


def test_train_keeps_the_ratio_through_the_schedule_with_the_lora_plus_method():
    """The "lora-plus" method makes ``train`` build LoRA+'s groups; warm-up and cosine decay set ``optimizer.lr`` at
    every step, and B's group keeps λ times A's rate throughout (without lr_ratio the schedule would erase λ)."""
    import minilora
    from minilora.experiments.methods import get_method
    from minilora.optim import warmup_cosine
    from minilora.train import TrainConfig, make_optimizer

    method = get_method("lora-plus")
    model = method.prepare(minilora.pretrained("skills"), method.check({"r": 2, "loraplus_lr_ratio": 8.0}), seed=0)
    optimizer = make_optimizer(model, TrainConfig(steps=10, lr=1e-3, warmup_steps=2, weight_decay=0.0))
    for step in range(10):
        optimizer.lr = warmup_cosine(step, 1e-3, 2, 10, 1e-4)
        by_name = {id(p): name for name, p in model.named_parameters()}
        for group in optimizer.param_groups:
            names = {by_name[id(p)].rsplit(".", 1)[-1] for p in group["params"]}
            expected = 8.0 if names <= {"lora_B"} else 1.0
            assert group["lr"] == pytest.approx(optimizer.param_groups[0]["lr"] * expected, rel=1e-12)
    assert {by_name[id(p)].rsplit(".", 1)[-1] for p in optimizer.param_groups[1]["params"]} == {"lora_B"}
