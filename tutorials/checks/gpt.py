"""Checks for notebook 02, the tiny GPT: which skill pretraining finishes last (a prediction), the causal mask with
a sliding window, attention by hand, counting a GPT's parameters."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

import minilora as ml
import minilora.functional as F
from checks import NotYet, exercise, expect_close
from minilora.models import GPT, GPTConfig

SNAPSHOT_STEP = 4000  # a snapshot of the shipped skills recipe (``ml.pretrained("skills", step=4000)``)


@lru_cache(maxsize=1)
def _accuracy_at_snapshot() -> dict[str, float]:
    """Held-out exact match per skill of the skills recipe's snapshot at SNAPSHOT_STEP (100 inputs per skill)."""
    from minilora.data import get_task

    metrics = get_task("pretrain", n_eval=100).evaluate(ml.pretrained("skills", step=SNAPSHOT_STEP))
    return {skill: float(r["accuracy"]) for skill, r in metrics["by_skill"].items()}


@exercise("02")
def slowest_skill(answer: Any) -> str:
    """A prediction: the skill with the lowest held-out accuracy at step 4,000 of the shipped model's pretraining."""
    accuracy = _accuracy_at_snapshot()
    if not isinstance(answer, str) or answer.strip().lower() not in accuracy:
        raise NotYet(f"slowest_skill should be one of {sorted(accuracy)} (a string), got {answer!r}")
    answer = answer.strip().lower()
    slowest = min(accuracy, key=accuracy.get)
    if answer != slowest:
        raise NotYet(f"at step {SNAPSHOT_STEP:,} {answer} is already at {accuracy[answer]:.0%}; hint: for each skill, "
                     "compare how the model finds the input character behind the first output character and behind "
                     "the last one")
    return (f"{slowest} is at {accuracy[slowest]:.0%} at step {SNAPSHOT_STEP:,} while every other skill is at "
            f"{min(v for k, v in accuracy.items() if k != slowest):.0%} or more")


@exercise("02")
def causal_mask(answer: Any) -> str:
    """causal_mask(t, window=None) is a (t, t) boolean array, True where query i may attend to key j: j ≤ i, and
    with a window w also i − w < j (the last w positions, its own included)."""
    for t, window in ((1, None), (4, None), (7, None), (6, 3), (5, 1), (4, 4), (5, 9)):
        got = np.asarray(answer(t) if window is None else answer(t, window))
        call = f"causal_mask({t})" if window is None else f"causal_mask({t}, window={window})"
        if got.shape != (t, t):
            raise NotYet(f"{call} has shape {got.shape}, expected ({t}, {t})")
        if got.dtype != bool:
            raise NotYet(f"{call} has dtype {got.dtype}; return booleans (True = may attend)")
        i, j = np.indices((t, t))
        allowed = (j <= i) & ((i - j < window) if window is not None else True)
        if not np.array_equal(got, allowed):
            i, j = np.argwhere(got != allowed)[0]
            verb = "may" if allowed[i, j] else "may not"
            why = ("its own position and earlier ones" if window is None
                   else f"the last {window} positions up to its own")
            raise NotYet(f"{call}[{i}, {j}] is {bool(got[i, j])}, but query {i} {verb} attend to key {j} "
                         f"(a query sees {why}; True means allowed)")
    return "token i sees tokens max(0, i − w + 1)..i with a window w, and 0..i without one"


@exercise("02")
def attention(answer: Any) -> str:
    """attention(q, k, v) = softmax(q kᵀ / √h, masked causally) v on NumPy arrays (B, H, T, h)."""
    rng = np.random.default_rng(3)
    q, k, v = (rng.normal(size=(2, 3, 5, 4)) for _ in range(3))
    q *= 4.0  # peaked weights: a missing or wrong scale changes the result clearly
    want = F.scaled_dot_product_attention(ml.tensor(q), ml.tensor(k), ml.tensor(v), causal=True).numpy()
    with np.errstate(all="ignore"):
        got = answer(q.copy(), k.copy(), v.copy())
    got = np.asarray(got, dtype=np.float64) if got is not None else got
    if got is not None and got.shape == want.shape and not np.all(np.isfinite(got)):
        raise NotYet("attention(q, k, v) holds nan or inf: check the softmax's stability, and that no row of the "
                     "mask blocks every key")
    expect_close("attention(q, k, v)", got, want, atol=1e-8)
    if not np.allclose(answer(q[:, :, :3].copy(), k[:, :, :3].copy(), v[:, :, :3].copy()), want[:, :, :3],
                       atol=1e-8):
        raise NotYet("attention works for T = 5 but not for a shorter sequence: build the mask from q's shape")
    sharp = q * 100.0  # scores in the hundreds: e^score overflows float64 unless each row's max is subtracted first
    want_sharp = F.scaled_dot_product_attention(ml.tensor(sharp), ml.tensor(k), ml.tensor(v), causal=True).numpy()
    with np.errstate(all="ignore"):
        got_sharp = np.asarray(answer(sharp.copy(), k.copy(), v.copy()), dtype=np.float64)
    if not np.all(np.isfinite(got_sharp)):
        raise NotYet("attention(q, k, v) is right for moderate scores but holds nan or inf when the scores are in the "
                     "hundreds (q scaled by 100): e^score overflows to inf, and inf / inf is nan; subtract each row's "
                     "max before np.exp")
    expect_close("attention(100·q, k, v)", got_sharp, want_sharp, atol=1e-8)
    return "your attention equals minilora's fused F.scaled_dot_product_attention"


def _count_for(config: GPTConfig) -> int:
    return GPT(config).num_parameters()


@exercise("02")
def gpt_num_parameters(answer: Any) -> str:
    """gpt_num_parameters(config) counts every weight of GPT(config) from the config's numbers alone."""
    configs = [GPTConfig(vocab_size=67, block_size=32, n_layer=2, n_head=4, n_embd=64),
               GPTConfig(vocab_size=28, block_size=16, n_layer=3, n_head=2, n_embd=32),
               GPTConfig(vocab_size=50, block_size=8, n_layer=1, n_head=1, n_embd=16, bias=False),
               GPTConfig(vocab_size=11, block_size=64, n_layer=4, n_head=3, n_embd=24, bias=False)]
    for config in configs:
        got, want = answer(config), _count_for(config)
        if got != want:
            off = f"{got - want:+,}" if isinstance(got, (int, np.integer)) else "not an integer"
            raise NotYet(f"gpt_num_parameters for vocab_size={config.vocab_size}, block_size={config.block_size}, "
                         f"n_layer={config.n_layer}, n_embd={config.n_embd}, bias={config.bias} is {got!r} ({off}); "
                         "hint: build GPT(config) for this config and compare its named_parameters() with your sum, "
                         "one kind of parameter at a time")
    return f"{_count_for(configs[0]):,} weights in the shipped skills model, counted from its config"
