"""Checks for notebook 03, LoRA's mathematics: the forward pass, the parameter count, the break-even rank."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

import minilora as ml
from checks import exercise, expect_close, expect_equal
from minilora import nn
from minilora.lora import LoraConfig, LoRALinear, apply_lora, count_parameters
from minilora.models import GPT, GPTConfig


@exercise("03")
def lora_forward(answer: Any) -> str:
    """lora_forward(x, W0, b, A, B, alpha, r) = x W0ᵀ + b + (α/r) · x Aᵀ Bᵀ, as LoRALinear computes it."""
    rng = np.random.default_rng(4)
    layer = LoRALinear(nn.Linear(6, 5, rng=0), r=2, lora_alpha=8, rng=1)
    layer.lora_B.data = rng.normal(size=(5, 2)).astype(np.float32)  # as if trained: B ≠ 0
    x = rng.normal(size=(3, 6)).astype(np.float32)
    with ml.no_grad():
        want = layer(ml.tensor(x)).numpy()
    arrays = [a.numpy().copy() for a in (layer.base.weight, layer.base.bias, layer.lora_A, layer.lora_B)]
    got = answer(x.copy(), *arrays, 8, 2)
    expect_close("lora_forward(x, W0, b, A, B, alpha=8, r=2)", got, want, atol=1e-5)
    return "h = W0 x + b + (α/r)·B(A x), exactly what LoRALinear computes (and never forming B A)"


@exercise("03")
def trainable_lora_params(answer: Any) -> str:
    """trainable_lora_params(config, r, targets): Σ r(d + k) over the GPT's Linears named in ``targets``."""
    config = GPTConfig(vocab_size=67, block_size=32, n_layer=2, n_head=4, n_embd=64)
    cases = [(4, ("q_proj", "v_proj")), (2, ("q_proj", "k_proj", "v_proj", "o_proj", "fc_in", "fc_out")),
             (1, ("fc_in",))]
    for r, targets in cases:
        want = count_parameters(apply_lora(GPT(config), LoraConfig(r=r, target_modules=targets))).trainable
        expect_equal(f"trainable_lora_params(config, r={r}, targets={targets})", answer(config, r, targets), want,
                     "each adapted d×k matrix costs r(d + k), once per layer; q/k/v/o_proj are C×C, "
                     "fc_in is 4C×C (d = out = 4C, k = in = C) and fc_out is C×4C")
    return "Σ r(d + k) over every adapted matrix: what count_parameters reports after apply_lora"


@exercise("03")
def break_even_rank(answer: Any) -> str:
    """break_even_rank(d, k): the smallest r with r(d + k) ≥ d·k, where LoRA stops saving parameters."""
    for d, k in ((64, 64), (256, 64), (3, 5), (12288, 12288), (7, 1)):
        expect_equal(f"break_even_rank({d}, {k})", answer(d, k), math.ceil(d * k / (d + k)),
                     "solve r(d + k) ≥ d·k for the smallest integer r")
    return "for a square d×d matrix LoRA saves parameters up to r = d/2: GPT-3's r = 1..8 is tiny beside 6144"
