"""One typed run spec: everything that decides a training run's numbers, in one frozen, JSON-able object.

    RunSpec(task="reverse-shift", base="skills", method="lora",
            settings={"r": 4, "lora_alpha": None, ...},     # the method's settings, checked by the registry
            train=TrainConfig(steps=300, lr=1e-2, ...),      # steps, batch, schedule, seed
            task_kwargs={"n_eval": 200})                     # how the task is built (e.g. a shorter evaluation)

A run depends on its spec alone (the seed is ``train.seed``), so a spec is also the run's identity: ``key()``
is the first 12 hex digits of sha1(canonical JSON), the name of its entry in a sweep's run cache.  compare,
the LoRA-paper analyses, intrinsic and the demo all describe their runs with it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from minilora.experiments.methods import get_method
from minilora.train import TrainConfig

__all__ = ["RunSpec", "canonical_json", "json_key"]


def canonical_json(data: Any) -> str:
    """``data`` as canonical JSON text: sorted keys, tuples as lists (what it reads back as from a file)."""
    return json.dumps(data, sort_keys=True)


def json_key(data: Any) -> str:
    """A stable short id of JSON data: the first 12 hex digits of sha1(canonical JSON); key order does not matter."""
    return hashlib.sha1(canonical_json(data).encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True)
class RunSpec:
    """A training run: ``task`` adapted from ``base`` by ``method`` with its ``settings``, trained by ``train``.

    ``base`` is a shipped model name, a model file, or "random" where an experiment builds the base itself.
    """

    task: str
    base: str
    method: str
    settings: Mapping[str, Any]
    train: TrainConfig
    task_kwargs: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def make(cls, task: str, base: str, method: str, train: TrainConfig, settings: Mapping[str, Any] | None = None,
             task_kwargs: Mapping[str, Any] | None = None) -> RunSpec:
        """A spec whose ``settings`` are checked and completed by the method's registry entry."""
        return cls(task, base, method, get_method(method).check(settings), train, dict(task_kwargs or {}))

    def to_json(self) -> dict[str, Any]:
        """The spec as plain JSON data: {"task", "base", "method", "settings", "train", "task_kwargs"}."""
        return json.loads(canonical_json({"task": self.task, "base": self.base, "method": self.method,
                                          "settings": dict(self.settings), "train": asdict(self.train),
                                          "task_kwargs": dict(self.task_kwargs)}))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunSpec:
        """The spec ``to_json`` wrote; a ValueError names a missing or unknown field."""
        names = ("task", "base", "method", "settings", "train", "task_kwargs")
        if not isinstance(data, Mapping) or set(data) != set(names):
            got = sorted(data) if isinstance(data, Mapping) else type(data).__name__
            raise ValueError(f"a run spec needs exactly the fields {list(names)}, got {got}")
        known = {f.name for f in fields(TrainConfig)}
        unknown = sorted(set(data["train"]) - known)
        if unknown:
            raise ValueError(f"a run spec's train settings are TrainConfig fields; {unknown[0]!r} is not one")
        train = {k: tuple(v) if isinstance(v, list) else v for k, v in data["train"].items()}
        return cls(data["task"], data["base"], data["method"], dict(data["settings"]), TrainConfig(**train),
                   dict(data["task_kwargs"]))

    def key(self) -> str:
        """The run's stable id: ``json_key(self.to_json())``."""
        return json_key(self.to_json())
