"""The task registry: every task by name, so a training script can say ``get_task("reverse")``.

Built-in tasks:

    copy, reverse, shift, add            one pretraining skill each (see ``minilora.data.skills``)
    pretrain  (alias skills-mix)         the four pretraining skills, each row's skill uniform
    reverse-shift, subtract, sort        held-out fine-tuning skills (close, close, far)
    surnames                             character LM on US-Census surnames (pretraining)
    first-names                          character LM on US-Census first names (adaptation target)
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Protocol

import numpy as np

from minilora.data.names import NamesTask
from minilora.data.skill_tasks import MixtureTask, SkillTask
from minilora.data.skills import PRETRAIN_SKILLS, SKILLS
from minilora.data.tokenizer import CharTokenizer

__all__ = ["Task", "register_task", "list_tasks", "get_task"]


class Task(Protocol):
    """What every task offers a training loop."""

    name: str
    tokenizer: CharTokenizer  # the model's vocab_size is tokenizer.vocab_size
    block_size: int  # the shortest model context that fits every example
    metric: str  # the headline key of evaluate()'s result: "accuracy" or "bits_per_char"

    def sample_batch(self, rng: np.random.Generator, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """Host int64 inputs x (B, T) and next-token targets y (B, T), -1 where no loss is taken."""
        ...

    def evaluate(self, model: Any) -> dict[str, Any]:
        """Score ``model`` on the task's fixed held-out set."""
        ...


_TASKS: dict[str, Callable[..., Task]] = {}


def register_task(name: str, factory: Callable[..., Task]) -> None:
    """Make ``get_task(name, **kwargs)`` return ``factory(**kwargs)``; a taken name is a ValueError."""
    if name in _TASKS:
        raise ValueError(f"task {name!r} is already registered")
    _TASKS[name] = factory


def list_tasks() -> list[str]:
    """The names of all registered tasks, in registration order."""
    return list(_TASKS)


def get_task(name: str, **kwargs: Any) -> Task:
    """A new task by name, built with ``kwargs`` (e.g. ``n_eval=``, ``eval_seed=``, ``heldout_fraction=``)."""
    try:
        factory = _TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(_TASKS)}") from None
    return factory(**kwargs)


for _skill in SKILLS.values():
    register_task(_skill.name, functools.partial(SkillTask, _skill))
_pretrain_skills = [SKILLS[name] for name in PRETRAIN_SKILLS]
register_task("pretrain", functools.partial(MixtureTask, _pretrain_skills, "pretrain"))
register_task("skills-mix", functools.partial(MixtureTask, _pretrain_skills, "skills-mix"))
register_task("surnames", functools.partial(NamesTask, "surnames"))
register_task("first-names", functools.partial(NamesTask, "first-names"))
