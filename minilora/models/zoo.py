"""Pretrained models shipped inside the package, and the recipes that produced them.

``minilora.pretrained("skills")`` loads in well under a second, so notebooks never wait for
pretraining.  Each file is reproduced exactly by the recipe's command (same seed, same steps)::

    minilora pretrain --recipe skills --out minilora/weights/skills
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from minilora.models.checkpoint import MODEL_FILE, load_model
from minilora.models.gpt import GPT

__all__ = ["Recipe", "RECIPES", "pretrained", "weights_path"]

WEIGHTS_DIR = Path(__file__).parents[1] / "weights"  # minilora/weights/, package data


@dataclass(frozen=True)
class Recipe:
    """How a shipped model was pretrained: task, model size and training settings."""

    task: str
    size: str
    steps: int
    lr: float
    batch_size: int
    warmup_steps: int
    seed: int = 0
    task_kwargs: tuple[tuple[str, Any], ...] = ()  # passed to ``get_task(task, **task_kwargs)``

    def command(self, name: str) -> str:
        """The shell command that rebuilds the shipped weights called ``name``."""
        return f"minilora pretrain --recipe {name} --out minilora/weights/{name}"


RECIPES: dict[str, Recipe] = {
    "skills": Recipe(task="pretrain", size="tiny", steps=9000, lr=2e-3, batch_size=64, warmup_steps=200),
    # the shipped names model was pretrained on every surname outside the test split (no validation split: no setting
    # is chosen while pretraining), so its recipe keeps that training set and rebuilds the weights bit for bit
    "names": Recipe(task="surnames", size="tiny", steps=4000, lr=2e-3, batch_size=64, warmup_steps=200,
                    task_kwargs=(("validation_fraction", 0.0),)),
}


def weights_path(name: str) -> Path:
    """Where the shipped weights of a recipe live (``minilora/weights/<name>/model.safetensors``)."""
    if name not in RECIPES:
        raise ValueError(f"unknown pretrained model {name!r}; expected one of {sorted(RECIPES)}")
    return WEIGHTS_DIR / name / MODEL_FILE


def pretrained(name: str, device: str | None = None) -> GPT:
    """A ready GPT pretrained by ``RECIPES[name]`` ("skills": copy/reverse/shift/add; "names": surnames)."""
    path = weights_path(name)
    if not path.is_file():
        raise ValueError(f"the pretrained {name!r} weights are missing at {path}; rebuild them with: "
                         f"{RECIPES[name].command(name)}")
    return load_model(path, device=device).eval()
