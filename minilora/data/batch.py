"""Turn token sequences into a padded next-token-prediction batch ``(x, y)``."""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["IGNORE_INDEX", "lm_batch"]

IGNORE_INDEX = -1  # a target the loss skips: F.cross_entropy(logits, y, ignore_index=IGNORE_INDEX)


def lm_batch(
    sequences: Sequence[Sequence[int]], loss_from: Sequence[int], pad_id: int
) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and shifted targets for a causal language model, padded to the longest sequence.

    For sequence s_i of length L_i, with T = max_i L_i - 1:

        x[i, t] = s_i[t]                                     for t < L_i - 1, else pad_id
        y[i, t] = s_i[t + 1]  if loss_from[i] <= t < L_i - 1, else IGNORE_INDEX (-1)

    so ``y[:, t]`` is the token after ``x[:, t]``, and positions before ``loss_from[i]`` (a prompt)
    or past the end (padding) carry no loss.  Both arrays are host int64 of shape (B, T).
    """
    if not sequences:
        raise ValueError("lm_batch needs at least one sequence")
    width = max(len(s) for s in sequences) - 1
    x = np.full((len(sequences), width), pad_id, dtype=np.int64)
    y = np.full((len(sequences), width), IGNORE_INDEX, dtype=np.int64)
    for i, (seq, start) in enumerate(zip(sequences, loss_from, strict=True)):
        n = len(seq) - 1
        x[i, :n] = seq[:-1]
        y[i, start:n] = seq[start + 1 :]
    return x, y
