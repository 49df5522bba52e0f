"""Solutions to the exercises of 02_tiny_gpt (try them yourself first)."""

import numpy as np

slowest_skill = "reverse"
"""Copy and shift read the input letter a fixed distance back; for reversal that distance grows by two with every
letter written, so the model must work out where to look from its position relative to `=`."""


def causal_mask(t: int, window: int | None = None) -> np.ndarray:
    """True on and below the diagonal (query i sees keys 0..i); with a window w only keys i − w < j ≤ i."""
    i, j = np.indices((t, t))
    allowed = j <= i
    if window is not None:
        allowed &= i - j < window
    return allowed


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


# Common mistakes: tests/test_tutorials.py checks that each one fails its check.
def _softmax_rows(scores):
    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return weights / weights.sum(axis=-1, keepdims=True)


def _attention_unmasked(q, k, v):
    return _softmax_rows(q @ k.swapaxes(-1, -2) / np.sqrt(q.shape[-1])) @ v  # every position sees the future


def _attention_unscaled(q, k, v):
    scores = q @ k.swapaxes(-1, -2)  # no 1/√h
    return _softmax_rows(np.where(causal_mask(q.shape[-2]), scores, -np.inf)) @ v


def _attention_scaled_by_h(q, k, v):
    scores = q @ k.swapaxes(-1, -2) / q.shape[-1]  # 1/h instead of 1/√h
    return _softmax_rows(np.where(causal_mask(q.shape[-2]), scores, -np.inf)) @ v


def _attention_wrong_axis(q, k, v):
    scores = np.where(causal_mask(q.shape[-2]), q @ k.swapaxes(-1, -2) / np.sqrt(q.shape[-1]), -np.inf)
    weights = np.exp(scores - scores.max(axis=-2, keepdims=True))
    return weights / weights.sum(axis=-2, keepdims=True) @ v  # normalised over queries (columns), not keys


def _attention_fixed_length(q, k, v):
    scores = q @ k.swapaxes(-1, -2) / np.sqrt(q.shape[-1])
    return _softmax_rows(np.where(causal_mask(5), scores, -np.inf)) @ v  # the mask of one length, T = 5


def _mask_with_window_off_by_one(t, window=None):
    i, j = np.indices((t, t))
    return (j <= i) & ((i - j <= window) if window is not None else True)  # w + 1 keys


def _mask_ignores_window(t, window=None):
    return np.tril(np.ones((t, t), dtype=bool))


def _count_hard_coded(config):
    return 110_720  # the shipped skills model's count, right for one config only


def _count_without_position(config):
    return gpt_num_parameters(config) - config.block_size * config.n_embd  # pos_emb forgotten


def _count_always_with_bias(config):
    c, v = config.n_embd, config.vocab_size
    per_block = 4 * (c * c + c) + (4 * c * c + 4 * c) + (4 * c * c + c) + 2 * 2 * c
    return v * c + config.block_size * c + config.n_layer * per_block + 2 * c + c * v  # biases even when bias=False


def _count_head_with_bias(config):
    return gpt_num_parameters(config) + config.vocab_size  # the head has no bias


def _count_mlp_not_widened(config):
    c = config.n_embd
    b = int(config.bias)
    return gpt_num_parameters(config) - config.n_layer * (6 * c * c + 3 * b * c)  # hidden width C instead of 4C


def _attention_unstable(q, k, v):
    scores = np.where(causal_mask(q.shape[-2]), q @ k.swapaxes(-1, -2) / np.sqrt(q.shape[-1]), -np.inf)
    weights = np.exp(scores)  # no max subtracted: right for small scores, inf / inf = nan once a score passes 709
    return weights / weights.sum(axis=-1, keepdims=True) @ v


MISTAKES = {
    "slowest_skill": ["copy", "shift", "add"],
    "causal_mask": [
        lambda t, window=None: np.triu(np.ones((t, t), dtype=bool)),  # the future (and itself) instead of the past
        lambda t, window=None: np.triu(np.ones((t, t), dtype=bool), k=1),  # section 3's `future`: True = blocked
        lambda t, window=None: np.tril(np.ones((t, t), dtype=bool), k=-1),  # a query may not see itself
        lambda t, window=None: causal_mask(t, window).astype(int),  # 0/1 integers, not booleans
        _mask_with_window_off_by_one,
        _mask_ignores_window,
    ],
    "attention": [_attention_unmasked, _attention_unscaled, _attention_scaled_by_h, _attention_wrong_axis,
                  _attention_fixed_length, _attention_unstable],
    "gpt_num_parameters": [_count_hard_coded, _count_without_position, _count_always_with_bias, _count_head_with_bias,
                           _count_mlp_not_widened],
}
