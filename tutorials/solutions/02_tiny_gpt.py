"""Solutions to the exercises of 02_tiny_gpt (try them yourself first)."""

import numpy as np


def causal_mask(t: int) -> np.ndarray:
    """True on and below the diagonal: query i sees keys 0..i."""
    return np.tril(np.ones((t, t), dtype=bool))


def attention(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    """softmax(q kᵀ / √h + mask) v for (B, H, T, h) arrays; −∞ above the diagonal, a max-subtracted softmax."""
    t, h = q.shape[-2], q.shape[-1]
    scores = q @ k.swapaxes(-1, -2) / np.sqrt(h)                  # (B, H, T, T)
    scores = np.where(causal_mask(t), scores, -np.inf)
    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
    weights /= weights.sum(axis=-1, keepdims=True)
    return weights @ v                                            # (B, H, T, h)


def gpt_num_parameters(config) -> int:
    """Embeddings V·C + block_size·C; per block 4 attention C×C and the MLP's C×4C and 4C×C (plus biases),
    two LayerNorms (gain, and bias when ``config.bias``); the final LayerNorm; the head C×V without bias."""
    c, v, b = config.n_embd, config.vocab_size, int(config.bias)
    attention = 4 * (c * c + b * c)
    mlp = (c * 4 * c + b * 4 * c) + (4 * c * c + b * c)
    layer_norms = 2 * (c + b * c)
    return v * c + config.block_size * c + config.n_layer * (attention + mlp + layer_norms) + (c + b * c) + c * v


# Common mistakes, one per exercise: tests/test_tutorials.py checks that each one fails its check.
def _attention_unmasked(q, k, v):
    scores = q @ k.swapaxes(-1, -2) / np.sqrt(q.shape[-1])
    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return weights / weights.sum(axis=-1, keepdims=True) @ v  # every position sees the future


MISTAKES = {
    "causal_mask": lambda t: np.triu(np.ones((t, t), dtype=bool)),  # the future instead of the past
    "attention": _attention_unmasked,
    "gpt_num_parameters": lambda config: gpt_num_parameters(config) - config.block_size * config.n_embd,  # no positions
}
