"""Running a model for evaluation: the split it is scored on, eval mode without gradients, batched greedy decoding.

A model here is anything with the GPT contract: ``model(idx)`` on an integer array (B, T) returns
``(logits, None)`` with logits a Tensor (B, T, vocab); ``model.config.block_size``;
``model.device`` (as ``nn.Module.device``); ``model.eval()`` / ``model.train()``.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, Sequence

import numpy as np

from minilora.backend import to_device, to_host
from minilora.engine.tensor import no_grad

__all__ = ["SPLITS", "check_split", "inference", "check_block_size", "greedy_complete"]

SPLITS = ("validation", "test")
"""The held-out splits a task scores a model on.  Every task has three disjoint sets of inputs: its training
batches are drawn from one, "validation" is where settings are chosen, "test" is where results are reported."""


def check_split(split: str) -> str:
    """``split`` itself when it is one of ``SPLITS``; anything else is a ValueError naming it and the splits."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(map(repr, SPLITS))}")
    return split


@contextlib.contextmanager
def inference(model: Any) -> Iterator[None]:
    """Run the body with the model in eval mode and gradients off; restore train mode afterwards."""
    was_training = getattr(model, "training", False)
    model.eval()
    try:
        with no_grad():
            yield
    finally:
        if was_training:
            model.train()


def check_block_size(model: Any, needed: int) -> None:
    """Raise a ValueError when the model's context, ``model.config.block_size``, is shorter than ``needed``."""
    block_size = model.config.block_size
    if block_size < needed:
        raise ValueError(f"model.config.block_size={block_size} is smaller than the {needed} tokens this task needs")


def greedy_complete(
    model: Any, prompts: Sequence[Sequence[int]], stop_id: int, max_total_len: int, batch_size: int = 256
) -> list[list[int]]:
    """Continue each prompt greedily, next = argmax_v logits[-1, v], until ``stop_id`` or ``max_total_len`` tokens.

    Prompts of equal length are decoded together as one batch (no padding is ever fed to the model),
    in chunks of ``batch_size``.  Returns, per prompt and in the input order, the generated tokens
    only (prompt removed); a continuation that produced ``stop_id`` ends with it.  Call inside
    ``inference(model)``.
    """
    device = model.device
    by_length: dict[int, list[int]] = {}
    for i, prompt in enumerate(prompts):
        by_length.setdefault(len(prompt), []).append(i)
    completions: list[list[int]] = [[] for _ in prompts]
    for length, members in by_length.items():
        for start in range(0, len(members), batch_size):
            rows = members[start : start + batch_size]
            ids = np.array([prompts[i] for i in rows], dtype=np.int64)  # (B, P)
            done = np.zeros(len(rows), dtype=bool)
            while ids.shape[1] < max_total_len and not done.all():
                logits, _ = model(to_device(ids, device))  # (B, T, vocab)
                next_ids = to_host(logits.data[:, -1, :].argmax(axis=-1)).astype(np.int64)  # (B,)
                ids = np.concatenate([ids, next_ids[:, None]], axis=1)
                done |= next_ids == stop_id
            for row, i in zip(ids[:, length:].tolist(), rows, strict=True):
                completions[i] = row[: row.index(stop_id) + 1] if stop_id in row else row
    return completions
