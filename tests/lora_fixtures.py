"""What the LoRA-family tests share: a tiny GPT config, a host copy of any array or tensor, a seeded batch."""

from __future__ import annotations

import numpy as np

from minilora import backend
from minilora.engine.tensor import Tensor
from minilora.models import GPTConfig

CFG = GPTConfig(vocab_size=16, block_size=8, n_layer=2, n_head=2, n_embd=16)


def host(a):
    """A host NumPy array of a Tensor's data or of a raw (host or device) array."""
    return backend.to_host(a.data if isinstance(a, Tensor) else a)


def batch(device, b=3, t=8, seed=0):
    """(idx, targets): two (b, t) integer arrays of random token ids below CFG.vocab_size, on ``device``."""
    rng = np.random.default_rng(seed)
    idx = backend.to_device(rng.integers(0, CFG.vocab_size, (b, t)), device)
    targets = backend.to_device(rng.integers(0, CFG.vocab_size, (b, t)), device)
    return idx, targets
