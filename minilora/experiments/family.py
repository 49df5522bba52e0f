"""The LoRA family compared fairly: equal trainable parameters, each method at its own validation-chosen learning rate.

For each task (a close skill, a far skill, first names) every *arm* (a method with its size setting) trains with about
the trainable numbers of LoRA at r = 4 on the default targets, |Θ| = Σ r(d + k) = 7,168 on the 64-wide models:

    lora, pissa, lora-plus, qlora   Σ r(d + k)                    r = 4
    dora                            Σ r(d + k) + Σ d              (magnitudes m: one per output feature)
    lora-fa                         Σ r·d                         (only B trains)        r = 8
    vera                            Σ (r + d) = n·r + Σ d         (λ_d: r, λ_b: d per layer)
    adapter-houlsby                 2·L·(2·C·m + m + C)           (two adapters per block)
    adapter-lin                     L·(2·C·m + m + C)             (one per block)
    prefix                          2·L·p·C                       (a key and a value per layer and virtual token)
    full                            every weight                  (not matched: the reference)

(d, k: out and in features of each target Linear; L layers of width C; m the bottleneck; p the prefix length.)
``matched_size`` solves each formula for the integer size closest to the budget; every run records its real count.

Learning rates (Biderman et al. 2024 and the LoRA paper: LoRA's best lr is ~10× full fine-tuning's, so one fixed lr
would favour one of them): every arm gets the same grid ``LR_GRID``, a ×√10 ladder over 3 decades, and the lr is
chosen per (arm, task) on the **validation** split with seed 0; then seeds 1, 2 run at the chosen lr, and every
reported number is on the **test** split over seeds 0, 1, 2.  A choice at the edge of the grid is flagged.  LoRA also
runs at ranks {1, 4, 16} × the same grid (the rank × lr grid), with seeds at each rank's chosen lr.

Skill-task runs also measure what the skills model kept of pretraining: its accuracy on each pretraining skill's test
split (``adaptation.retained_accuracy``): learning (new-skill metric) against forgetting, Biderman et al.'s
"LoRA learns less and forgets less".

Two phases through ``run_sweep`` (one run cache, resumable): ``grid_specs()`` (seed 0 over the grid), then
``seed_specs(outcomes)`` (the other seeds at the chosen lrs); ``summarize`` builds the JSON ``lora-family.json``.
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from minilora.data import PRETRAIN_SKILLS, SKILLS
from minilora.experiments.adaptation import (
    REPORTED_ON,
    adaptation_spec,
    own_outcomes,
    run_adaptation,
    run_of,
    summarize_seeds,
)
from minilora.experiments.folders import check_writable
from minilora.experiments.methods import DEFAULT_TARGETS
from minilora.experiments.results import FAMILY_FILE, write_result
from minilora.experiments.sweep import run_sweep, spec_key

__all__ = ["ARMS", "FAMILY_FILE", "FAST", "LR_GRID", "LoraFamily", "ModelShape", "choose_lr", "format_family",
           "lora_family", "matched_size", "model_shape", "trainable_count"]

# Peak learning rates: 3e-4 · √10^i, i = 0..6.  Full fine-tuning of these models is best near 1e-3..3e-3 and LoRA
# near 1e-2 (the lora-paper sweeps' fixed lrs); vectors-only methods (VeRA, prefixes) want more: with the ladder ending
# at 1e-1, VeRA chose 1e-1 on all three tasks and prefix-tuning on two, so it runs to 3e-1.  Seven points, half a decade
# apart: fine enough that "10×" is two steps, wide enough that a choice at an edge is rare (and flagged).
LR_GRID = (3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1)

# arm → (registry method, the setting that sizes it, fixed settings).  An arm is a method at one configuration.
ARMS: dict[str, tuple[str, str | None, dict[str, Any]]] = {
    "full": ("full", None, {}),
    "lora": ("lora", "r", {}),
    "dora": ("dora", "r", {}),
    "pissa": ("pissa", "r", {}),
    "lora-fa": ("lora-fa", "r", {}),
    "lora-plus": ("lora-plus", "r", {}),
    "vera": ("vera", "r", {}),
    "qlora": ("qlora", "r", {}),
    "adapter-houlsby": ("adapter", "bottleneck", {"placement": "houlsby"}),
    "adapter-lin": ("adapter", "bottleneck", {"placement": "lin"}),
    "prefix": ("prefix", "num_virtual_tokens", {"prefix_projection": False}),
}
_TARGETED = {"lora", "dora", "pissa", "lora-fa", "lora-plus", "vera", "qlora"}  # arms that take target_modules
# Runs of these methods are submitted first (longest first): a VeRA run at r = 784 takes ~6× a LoRA run here, and
# one started last would leave the other workers idle at the end of a phase.
_SLOW = ("vera",)


@dataclass(frozen=True)
class ModelShape:
    """What the parameter formulas need of a model: ``n_layer`` L, ``n_embd`` C, and (d, k) = (out, in) features of
    every adapted Linear (``targets``)."""

    n_layer: int
    n_embd: int
    targets: tuple[tuple[int, int], ...]


def model_shape(model: Any, targets: Sequence[str] = DEFAULT_TARGETS) -> ModelShape:
    """The ``ModelShape`` of a GPT: its Linears whose last name part is in ``targets``."""
    from minilora import nn

    linears = [m for name, m in model.named_modules()
               if isinstance(m, nn.Linear) and name.rsplit(".", 1)[-1] in set(targets)]
    return ModelShape(model.config.n_layer, model.config.n_embd,
                      tuple((int(m.weight.shape[0]), int(m.weight.shape[1])) for m in linears))


@functools.lru_cache(maxsize=None)
def _base_shape(base: str, targets: tuple[str, ...]) -> ModelShape:
    from minilora.experiments.runs import load_base

    return model_shape(load_base(base), targets)


def trainable_count(arm: str, size: int, shape: ModelShape) -> int:
    """Trainable numbers of ``arm`` at ``size`` (r, bottleneck m or prefix length p) by its formula (module
    docstring); full fine-tuning has no formula here (its count is the model's)."""
    ds = [d for d, _ in shape.targets]
    L, C = shape.n_layer, shape.n_embd  # noqa: N806 (the formulas' names)
    if arm in ("lora", "pissa", "lora-plus", "qlora"):
        return sum(size * (d + k) for d, k in shape.targets)
    if arm == "dora":
        return sum(size * (d + k) for d, k in shape.targets) + sum(ds)
    if arm == "lora-fa":
        return sum(size * d for d in ds)
    if arm == "vera":
        return len(ds) * size + sum(ds)
    if arm in ("adapter-houlsby", "adapter-lin"):
        return (2 if arm == "adapter-houlsby" else 1) * L * (2 * C * size + size + C)
    if arm == "prefix":
        return 2 * L * size * C
    raise ValueError(f"trainable_count: no formula for arm {arm!r}; expected one of {sorted(set(ARMS) - {'full'})}")


def matched_size(arm: str, budget: int, shape: ModelShape) -> int:
    """The size s ≥ 1 whose ``trainable_count`` is closest to ``budget`` (a tie goes to the larger s).

    Every formula is affine in s, count(s) = a·s + b, so s* = (budget − b) / a and the answer is ⌊s*⌋ or ⌈s*⌉."""
    one, two = trainable_count(arm, 1, shape), trainable_count(arm, 2, shape)
    a, b = two - one, 2 * one - two
    exact = (budget - b) / a
    candidates = {max(1, math.floor(exact)), max(1, math.ceil(exact))}
    return min(candidates, key=lambda s: (abs(trainable_count(arm, s, shape) - budget), -s))


def choose_lr(validation: Mapping[float, float | None], lower_is_better: bool) -> float | None:
    """The learning rate of the best validation metric (max accuracy, min bits per char); a diverged run (None) is
    never chosen, a tie goes to the smaller lr; None when every run diverged."""
    finite = {lr: v for lr, v in validation.items() if v is not None and math.isfinite(v)}
    if not finite:
        return None
    sign = 1.0 if lower_is_better else -1.0
    return min(sorted(finite), key=lambda lr: sign * finite[lr])


@dataclass(frozen=True)
class LoraFamily:
    """The settings of the family comparison; ``grid_specs()``, ``seed_specs(outcomes)`` list its runs and
    ``summarize(outcomes)`` builds its JSON.

    ``arms`` are names of ``ARMS``; each is sized to the trainable numbers of LoRA at ``budget_rank`` on ``targets``.
    ``ranks`` are LoRA's rank × lr grid.  ``seeds[0]`` chooses the lr (validation), all seeds report (test).
    ``skill_task_kwargs`` go to ``get_task`` for skill tasks; ``retained_n_eval`` inputs per pretraining skill.
    """

    tasks: tuple[tuple[str, str], ...] = (("reverse-shift", "skills"), ("sort", "skills"), ("first-names", "names"))
    arms: tuple[str, ...] = tuple(ARMS)
    lrs: tuple[float, ...] = LR_GRID
    ranks: tuple[int, ...] = (1, 4, 16)
    budget_rank: int = 4
    seeds: tuple[int, ...] = (0, 1, 2)
    steps: int = 400
    batch_size: int = 64
    targets: tuple[str, ...] = DEFAULT_TARGETS
    skill_task_kwargs: tuple[tuple[str, Any], ...] = ()
    retained_n_eval: int = 200

    def __post_init__(self) -> None:
        unknown = [a for a in self.arms if a not in ARMS]
        if unknown:
            raise ValueError(f"lora-family: unknown method {unknown[0]!r}; expected some of {', '.join(ARMS)}")
        if not self.arms or not self.lrs or not self.seeds or not self.tasks:
            raise ValueError("lora-family: arms, lrs, seeds and tasks must not be empty")

    # ------------------------------------------------------------------------------------------ the runs
    def budget(self, base: str) -> int:
        """The trainable numbers every arm is matched to: LoRA at ``budget_rank`` on ``targets`` of ``base``."""
        return trainable_count("lora", self.budget_rank, _base_shape(base, self.targets))

    def arm_settings(self, arm: str, base: str) -> dict[str, Any]:
        """The registry settings of ``arm`` on ``base``: its matched size, fixed settings and the targets."""
        method, size_key, fixed = ARMS[arm]
        settings = dict(fixed)
        if size_key is not None:
            settings[size_key] = matched_size(arm, self.budget(base), _base_shape(base, self.targets))
        if arm in _TARGETED:
            settings["target_modules"] = list(self.targets)
        return settings

    def _job(self, task: str, base: str, method: str, settings: dict[str, Any] | None, seed: int,
             lr: float) -> dict[str, Any]:
        measure = {"validation": True, "retained_n_eval": self.retained_n_eval if task in SKILLS else 0}
        kwargs = dict(self.skill_task_kwargs) if task in SKILLS else {}
        steps = self.steps if method != "none" else 0
        return adaptation_spec(task, base, method, seed=seed, steps=steps, lr=lr if method != "none" else 1.0,
                               settings=settings, batch_size=self.batch_size, task_kwargs=kwargs, measure=measure)

    def _cells(self) -> list[tuple[str, str, str, str, dict[str, Any], int | None]]:
        """(task, base, row kind, arm, settings, rank) of every row: one per arm ("method"), one per LoRA rank
        ("rank"; the budget rank is the "lora" arm's own run)."""
        cells = []
        for task, base in self.tasks:
            for arm in self.arms:
                cells.append((task, base, "method", arm, self.arm_settings(arm, base), None))
            for r in self.ranks:
                cells.append((task, base, "rank", "lora", {"r": r, "target_modules": list(self.targets)}, r))
        return cells

    def grid_specs(self) -> list[dict[str, Any]]:
        """Phase 1: per task the base model once ("none"), then every row at every lr of ``lrs`` with ``seeds[0]``."""
        specs = [self._job(task, base, "none", None, 0, 1.0) for task, base in self.tasks]
        for task, base, _, arm, settings, _ in self._cells():
            specs += [self._job(task, base, ARMS[arm][0], settings, self.seeds[0], lr) for lr in self.lrs]
        return _unique(specs)

    def seed_specs(self, outcomes: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Phase 2: ``seeds[1:]`` of every row at its chosen lr (``choose_lr`` on the validation metric of the
        phase-1 ``outcomes``); a row whose every run diverged gets none."""
        specs = []
        for task, base, _, arm, settings, _ in self._cells():
            lr, _ = self._choice(outcomes, task, base, arm, settings)
            if lr is not None:
                specs += [self._job(task, base, ARMS[arm][0], settings, seed, lr) for seed in self.seeds[1:]]
        return _unique(specs)

    def specs(self, outcomes: Sequence[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        """Every run: the grid, and with phase-1 ``outcomes`` the seeds at the chosen lrs too."""
        return self.grid_specs() + ([] if outcomes is None else self.seed_specs(outcomes))

    def _choice(self, outcomes: Sequence[dict[str, Any]], task: str, base: str, arm: str,
                settings: dict[str, Any]) -> tuple[float | None, list[dict[str, Any]]]:
        """(chosen lr, that row's grid outcomes in ``lrs`` order): chosen on validation, never on test."""
        jobs = [self._job(task, base, ARMS[arm][0], settings, self.seeds[0], lr) for lr in self.lrs]
        grid = own_outcomes(jobs, outcomes)
        lower = grid[0]["result"]["metric"] == "bits_per_char"
        return choose_lr({lr: o["result"]["validation"] for lr, o in zip(self.lrs, grid)}, lower), grid

    # ------------------------------------------------------------------------------------------ the JSON
    def summarize(self, outcomes: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """The JSON of the comparison (``lora-family.json``):

        rows       one per (task, arm) ("kind": "method") and per (task, LoRA rank) ("kind": "rank"): the chosen lr,
                   ``lr_at_edge`` ("low" / "high" / None), the seed-0 validation metric it was chosen by, and over
                   the seeds at that lr: ``test`` (mean, std, values), ``retained`` (mean over the pretraining
                   skills, per seed; skill tasks), trainable params, optimizer bytes, step ms
        lr_grid    every phase-1 run: (task, kind, arm, rank, lr) → validation and test metric, diverged, and the
                   mean retained accuracy (skill tasks): learning against forgetting along the lr
        none       per task: the base model's test and validation metric and retained accuracy
        """
        by_key = {o["key"]: o for o in outcomes}
        rows, grid_rows = [], []
        for task, base, kind, arm, settings, rank in self._cells():
            lr, grid = self._choice(outcomes, task, base, arm, settings)
            method, size_key, _ = ARMS[arm]
            for grid_lr, o in zip(self.lrs, grid):
                res = o["result"]
                kept = res["retained"]
                grid_rows.append({"task": task, "kind": kind, "arm": arm, "rank": rank, "lr": grid_lr,
                                  "validation": res["validation"], "test": res["value"], "diverged": res["diverged"],
                                  "retained": None if kept is None else sum(kept.values()) / len(kept)})
            row = {"task": task, "base": base, "kind": kind, "arm": arm, "method": method, "rank": rank,
                   "size_key": size_key, "size": settings.get(size_key) if size_key else None,
                   "settings": run_of(grid[0])["settings"], "metric": grid[0]["result"]["metric"],
                   "budget": self.budget(base), "lr": lr,
                   "lr_at_edge": None if lr is None else ("low" if lr == min(self.lrs) else
                                                          "high" if lr == max(self.lrs) else None)}
            if lr is None:
                rows.append({**row, "diverged": True, "test": None, "retained": None})
                continue
            found = [by_key.get(spec_key(self._job(task, base, method, settings, seed, lr))) for seed in self.seeds]
            if any(o is None for o in found):
                raise ValueError(f"lora-family: {task} {arm} r={rank}: seeds {list(self.seeds)} at lr {lr:g} are "
                                 "not all run; run seed_specs(outcomes) first")
            results = [o["result"] for o in found]
            if any(r["diverged"] for r in results):
                rows.append({**row, "diverged": True, "test": None, "retained": None,
                             "diverged_seeds": [s for s, r in zip(self.seeds, results) if r["diverged"]]})
                continue
            retained = None
            if results[0]["retained"] is not None:
                retained = {**summarize_seeds([sum(r["retained"].values()) / len(r["retained"]) for r in results]),
                            "by_skill": {s: summarize_seeds([r["retained"][s] for r in results])["mean"]
                                         for s in PRETRAIN_SKILLS}}
            rows.append({**row, "diverged": False, "validation": results[0]["validation"],
                         "trainable_params": results[0]["trainable_params"],
                         "formula_params": None if arm == "full" else trainable_count(arm, row["size"] or 0,
                                                                                     _base_shape(base, self.targets)),
                         "optimizer_bytes": results[0]["optimizer_bytes"],
                         "step_ms": summarize_seeds([r["step_ms"] for r in results])["mean"],
                         "seconds": summarize_seeds([r["seconds"] for r in results])["mean"],
                         "final_loss": summarize_seeds([r["final_loss"] for r in results])["mean"],
                         "seeds": list(self.seeds), "test": summarize_seeds([r["value"] for r in results]),
                         "retained": retained})
        none = {}
        for task, base in self.tasks:
            res = own_outcomes([self._job(task, base, "none", None, 0, 1.0)], outcomes)[0]["result"]
            none[task] = {"metric": res["metric"], "test": res["value"], "validation": res["validation"],
                          "retained": None if res["retained"] is None else
                          {**res["retained"], "mean": sum(res["retained"].values()) / len(res["retained"])}}
        return {"experiment": "lora-family",
                "settings": {**asdict(self), "task_kwargs": dict(self.skill_task_kwargs)},
                "budget": {base: self.budget(base) for _, base in self.tasks},
                "reported_on": REPORTED_ON, "chosen_on": "validation", "pretrain_skills": list(PRETRAIN_SKILLS),
                "rows": rows, "lr_grid": grid_rows, "none": none}


def _unique(specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``specs`` without repeats (the LoRA row at the budget rank is also the rank grid's), the slow methods' runs
    first (``_SLOW``), otherwise in order."""
    unique = list({spec_key(s): s for s in specs}.values())
    return sorted(unique, key=lambda s: s["run"]["method"] not in _SLOW)


# The whole comparison: 315 runs of 400 steps (237 in the lr grid, 78 more seeds); estimated from single-run CPU
# times at about 30 minutes with jobs=2 on an idle 2-core machine (VeRA at r = 784 is a third of it).
FULL = LoraFamily()
# A tiny grid that shows the pipeline (not the findings): two tasks, three arms, two lrs, two seeds, 30 steps;
# 26 runs, about 20 s with jobs=2.
FAST = LoraFamily(tasks=(("reverse-shift", "skills"), ("first-names", "names")), arms=("full", "lora", "lora-fa"),
                  lrs=(1e-3, 1e-2), ranks=(1, 4), seeds=(0, 1), steps=30, skill_task_kwargs=(("n_eval", 40),),
                  retained_n_eval=20)


def lora_family(out: str | Path | None = None, runs: str | Path | None = None, fast: bool = False,
                methods: Sequence[str] | None = None, jobs: int = 1, executor: cf.Executor | None = None,
                settings: LoraFamily | None = None) -> dict[str, Any]:
    """Run the comparison in two ``run_sweep`` phases (the lr grid with seed 0, then the other seeds at the lrs
    chosen on validation) and write ``lora-family.json`` into ``out``; returns it.

    ``settings`` replaces ``FAST`` / ``FULL``; ``methods`` keeps only those arms.  ``runs`` (default
    ``runs/lora-family`` or ``runs/lora-family-fast``) keeps every finished run, so an interrupted sweep resumes;
    ``out`` defaults to ``runs``.  Both folders are checked before the first run.
    """
    family = settings or (FAST if fast else FULL)
    if methods is not None:
        family = replace(family, arms=tuple(dict.fromkeys(methods)))
    cache = Path(runs) if runs is not None else Path("runs") / ("lora-family-fast" if fast else "lora-family")
    out = cache if out is None else Path(out)
    check_writable(out, "results folder")
    check_writable(cache, "run cache")
    before = len(list((cache / "runs").glob("*.json"))) if (cache / "runs").is_dir() else 0
    start = time.perf_counter()
    grid = family.grid_specs()
    desc = "lora-family" + (" --fast" if fast else "")
    outcomes = run_sweep(grid, run_adaptation, runs=cache, jobs=jobs, executor=executor, desc=f"{desc}: lr grid")
    seeds = family.seed_specs(outcomes)
    outcomes += run_sweep(seeds, run_adaptation, runs=cache, jobs=jobs, executor=executor, desc=f"{desc}: seeds")
    wall = time.perf_counter() - start
    after = len(list((cache / "runs").glob("*.json")))
    sweep = {"specs": len(grid) + len(seeds), "grid_specs": len(grid), "seed_specs": len(seeds),
             "computed": after - before, "wall_seconds": wall, "jobs": jobs,
             "executor": None if executor is None else type(executor).__name__, "fast": fast,
             "threads": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}}
    result = {**family.summarize(outcomes), "sweep": sweep}
    write_result(out / FAMILY_FILE, result)
    return result


def _pm(stats: Mapping[str, Any] | None, digits: int = 3) -> str:
    return "—" if stats is None else f"{stats['mean']:.{digits}f} ± {stats['std']:.{digits}f}"


def format_family(result: Mapping[str, Any]) -> str:
    """The comparison as text: per task, one line per arm and per LoRA rank (test mean ± std over seeds at the lr
    chosen on validation; ``*`` marks an lr at the grid's edge), then the sweep's size and wall time."""
    lines = [f"LoRA family at ~{', '.join(f'{b:,}' for b in dict.fromkeys(result['budget'].values()))} trainable "
             f"numbers; lr chosen on {result['chosen_on']} (seed {result['settings']['seeds'][0]}), "
             f"{result['reported_on']} mean ± std over seeds {result['settings']['seeds']}"]
    head = (f"  {'method':16s} {'params':>8s} {'opt KiB':>8s} {'step ms':>8s} {'lr':>8s}  {'test':15s} "
            f"{'retained':15s}")
    for task in dict.fromkeys(r["task"] for r in result["rows"]):
        none = result["none"][task]
        base_kept = "" if none["retained"] is None else f", retained {none['retained']['mean']:.3f}"
        lines.append(f"{task} ({none['metric']}; no fine-tuning: test {none['test']:.3f}{base_kept})")
        lines.append(head)
        for r in (r for r in result["rows"] if r["task"] == task):
            name = r["arm"] if r["kind"] == "method" else f"lora r={r['rank']}"
            if r["diverged"]:
                lines.append(f"  {name:16s} diverged at every lr" if r["lr"] is None else
                             f"  {name:16s} diverged at lr {r['lr']:g} (seeds {r.get('diverged_seeds')})")
                continue
            edge = "*" if r["lr_at_edge"] else " "
            lines.append(f"  {name:16s} {r['trainable_params']:>8,} {r['optimizer_bytes'] / 2**10:>8.1f} "
                         f"{r['step_ms']:>8.1f} {r['lr']:>7.0e}{edge} {_pm(r['test']):15s} {_pm(r['retained']):15s}")
    sweep = result.get("sweep")
    lines.append("  (* the chosen lr is at an edge of the grid "
                 f"{', '.join(f'{lr:g}' for lr in result['settings']['lrs'])}; retained: mean accuracy on the "
                 f"pretraining skills {', '.join(result['pretrain_skills'])})")
    if sweep:
        lines.append(f"sweep: {sweep['specs']} runs ({sweep['computed']} computed, the rest loaded), "
                     f"{sweep['wall_seconds']:.0f} s wall, jobs {sweep['jobs']}")
    return "\n".join(lines)
