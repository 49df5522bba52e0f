"""Pretrained models shipped inside the package, and the recipes that produced them.

``minilora.pretrained("skills")`` loads in well under a second, so notebooks never wait for
pretraining.  Each file is reproduced exactly by the recipe's command (same seed, same steps, one machine,
``OMP_NUM_THREADS=1``)::

    minilora pretrain --recipe skills --out minilora/weights/skills

Beside the shipped skills model, the zoo holds the models that make trends across pretraining measurable,
each loaded by ``pretrained("skills", ...)`` and rebuilt by its own recipe:

- ``step=S``: the shipped run's own snapshots, written by the ``skills`` recipe as it trains
  (``skills/steps/step-S.safetensors``); ``step=9000``, its last step, is the shipped model itself;
- ``pretrain_seed=1, 2``: the same recipe with another seed (recipes ``skills-seed-1``, ``skills-seed-2``);
- ``n_embd=32, 128``: other widths trained to the shipped model's criterion, ≥ 0.99 test accuracy on every
  pretraining skill (recipes ``skills-width-32``, ``skills-width-128``; ``n_embd=64`` is the shipped model).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from minilora.models.checkpoint import MODEL_FILE, load_model, snapshot_path
from minilora.models.configs import MODEL_SIZES
from minilora.models.gpt import GPT

__all__ = ["Recipe", "RECIPES", "pretrained", "weights_path", "zoo_member", "zoo_members"]

WEIGHTS_DIR = Path(__file__).parents[1] / "weights"  # minilora/weights/, package data


@dataclass(frozen=True)
class Recipe:
    """How a shipped model was pretrained: task, model size and training settings.

    ``n_embd`` replaces the size's width; ``snapshots`` are the steps (before the last) after which the run also
    saves its weights (``steps/step-<S>.safetensors`` in its folder); ``member_of`` names the shipped model this
    one is a variant of, so that ``pretrained(member_of, n_embd=..., pretrain_seed=...)`` finds it.
    """

    task: str
    size: str
    steps: int
    lr: float
    batch_size: int
    warmup_steps: int
    seed: int = 0
    task_kwargs: tuple[tuple[str, Any], ...] = ()  # passed to ``get_task(task, **task_kwargs)``
    n_embd: int | None = None
    snapshots: tuple[int, ...] = ()
    member_of: str | None = None

    @property
    def width(self) -> int:
        """The model's n_embd."""
        return self.n_embd if self.n_embd is not None else MODEL_SIZES[self.size]["n_embd"]

    def command(self, name: str) -> str:
        """The shell command that rebuilds the shipped weights called ``name``."""
        return f"minilora pretrain --recipe {name} --out minilora/weights/{name}"


_SKILLS = {"task": "pretrain", "size": "tiny", "lr": 2e-3, "batch_size": 64, "warmup_steps": 200}
RECIPES: dict[str, Recipe] = {
    "skills": Recipe(**_SKILLS, steps=9000, snapshots=(250, 500, 1000, 2000, 4000)),
    # the shipped names model was pretrained on every surname outside the test split (no validation split: no setting
    # is chosen while pretraining), so its recipe keeps that training set and rebuilds the weights bit for bit
    "names": Recipe(task="surnames", size="tiny", steps=4000, lr=2e-3, batch_size=64, warmup_steps=200,
                    task_kwargs=(("validation_fraction", 0.0),)),
    # the skills recipe with other seeds (initialisation and data order): how much one recipe's models differ
    "skills-seed-1": Recipe(**_SKILLS, steps=9000, seed=1, member_of="skills"),
    "skills-seed-2": Recipe(**_SKILLS, steps=9000, seed=2, member_of="skills"),
    # other widths, each trained until it meets the skills model's criterion (>= 0.99 on every pretraining skill)
    "skills-width-32": Recipe(**_SKILLS, steps=30000, n_embd=32, member_of="skills"),
    "skills-width-128": Recipe(**_SKILLS, steps=15000, n_embd=128, member_of="skills"),
}


def weights_path(name: str, step: int | None = None) -> Path:
    """Where the shipped weights of a recipe live: ``minilora/weights/<name>/model.safetensors``, or, for one of
    its snapshots, ``minilora/weights/<name>/steps/step-<step>.safetensors`` (the last step is the model file)."""
    if name not in RECIPES:
        raise ValueError(f"unknown pretrained model {name!r}; expected one of {sorted(RECIPES)}")
    recipe = RECIPES[name]
    if step is None or step == recipe.steps:
        return WEIGHTS_DIR / name / MODEL_FILE
    if step not in recipe.snapshots:
        raise ValueError(f"the pretrained {name!r} model has no snapshot at step {step}; its steps are "
                         f"{', '.join(map(str, (*recipe.snapshots, recipe.steps)))}")
    return snapshot_path(WEIGHTS_DIR / name, step)


def zoo_members(name: str) -> dict[str, Recipe]:
    """The recipes loadable as ``pretrained(name, ...)``: the shipped model's own and its variants'."""
    return {n: r for n, r in RECIPES.items() if n == name or r.member_of == name}


def _describe(members: dict[str, Recipe]) -> str:
    return "; ".join(f"n_embd={r.width}, pretrain_seed={r.seed}, step in "
                     f"{{{', '.join(map(str, (*r.snapshots, r.steps)))}}}" for r in members.values())


def zoo_member(name: str, n_embd: int | None = None, step: int | None = None, pretrain_seed: int | None = None
               ) -> tuple[str, int | None]:
    """The recipe (and step) of ``pretrained(name, n_embd, step, pretrain_seed)``; None keeps the shipped model's.
    A combination the zoo lacks is a one-line ValueError listing what it has."""
    if name not in RECIPES:
        raise ValueError(f"unknown pretrained model {name!r}; expected one of {sorted(RECIPES)}")
    shipped = RECIPES[name]
    width = shipped.width if n_embd is None else n_embd
    seed = shipped.seed if pretrain_seed is None else pretrain_seed
    members = zoo_members(name) if shipped.member_of is None else {name: shipped}
    for member, recipe in members.items():
        if recipe.width == width and recipe.seed == seed and (step is None or step in (*recipe.snapshots,
                                                                                        recipe.steps)):
            return member, step
    raise ValueError(f"the zoo has no {name!r} model with n_embd={width}, pretrain_seed={seed}"
                     f"{'' if step is None else f', step={step}'}; it has: {_describe(members)}")


def pretrained(name: str, n_embd: int | None = None, step: int | None = None, pretrain_seed: int | None = None,
               device: str | None = None) -> GPT:
    """A ready GPT pretrained by ``RECIPES[name]`` ("skills": copy/reverse/shift/add; "names": surnames), or one of
    its zoo variants: another width (``n_embd``), the snapshot of its run after ``step`` steps, or the same recipe
    with another seed (``pretrain_seed``); see the module docstring for what exists."""
    member, step = zoo_member(name, n_embd, step, pretrain_seed)
    path = weights_path(member, step)
    if not path.is_file():
        raise ValueError(f"the pretrained {member!r} weights are missing at {path}; rebuild them with: "
                         f"{RECIPES[member].command(member)}")
    return load_model(path, device=device).eval()
