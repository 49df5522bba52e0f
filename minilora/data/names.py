"""A real text corpus: US-Census surnames and first names from the PyPI package ``names`` (MIT).

The package ships three lists, read here as plain files (its random functions are not used):
``dist.all.last`` (88,799 surnames), ``dist.female.first`` and ``dist.male.first`` (5,163 distinct
first names together).  Each name is lower-cased and written between markers, ``.smith.``: the
first ``.`` is the context for the first letter, the last one marks the end of the name.  Both
tasks share one vocabulary, so a surname model can be adapted to first names.

The model is scored in bits per character on held-out names:

    bpc = (1/N) * sum_t -log2 p(c_t | c_<t)
        = mean cross-entropy in nats / ln 2,

over every letter and end marker of the held-out names (N of them); padding never counts.
"""

from __future__ import annotations

import functools
import importlib.util
import math
from pathlib import Path
from typing import Any

import numpy as np

from minilora import functional as F
from minilora.backend import to_device
from minilora.data.batch import IGNORE_INDEX, lm_batch
from minilora.data.evaluation import check_block_size, inference
from minilora.data.skills import LETTERS
from minilora.data.tokenizer import CharTokenizer

__all__ = ["MARKER", "NAMES_TOKENIZER", "NAME_FILES", "names_package_dir", "load_names", "split_names", "NamesTask"]

MARKER = "."
NAMES_TOKENIZER = CharTokenizer(MARKER + LETTERS)
"""The names vocabulary: pad ``_`` (id 0), the marker ``.``, a-z (28 ids)."""

NAME_FILES = {
    "surnames": ("dist.all.last",),
    "first-names": ("dist.female.first", "dist.male.first"),
}
"""Which files of the ``names`` package make each corpus."""


def names_package_dir() -> Path:
    """The folder of the installed ``names`` package; ImportError telling how to install it if missing."""
    spec = importlib.util.find_spec("names")
    if spec is None or spec.origin is None:
        raise ImportError("the names corpus needs the PyPI package 'names' (MIT): pip install names")
    return Path(spec.origin).parent


@functools.lru_cache(maxsize=None)
def load_names(corpus: str) -> tuple[str, ...]:
    """The distinct names of ``corpus`` ("surnames" or "first-names"), lower-cased and sorted.

    Each file line is ``NAME  freq  cumulative_freq  rank``; only the first column is read.
    """
    if corpus not in NAME_FILES:
        raise ValueError(f"unknown names corpus {corpus!r}; expected one of {sorted(NAME_FILES)}")
    folder = names_package_dir()
    found: set[str] = set()
    for filename in NAME_FILES[corpus]:
        with open(folder / filename, encoding="ascii") as lines:
            found.update(line.split()[0].lower() for line in lines if line.strip())
    return tuple(sorted(found))


def split_names(names: tuple[str, ...], heldout_fraction: float = 0.1, seed: int = 0) -> tuple[list[str], list[str]]:
    """A deterministic (train, held_out) split: the first round(fraction * n) of a seeded permutation are held out."""
    if not 0.0 < heldout_fraction < 1.0:
        raise ValueError(f"heldout_fraction must be between 0 and 1, got {heldout_fraction}")
    order = np.random.default_rng(seed).permutation(len(names))
    n_held = round(heldout_fraction * len(names))
    if not 0 < n_held < len(names):
        raise ValueError(f"heldout_fraction {heldout_fraction} of {len(names)} names leaves an empty "
                         f"{'held-out' if n_held == 0 else 'training'} set")
    return [names[i] for i in order[n_held:]], [names[i] for i in order[:n_held]]


def _encode(names: list[str]) -> list[list[int]]:
    """``.name.`` as token ids, one list per name."""
    return [NAMES_TOKENIZER.encode(f"{MARKER}{name}{MARKER}") for name in names]


class NamesTask:
    """A character language model over one names corpus, scored in held-out bits per character.

    Each batch row is one whole name, ``x = .name``, ``y = name.``, right-padded to the batch's
    longest name (y = -1 on padding).  ``block_size`` is the context the longest name needs.
    """

    metric = "bits_per_char"

    def __init__(self, corpus: str, heldout_fraction: float = 0.1, seed: int = 0) -> None:
        self.name = corpus
        self.tokenizer = NAMES_TOKENIZER
        names = load_names(corpus)
        self.train_names, self.heldout_names = split_names(names, heldout_fraction, seed)
        self._train_ids = _encode(self.train_names)
        self.block_size = max(len(name) for name in names) + 1

    def sample_batch(self, rng: np.random.Generator, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """Host int64 ``(x, y)`` for ``batch_size`` training names drawn uniformly with replacement."""
        rows = rng.integers(len(self._train_ids), size=batch_size)
        return lm_batch([self._train_ids[i] for i in rows], [0] * batch_size, NAMES_TOKENIZER.pad_id)

    def evaluate(self, model: Any, batch_size: int = 512, max_names: int | None = None) -> dict[str, Any]:
        """Held-out ``{"bits_per_char", "n_chars", "n_names"}`` over the first ``max_names`` held-out names (all by default).

        Names are sorted by length so batches carry little padding; each batch's mean cross-entropy
        is weighted by its number of scored characters: bpc = sum_b n_b * CE_b / (N ln 2).
        ``max_names`` must be >= 1 (or None): zero names give no characters to average over.
        """
        is_count = isinstance(max_names, (int, np.integer)) and not isinstance(max_names, (bool, np.bool_))
        if max_names is not None and (not is_count or max_names < 1):
            raise ValueError(f"NamesTask.evaluate: max_names must be an integer >= 1 or None, got {max_names!r}")
        check_block_size(model, self.block_size)
        names = sorted(self.heldout_names[:max_names], key=len)
        device = model.device
        total_nats, total_chars = 0.0, 0
        with inference(model):
            for start in range(0, len(names), batch_size):
                chunk = _encode(names[start : start + batch_size])
                x, y = lm_batch(chunk, [0] * len(chunk), NAMES_TOKENIZER.pad_id)
                logits, _ = model(to_device(x, device))  # (B, T, vocab)
                n_chars = int((y != IGNORE_INDEX).sum())
                loss = F.cross_entropy(logits, to_device(y, device), ignore_index=IGNORE_INDEX)
                total_nats += loss.item() * n_chars
                total_chars += n_chars
        return {"bits_per_char": total_nats / total_chars / math.log(2), "n_chars": total_chars, "n_names": len(names)}

    def __repr__(self) -> str:
        return f"NamesTask({self.name!r}, train={len(self.train_names)}, held_out={len(self.heldout_names)})"
