"""The task registry: every task by name, what it is for and an example, so a script can say ``get_task("reverse")``.

Built-in tasks (``task_info(name)`` holds each one's role, description and example):

    copy, reverse, shift, add            one pretraining skill each (see ``minilora.data.skills``)
    pretrain  (alias skills-mix)         the four pretraining skills, each row's skill uniform
    reverse-shift, subtract, sort        held-out fine-tuning skills (close, close, far)
    surnames                             character LM on US-Census surnames (pretraining)
    first-names                          character LM on US-Census first names (adaptation target)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, Protocol

import numpy as np

from minilora.data.names import MARKER, NamesTask
from minilora.data.skill_tasks import MixtureTask, SkillTask
from minilora.data.skills import PRETRAIN_SKILLS, SKILLS
from minilora.data.tokenizer import CharTokenizer

__all__ = ["Task", "TASK_ROLES", "TaskInfo", "register_task", "list_tasks", "get_task", "task_info"]

TASK_ROLES = ("pretraining", "fine-tuning")
"""What a task is used for: teaching a base model from scratch, or adapting a pretrained one."""


class Task(Protocol):
    """What every task offers a training loop."""

    name: str
    tokenizer: CharTokenizer  # the model's vocab_size is tokenizer.vocab_size; generation stops at tokenizer.eos_id
    block_size: int  # the shortest model context that fits every example
    metric: str  # the headline key of evaluate()'s result: "accuracy" or "bits_per_char"

    def sample_batch(self, rng: np.random.Generator, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """Host int64 inputs x (B, T) and next-token targets y (B, T) of training inputs, -1 where no loss is taken."""
        ...

    def evaluate(self, model: Any, split: str = "test") -> dict[str, Any]:
        """Score ``model`` on the fixed inputs of ``split``, "validation" or "test" (``SPLITS``)."""
        ...


@dataclass(frozen=True)
class TaskInfo:
    """What a registered task is for: ``role`` (one of ``TASK_ROLES``), a one-line ``description``, and
    ``example``, one sample of the task (a mixture shows one per skill, separated by spaces).

    >>> info = task_info("reverse-shift")
    >>> info.role, info.example
    ('fine-tuning', 'Tabz=acb.')
    """

    name: str
    role: str
    description: str
    example: str


_TASKS: dict[str, Callable[..., Task]] = {}
_INFOS: dict[str, TaskInfo] = {}


def register_task(name: str, factory: Callable[..., Task], role: str, description: str, example: str = "") -> None:
    """Make ``get_task(name, **kwargs)`` return ``factory(**kwargs)`` and ``task_info(name)`` say what it is for.

    ``role`` is "pretraining" or "fine-tuning"; a taken name or another role is a ValueError.
    """
    if name in _TASKS:
        raise ValueError(f"task {name!r} is already registered")
    if role not in TASK_ROLES:
        raise ValueError(f"unknown role {role!r} for task {name!r}; expected one of {', '.join(map(repr, TASK_ROLES))}")
    _TASKS[name] = factory
    _INFOS[name] = TaskInfo(name, role, description, example)


def list_tasks() -> list[str]:
    """The names of all registered tasks, in registration order."""
    return list(_TASKS)


def _known(name: str) -> str:
    """``name`` when it is registered; else a ValueError naming it and the known tasks."""
    if name not in _TASKS:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(_TASKS)}")
    return name


def get_task(name: str, **kwargs: Any) -> Task:
    """A new task by name, built with ``kwargs`` (skills: ``n_eval=``, ``eval_seed=``; names: ``test_fraction=``,
    ``validation_fraction=``, ``seed=``)."""
    return _TASKS[_known(name)](**kwargs)


def task_info(name: str) -> TaskInfo:
    """The role, one-line description and example of a registered task (no task is built)."""
    return _INFOS[_known(name)]


_DESCRIPTIONS = {
    "copy": "repeat 1-8 lower-case letters",
    "reverse": "write 1-8 letters backwards",
    "shift": "move each of 1-8 letters one step along the alphabet (z -> a)",
    "add": "add two numbers from 0 to 99",
    "reverse-shift": "reverse, then shift: close to two pretraining skills",
    "subtract": "subtract two numbers: close to add, its inverse",
    "sort": "sort the letters: a new algorithm, far from pretraining",
}
_EXAMPLE_INPUTS = {"add": "12+34", "subtract": "57-23", "sort": "cab"}  # the rest read "abz"

for _skill in SKILLS.values():
    register_task(_skill.name, functools.partial(SkillTask, _skill),
                  "pretraining" if _skill.name in PRETRAIN_SKILLS else "fine-tuning",
                  _DESCRIPTIONS[_skill.name], _skill.example(_EXAMPLE_INPUTS.get(_skill.name, "abz")))
_pretrain_skills = [SKILLS[name] for name in PRETRAIN_SKILLS]
_MIXED = "copy, reverse, shift and add mixed: pretrains the shipped skills model"
_MIXED_EXAMPLE = " ".join(SKILLS[name].example(_EXAMPLE_INPUTS.get(name, "abz")) for name in PRETRAIN_SKILLS)
register_task("pretrain", functools.partial(MixtureTask, _pretrain_skills, "pretrain"), "pretraining", _MIXED,
              _MIXED_EXAMPLE)
register_task("skills-mix", functools.partial(MixtureTask, _pretrain_skills, "skills-mix"), "pretraining",
              "another name for pretrain", _MIXED_EXAMPLE)
register_task("surnames", functools.partial(NamesTask, "surnames"), "pretraining",
              "US-Census surnames, one letter at a time: pretrains the shipped names model", f"{MARKER}smith{MARKER}")
register_task("first-names", functools.partial(NamesTask, "first-names"), "fine-tuning",
              "US-Census first names: adapt the surname model to a new distribution", f"{MARKER}mary{MARKER}")
