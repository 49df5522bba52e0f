"""Solutions to the exercises of 03_lora_math (try them yourself first)."""

import math

# (d, k) of each Linear of a GPT block, as multiples of C = n_embd: d = out_features, k = in_features
_SHAPES = {"q_proj": (1, 1), "k_proj": (1, 1), "v_proj": (1, 1), "o_proj": (1, 1), "fc_in": (4, 1), "fc_out": (1, 4)}


def lora_forward(x, W0, b, A, B, alpha, r):
    """h = x W0ᵀ + b + (α/r) · (x Aᵀ) Bᵀ: through the r-wide bottleneck, never forming B A."""
    return x @ W0.T + b + (alpha / r) * (x @ A.T) @ B.T


def trainable_lora_params(config, r: int, targets: tuple) -> int:
    """Σ over layers and targets of r(d + k)."""
    c = config.n_embd
    return config.n_layer * sum(r * (dm + km) * c for dm, km in (_SHAPES[t] for t in targets))


def break_even_rank(d: int, k: int) -> int:
    """The smallest integer r with r(d + k) ≥ d·k, i.e. r = ⌈d·k / (d + k)⌉."""
    return math.ceil(d * k / (d + k))


# Common mistakes, one per exercise: tests/test_tutorials.py checks that each one fails its check.
MISTAKES = {
    "lora_forward": lambda x, W0, b, A, B, alpha, r: x @ W0.T + b + (x @ A.T) @ B.T,  # the scaling α/r forgotten
    # all square
    "trainable_lora_params": lambda config, r, targets: config.n_layer * len(targets) * 2 * r * config.n_embd,
    "break_even_rank": lambda d, k: d * k // (d + k),  # rounded down
}
