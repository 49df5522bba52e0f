"""A real text corpus: US-Census surnames and first names from the PyPI package ``names`` (MIT).

The package ships three lists, read here as plain files (its random functions are not used):
``dist.all.last`` (88,799 surnames), ``dist.female.first`` and ``dist.male.first`` (5,163 distinct
first names together).  Each name is lower-cased and written between markers, ``.smith.``: the
first ``.`` is the context for the first letter, the last one marks the end of the name.  Both
tasks share one vocabulary, so a surname model can be adapted to first names.

Each corpus is split once, by a seeded permutation, into three disjoint sets of names: test (the
first 10%, the held-out set every earlier result was reported on), validation (the next 10%) and
train (the rest).  The model is scored in bits per character on the test or validation names:

    bpc = (1/N) * sum_t -log2 p(c_t | c_<t)
        = mean cross-entropy in nats / ln 2,

over every letter and end marker of those names (N of them); padding never counts.
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
from minilora.data.evaluation import check_block_size, check_split, inference
from minilora.data.skills import LETTERS
from minilora.data.tokenizer import CharTokenizer
from minilora.validation import is_int

__all__ = ["MARKER", "NAMES_TOKENIZER", "NAME_FILES", "names_package_dir", "load_names", "split_names", "NamesTask"]

MARKER = "."
NAMES_TOKENIZER = CharTokenizer(MARKER + LETTERS, eos=MARKER)
"""The names vocabulary: pad ``_`` (id 0), the marker ``.`` (id 1, which also ends a name), a-z (28 ids)."""

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


def split_names(
    names: tuple[str, ...], test_fraction: float = 0.1, seed: int = 0, validation_fraction: float = 0.1
) -> tuple[list[str], list[str], list[str]]:
    """A deterministic (train, validation, test) split of ``names`` by one seeded permutation.

    With n names and the permutation ``order = default_rng(seed).permutation(n)``:
    test = order[:n_test], validation = order[n_test : n_test + n_val], train = the rest, where
    n_test = round(test_fraction n) and n_val = round(validation_fraction n).  ``validation_fraction=0``
    gives no validation set and the training set that came before validation existed.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction!r}")
    if not 0.0 <= validation_fraction < 1.0 - test_fraction:
        raise ValueError(f"validation_fraction must be in [0, {1.0 - test_fraction:g}) beside "
                         f"test_fraction={test_fraction!r}, got {validation_fraction!r}")
    order = np.random.default_rng(seed).permutation(len(names))
    n_test, n_val = round(test_fraction * len(names)), round(validation_fraction * len(names))
    sizes = {"test": n_test, "training": len(names) - n_test - n_val}
    if validation_fraction:  # 0 asks for no validation set
        sizes["validation"] = n_val
    empty = [split for split, size in sizes.items() if size < 1]
    if empty:
        raise ValueError(f"test_fraction {test_fraction!r} and validation_fraction {validation_fraction!r} of "
                         f"{len(names)} names leave an empty {empty[0]} set")
    test, validation, train = np.split(order, [n_test, n_test + n_val])
    return [names[i] for i in train], [names[i] for i in validation], [names[i] for i in test]


def _encode(names: list[str]) -> list[list[int]]:
    """``.name.`` as token ids, one list per name."""
    return [NAMES_TOKENIZER.encode(f"{MARKER}{name}{MARKER}") for name in names]


class NamesTask:
    """A character language model over one names corpus, scored in bits per character on held-out names.

    Each batch row is one whole training name, ``x = .name``, ``y = name.``, right-padded to the batch's
    longest name (y = -1 on padding).  ``block_size`` is the context the longest name needs.
    ``train_names``, ``validation_names`` and ``test_names`` are the three disjoint splits (``split_names``).
    """

    metric = "bits_per_char"

    def __init__(
        self, corpus: str, test_fraction: float = 0.1, seed: int = 0, validation_fraction: float = 0.1
    ) -> None:
        self.name = corpus
        self.tokenizer = NAMES_TOKENIZER
        names = load_names(corpus)
        self.train_names, self.validation_names, self.test_names = split_names(
            names, test_fraction, seed, validation_fraction
        )
        self._train_ids = _encode(self.train_names)
        self.block_size = max(len(name) for name in names) + 1

    def inputs(self, split: str) -> list[str]:
        """The names of ``split`` ("validation" or "test"); an empty split is a ValueError."""
        names = self.test_names if check_split(split) == "test" else self.validation_names
        if not names:
            raise ValueError(f"task {self.name!r} has no validation names: it was built with validation_fraction=0")
        return names

    def sample_batch(self, rng: np.random.Generator, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """Host int64 ``(x, y)`` for ``batch_size`` training names drawn uniformly with replacement."""
        rows = rng.integers(len(self._train_ids), size=batch_size)
        return lm_batch([self._train_ids[i] for i in rows], [0] * batch_size, NAMES_TOKENIZER.pad_id)

    def evaluate(
        self, model: Any, split: str = "test", batch_size: int = 512, max_names: int | None = None
    ) -> dict[str, Any]:
        """``{"bits_per_char", "n_chars", "n_names"}`` over the first ``max_names`` names of ``split`` (all by default).

        Names are sorted by length so batches carry little padding; each batch's mean cross-entropy
        is weighted by its number of scored characters: bpc = sum_b n_b * CE_b / (N ln 2).
        ``max_names`` must be >= 1 (or None): zero names give no characters to average over.
        """
        if max_names is not None and (not is_int(max_names) or max_names < 1):
            raise ValueError(f"NamesTask.evaluate: max_names must be an integer >= 1 or None, got {max_names!r}")
        names = sorted(self.inputs(split)[:max_names], key=len)
        check_block_size(model, self.block_size)
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
        return (f"NamesTask({self.name!r}, train={len(self.train_names)}, validation={len(self.validation_names)}, "
                f"test={len(self.test_names)})")
