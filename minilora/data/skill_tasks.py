"""Tasks built from skills: training batches that never show a held-out input, exact-match evaluation.

``SkillTask`` trains and scores one skill; ``MixtureTask`` samples every row's skill uniformly from
several skills (the pretraining mixture) and scores each of them.  Evaluation decodes greedily and
counts a prompt correct only when the model writes exactly ``<output>.``:

    accuracy = (1/n) * #{prompts whose greedy continuation up to the first '.' is <output>.}

Three disjoint splits per skill.  Training inputs are never held out (``is_heldout``); the held-out
inputs are shared between the two evaluation splits:

    test        n_eval held-out inputs drawn with default_rng(eval_seed)
    validation  n_eval more held-out inputs drawn with default_rng(eval_seed + 1), skipping the test inputs

so choosing settings on validation never looks at a test input, and the test set is the one every
earlier result was reported on.
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

import numpy as np

from minilora.data.batch import lm_batch
from minilora.data.evaluation import check_block_size, check_split, greedy_complete, inference
from minilora.data.skills import END, SKILL_TOKENIZER, InputSpace, Skill, is_heldout
from minilora.validation import is_int

__all__ = ["SkillTask", "MixtureTask", "heldout_inputs", "training_inputs"]

Pair = tuple[Skill, str]  # a skill and one input string


def heldout_inputs(
    space: InputSpace, n: int, seed: int, max_rounds: int = 25, exclude: frozenset[str] = frozenset()
) -> list[str]:
    """Up to ``n`` distinct held-out inputs of ``space`` not in ``exclude``, drawn with ``default_rng(seed)``, in order.

    Draws ``4 n`` inputs per round for at most ``max_rounds`` rounds, so a space with fewer than
    ``n`` such inputs (subtraction has 497 held-out inputs in all) yields what it has.
    """
    rng = np.random.default_rng(seed)
    found: dict[str, None] = {}  # an ordered set
    for _ in range(max_rounds):
        for text in space.sample(rng, 4 * n):
            if is_heldout(text) and text not in exclude:
                found[text] = None
                if len(found) == n:
                    return list(found)
    return list(found)


def training_inputs(space: InputSpace, rng: np.random.Generator, n: int) -> list[str]:
    """``n`` inputs of ``space`` drawn from ``rng``, redrawing any held-out one."""
    kept: list[str] = []
    while len(kept) < n:
        kept += [t for t in space.sample(rng, n - len(kept)) if not is_heldout(t)]
    return kept


def _batch(pairs: Sequence[Pair]) -> tuple[np.ndarray, np.ndarray]:
    """Encode ``<TAG><input>=<output>.`` per pair; the loss starts at the first output character."""
    sequences = [SKILL_TOKENIZER.encode(skill.example(text)) for skill, text in pairs]
    loss_from = [len(skill.prompt(text)) - 1 for skill, text in pairs]
    return lm_batch(sequences, loss_from, SKILL_TOKENIZER.pad_id)


def _exact_matches(model: Any, pairs: Sequence[Pair], batch_size: int) -> list[bool]:
    """Greedy-decode every prompt (equal lengths batched together) and compare with ``<output>.``."""
    max_total_len = max(skill.max_seq_len for skill, _ in pairs)
    check_block_size(model, max_total_len - 1)
    prompts = [SKILL_TOKENIZER.encode(skill.prompt(text)) for skill, text in pairs]
    with inference(model):
        completions = greedy_complete(model, prompts, SKILL_TOKENIZER.eos_id, max_total_len, batch_size)
    return [
        SKILL_TOKENIZER.decode(done) == skill.answer(text) + END
        for (skill, text), done in zip(pairs, completions, strict=True)
    ]


def _summary(inputs: Sequence[str], correct: Sequence[bool]) -> dict[str, Any]:
    """``{"accuracy": mean(correct), "by_length": {len(input): accuracy}, "n": len(inputs)}``."""
    by_length: dict[int, list[bool]] = {}
    for text, ok in zip(inputs, correct, strict=True):
        by_length.setdefault(len(text), []).append(ok)
    return {
        "accuracy": float(np.mean(correct)) if len(correct) else 0.0,
        "by_length": {length: float(np.mean(by_length[length])) for length in sorted(by_length)},
        "n": len(correct),
    }


class SkillTask:
    """One skill as a task: ``sample_batch`` for training, ``evaluate`` on a fixed held-out split.

    ``block_size`` is the context a model needs (the longest example minus one token);
    ``test_inputs`` and ``validation_inputs`` are ``n_eval`` held-out inputs each, drawn with
    ``eval_seed`` and ``eval_seed + 1`` (see the module docstring).  A space too small for both
    (subtraction's 497 held-out pairs) gives validation what the test set leaves.
    """

    metric = "accuracy"

    def __init__(self, skill: Skill, n_eval: int = 500, eval_seed: int = 1234) -> None:
        if not is_int(n_eval) or n_eval < 1:
            raise ValueError(f"n_eval must be an integer >= 1, got {n_eval!r}")
        self.skill = skill
        self.name = skill.name
        self.tokenizer = SKILL_TOKENIZER
        self.block_size = skill.max_seq_len - 1
        self.n_eval = n_eval
        self.eval_seed = eval_seed

    @functools.cached_property
    def test_inputs(self) -> list[str]:
        """The fixed test inputs: held out from every training batch, results are reported on them."""
        return heldout_inputs(self.skill.space, self.n_eval, self.eval_seed)

    @functools.cached_property
    def validation_inputs(self) -> list[str]:
        """The fixed validation inputs: held out from every training batch and disjoint from ``test_inputs``."""
        return heldout_inputs(self.skill.space, self.n_eval, self.eval_seed + 1, exclude=frozenset(self.test_inputs))

    def inputs(self, split: str) -> list[str]:
        """The inputs of ``split`` ("validation" or "test"); an empty split is a ValueError saying how to get one."""
        inputs = self.test_inputs if check_split(split) == "test" else self.validation_inputs
        if not self.test_inputs:
            raise ValueError(f"task {self.name!r} has no held-out inputs: none of its inputs passes is_heldout")
        if not inputs:
            raise ValueError(
                f"task {self.name!r} has no validation inputs: its test set (n_eval={self.n_eval}) holds all "
                f"{len(self.test_inputs)} held-out inputs; pass n_eval={len(self.test_inputs) // 2} or less"
            )
        return inputs

    def sample_inputs(self, rng: np.random.Generator, n: int) -> list[str]:
        """``n`` training inputs (never held out)."""
        return training_inputs(self.skill.space, rng, n)

    def sample_batch(self, rng: np.random.Generator, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """Host int64 ``(x, y)`` of shape (batch_size, T), T = longest example - 1; y = -1 on prompt and padding."""
        return _batch([(self.skill, text) for text in self.sample_inputs(rng, batch_size)])

    def evaluate(self, model: Any, split: str = "test", batch_size: int = 256) -> dict[str, Any]:
        """Exact-match accuracy of greedy decoding on ``split``'s inputs: ``{"accuracy", "by_length", "n"}``."""
        inputs = self.inputs(split)
        correct = _exact_matches(model, [(self.skill, text) for text in inputs], batch_size)
        return _summary(inputs, correct)

    def __repr__(self) -> str:
        return f"SkillTask({self.name!r}, tag={self.skill.tag!r})"


class MixtureTask:
    """Several skills in one task: each batch row picks its skill uniformly at random.

    ``evaluate`` scores every skill on its own inputs of the split (``by_skill``) and pools the counts.
    """

    metric = "accuracy"

    def __init__(self, skills: Sequence[Skill], name: str = "pretrain", n_eval: int = 500,
                 eval_seed: int = 1234) -> None:
        if not skills:
            raise ValueError("a mixture needs at least one skill")
        self.name = name
        self.tasks = [SkillTask(skill, n_eval, eval_seed) for skill in skills]
        self.tokenizer = SKILL_TOKENIZER
        self.block_size = max(task.block_size for task in self.tasks)

    def sample_batch(self, rng: np.random.Generator, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """Like ``SkillTask.sample_batch``, with row i's skill drawn uniformly: k_i ~ U{0..n_skills-1}."""
        choice = rng.integers(len(self.tasks), size=batch_size)
        pairs: dict[int, Pair] = {}  # row -> (skill, input)
        for k, task in enumerate(self.tasks):
            rows = np.flatnonzero(choice == k).tolist()
            pairs.update(zip(rows, [(task.skill, text) for text in task.sample_inputs(rng, len(rows))], strict=True))
        return _batch([pairs[row] for row in range(batch_size)])

    def evaluate(self, model: Any, split: str = "test", batch_size: int = 256) -> dict[str, Any]:
        """Per-skill results on ``split`` in ``by_skill``; ``accuracy``, ``by_length`` and ``n`` pool every prompt."""
        inputs = [task.inputs(split) for task in self.tasks]
        pairs = [(task.skill, text) for task, texts in zip(self.tasks, inputs, strict=True) for text in texts]
        correct = _exact_matches(model, pairs, batch_size)
        result = _summary([text for _, text in pairs], correct)
        start = 0
        result["by_skill"] = {}
        for task, texts in zip(self.tasks, inputs, strict=True):
            stop = start + len(texts)
            result["by_skill"][task.name] = _summary(texts, correct[start:stop])
            start = stop
        return result

    def __repr__(self) -> str:
        return f"MixtureTask({self.name!r}, skills={[task.name for task in self.tasks]})"
