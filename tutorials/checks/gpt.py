"""Checks for notebook 02, the tiny GPT: the causal mask, attention by hand, counting a GPT's parameters."""

from __future__ import annotations

from typing import Any

import numpy as np

import minilora as ml
import minilora.functional as F
from checks import NotYet, exercise, expect_close, expect_equal
from minilora.models import GPT, GPTConfig


@exercise("02")
def causal_mask(answer: Any) -> str:
    """causal_mask(t) is a (t, t) boolean array, True where query i may attend to key j (j ≤ i)."""
    for t in (1, 4, 7):
        got = np.asarray(answer(t))
        if got.shape != (t, t):
            raise NotYet(f"causal_mask({t}) has shape {got.shape}, expected ({t}, {t})")
        if got.dtype != bool:
            raise NotYet(f"causal_mask({t}) has dtype {got.dtype}; return booleans (True = may attend)")
        allowed = np.tril(np.ones((t, t), dtype=bool))
        if not np.array_equal(got, allowed):
            i, j = np.argwhere(got != allowed)[0]
            verb = "may not" if allowed[i, j] else "may"
            raise NotYet(f"causal_mask({t})[{i}, {j}] is {bool(got[i, j])}, but query {i} {verb} attend to key {j}")
    return "token i sees tokens 0..i and nothing after it"


@exercise("02")
def attention(answer: Any) -> str:
    """attention(q, k, v) = softmax(q kᵀ / √h, masked causally) v on NumPy arrays (B, H, T, h)."""
    rng = np.random.default_rng(3)
    q, k, v = (rng.normal(size=(2, 3, 5, 4)) for _ in range(3))
    want = F.scaled_dot_product_attention(ml.tensor(q), ml.tensor(k), ml.tensor(v), causal=True).numpy()
    got = answer(q.copy(), k.copy(), v.copy())
    expect_close("attention(q, k, v)", got, want, atol=1e-8)
    return "your attention equals minilora's fused F.scaled_dot_product_attention"


def _count_for(config: GPTConfig) -> int:
    return GPT(config).num_parameters()


@exercise("02")
def gpt_num_parameters(answer: Any) -> str:
    """gpt_num_parameters(config) counts every weight of GPT(config) from the config's numbers alone."""
    configs = [GPTConfig(vocab_size=67, block_size=32, n_layer=2, n_head=4, n_embd=64),
               GPTConfig(vocab_size=28, block_size=16, n_layer=3, n_head=2, n_embd=32),
               GPTConfig(vocab_size=50, block_size=8, n_layer=1, n_head=1, n_embd=16, bias=False)]
    for config in configs:
        expect_equal(f"gpt_num_parameters for n_layer={config.n_layer}, n_embd={config.n_embd}, bias={config.bias}",
                     answer(config), _count_for(config),
                     "add the two embedding tables, per block 4 attention Linears (C×C), the MLP (C×4C and 4C×C), "
                     "two LayerNorms (gain and bias), then ln_f and the head (C×V, no bias)")
    return f"{_count_for(configs[0]):,} weights in the shipped skills model, counted from its config"
