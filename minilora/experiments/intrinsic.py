"""Intrinsic-dimension experiments: what ``minilora intrinsic`` runs (Li et al. 2018; Aghajanyan et al. 2020).

Every number comes from independent runs (specs) run by the one sweep runner (``experiments/sweep.py``):

    subspace  train only z ∈ R^d in θ = θ0 + P z (``SubspaceModel``), lr from a small grid per d
    full      full fine-tuning of the same base: the baseline of d90 (same task, steps, batch, schedule)
    lora      LoRA at rank r (the parameter-budget chart)
    pretrain  a GPT pretrained by the skills recipe's settings, saving snapshots (cached under the output folder)

A *curve* is one model + projection measured over d: per d, seed 0 is trained at every learning rate of
the grid, the best lr is kept (``d90.choose_lr``; a diverged run is a miss), and the other seeds run at
that lr.  d grows by the search of ``d90.next_dims`` until d90 is bracketed.  The experiments below
each combine a few curves and write one JSON file (``intrinsic-<name>.json``) that ``plots.py`` draws.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from minilora.data import get_task
from minilora.experiments.d90 import (
    FRACTION,
    choose_lr,
    crossing,
    effective_metric,
    median_d90,
    next_dims,
    target_of,
)
from minilora.experiments.folders import check_writable
from minilora.experiments.intrinsic_table import format_table
from minilora.experiments.methods import get_method
from minilora.experiments.results import INTRINSIC_PREFIX, intrinsic_file, write_result
from minilora.experiments.runs import load_base
from minilora.experiments.snapshots import pretrain_with_snapshots
from minilora.experiments.spec import RunSpec
from minilora.experiments.sweep import run_sweep, spec_key
from minilora.experiments.toy_intrinsic import toy_summary
from minilora.models.configs import MODEL_SIZES
from minilora.models.gpt import GPT
from minilora.models.zoo import RECIPES
from minilora.subspace import DENSE_MAX_BYTES
from minilora.train import TrainConfig, TrainingDiverged, default_warmup_steps, train

__all__ = [
    "EXPERIMENTS",
    "FAST",
    "FULL",
    "REPORTED_ON",
    "SELECTED_ON",
    "Context",
    "Curve",
    "Settings",
    "along_pretraining",
    "budget",
    "format_table",
    "measure_curves",
    "pretrained_vs_random",
    "projections",
    "run_intrinsic",
    "run_one",
    "said",
    "toy",
    "width",
]

SELECTED_ON = "validation"  # the split every choice is made on (z's learning rate per d)
REPORTED_ON = "test"  # the split every reported metric is measured on
RANDOM = "random"  # base name: the skills architecture from random initialisation (seeded by the run's seed)


@dataclass(frozen=True)
class Settings:
    """The budget and grids of the intrinsic-dimension experiments (FULL and FAST below)."""

    task: str = "reverse-shift"
    steps: int = 300
    batch_size: int = 64
    lrs: tuple[float, ...] = (0.01, 0.03, 0.1)  # z's learning-rate grid, best per d (large d needs the small ones)
    lr_full: float = 3e-3  # the full fine-tuning baseline (compare's default)
    lr_lora: float = 1e-2
    ranks: tuple[int, ...] = (1, 2, 4, 8)
    seeds: int = 3
    random_seeds: int = 5  # the random-initialisation side varies most between seeds
    fraction: float = FRACTION
    refine: int = 1  # points inside the bracketing octave
    d_min: int = 16
    d_max: int = 65536
    dense_dims: tuple[int, ...] = (128, 256, 512)  # measured for every projection (dense where P fits)
    start: tuple[int, ...] = (512, 1024)  # first powers of two tried for a pretrained model (a guess near d90)
    start_random: tuple[int, ...] = (8192, 16384)
    snapshots: tuple[int, ...] = (500, 1500, 4500, 9000)  # pretraining steps of the skills recipe to measure at
    snapshot_starts: tuple[tuple[int, ...], ...] = ((4096, 8192), (2048, 4096), (1024, 2048), (512, 1024))
    widths: tuple[int, ...] = (32, 64, 128)  # n_embd, each pretrained with the skills recipe for width_steps
    width_steps: int = 3000
    toy_max_d: int = 20

    def as_dict(self) -> dict[str, Any]:
        """The settings as JSON data (stored in every result file)."""
        return asdict(self)


FULL = Settings()
# a quick look (≈ 2-3 minutes on 2 cores): one seed, fewer steps, no refinement, short pretraining
FAST = Settings(steps=100, lrs=(0.03,), seeds=1, random_seeds=1, refine=0, ranks=(1, 4), dense_dims=(256,),
                start=(1024, 2048), start_random=(8192, 16384), snapshots=(200, 400, 800),
                snapshot_starts=((4096, 8192), (4096, 8192), (2048, 4096)), widths=(32, 48, 64), width_steps=400,
                toy_max_d=12)


@dataclass(frozen=True)
class Curve:
    """One model measured over d: ``base`` ("skills", "random" or a model file), a projection, SAID or not."""

    name: str
    base: str
    seeds: int
    start: tuple[int, ...]
    projection: str = "fastfood"
    said: bool = False
    fixed: tuple[int, ...] = ()  # dims always measured (the dense grid)
    search: bool = True  # False: only ``fixed``


@dataclass
class Context:
    """Where runs are cached (``runs/runs``), how they run (``jobs`` or ``executor``) and their settings."""

    settings: Settings
    runs: Path
    jobs: int = 1
    executor: Any = None
    results: dict[str, dict[str, Any]] = field(default_factory=dict)  # spec key → result, this session

    def sweep(self, specs: Sequence[Mapping[str, Any]], desc: str) -> list[dict[str, Any]]:
        """Run the specs (skipping finished ones) and remember every result by key."""
        unique = list({spec_key(s): s for s in specs}.values())
        rows = run_sweep(unique, run_one, runs=self.runs, jobs=self.jobs, executor=self.executor, desc=desc)
        self.results.update({row["key"]: row["result"] for row in rows})
        return rows

    def result(self, spec: Mapping[str, Any]) -> dict[str, Any] | None:
        """The result of ``spec`` if it ran in this session (or was loaded from the cache), else None."""
        return self.results.get(spec_key(spec))


# ---------------------------------------------------------------------------------------------- one run


def _base_model(base: str, seed: int) -> Any:
    """The model a run starts from: "random" builds the skills architecture with init seed ``seed``."""
    if base == RANDOM:
        return GPT(load_base("skills").config, seed=seed)
    return load_base(base)


def _train_result(model: Any, spec: RunSpec) -> dict[str, Any]:
    """Train ``model``'s trainable parameters on the spec's task and budget: the test metric (what is reported), the
    validation metric (what the learning rate is chosen on), and whether it diverged."""
    task = get_task(spec.task, **spec.task_kwargs)
    start = time.perf_counter()
    try:
        result = train(model, task, spec.train, desc=f"{spec.method} {spec.settings.get('d', '')}")
    except TrainingDiverged as err:  # a non-finite loss: a miss at this lr, not a failed sweep
        return {"metric": None, "validation_metric": None, "metric_name": task.metric, "diverged": True,
                "diverged_at": err.step, "final_loss": None, "seconds": time.perf_counter() - start,
                "trainable": model.num_parameters(trainable_only=True)}
    losses = [h["loss"] for h in result.history]
    metric = result.final_metrics[task.metric]
    validation = task.evaluate(model, split=SELECTED_ON)[task.metric]
    return {"metric": float(metric), "validation_metric": float(validation), "metric_name": task.metric,
            "diverged": False, "diverged_at": None,
            "final_loss": statistics.fmean(losses[-max(1, len(losses) // 20):]), "seconds": result.seconds,
            "trainable": result.trainable_parameters}


def run_one(job: Mapping[str, Any]) -> dict[str, Any]:
    """Run one job of the intrinsic-dimension sweeps in this process (the sweep's ``run_one``).

    {"run": a RunSpec}: the base ("skills", "random" or a model file) prepared by the run's method (the registry:
    "subspace" θ = θ0 + P z, "full", "lora") and trained;  {"pretrain": ...}: a pretraining run with snapshots.
    Everything is seeded by the run's seed.
    """
    if "pretrain" in job:
        return pretrain_with_snapshots(job["pretrain"])
    spec = RunSpec.from_json(job["run"])
    model = _base_model(spec.base, spec.train.seed)
    total = model.num_parameters()
    model = get_method(spec.method).prepare(model, spec.settings, seed=spec.train.seed)
    return {**_train_result(model, spec), "D": total}


# ------------------------------------------------------------------------------------------- the curves


def _job(s: Settings, method: str, base: str, seed: int, lr: float, settings: Mapping[str, Any] | None = None
         ) -> dict[str, Any]:
    """The sweep job of one training run: ``s``'s task and budget, warm-up ``default_warmup_steps``, no decay."""
    train_config = TrainConfig(steps=s.steps, batch_size=s.batch_size, lr=lr,
                               warmup_steps=default_warmup_steps(s.steps),
                               weight_decay=0.0, seed=seed)
    return {"run": RunSpec.make(s.task, base, method, train_config, settings).to_json()}


def _subspace_spec(s: Settings, curve: Curve, d: int, lr: float, seed: int) -> dict[str, Any]:
    return _job(s, "subspace", curve.base, seed, lr, {"d": d, "projection": curve.projection, "said": curve.said})


def _lora_spec(s: Settings, r: int, seed: int) -> dict[str, Any]:
    return _job(s, "lora", "skills", seed, s.lr_lora, {"r": r})


def _baseline_specs(s: Settings, base: str, seeds: int) -> list[dict[str, Any]]:
    return [_job(s, "full", base, seed, s.lr_full) for seed in range(seeds)]


def _baseline(ctx: Context, base: str, seeds: int) -> dict[str, Any]:
    """Full fine-tuning of ``base`` over ``seeds`` seeds: the mean metric is the baseline of d90."""
    results = [ctx.result(spec) for spec in _baseline_specs(ctx.settings, base, seeds)]
    per_seed = [effective_metric(r["metric"], r["diverged"]) for r in results]
    return {"metric": statistics.fmean(per_seed), "per_seed": per_seed, "lr": ctx.settings.lr_full,
            "D": results[0]["D"], "seconds": statistics.fmean(r["seconds"] for r in results)}


def _point(ctx: Context, curve: Curve, d: int) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """(specs still missing, the measured point at ``d`` once complete): lr chosen on seed 0, then the other seeds."""
    s = ctx.settings
    by_lr = {lr: ctx.result(_subspace_spec(s, curve, d, lr, 0)) for lr in s.lrs}
    missing = [_subspace_spec(s, curve, d, lr, 0) for lr, r in by_lr.items() if r is None]
    if missing:
        return missing, None
    metric_by_lr = {lr: effective_metric(r["metric"], r["diverged"]) for lr, r in by_lr.items()}
    validation_by_lr = {lr: effective_metric(r["validation_metric"], r["diverged"]) for lr, r in by_lr.items()}
    lr = choose_lr(validation_by_lr)  # chosen on the validation split; every reported metric is on test
    seed_specs = [_subspace_spec(s, curve, d, lr, seed) for seed in range(1, curve.seeds)]
    runs = [by_lr[lr]] + [ctx.result(spec) for spec in seed_specs]
    missing = [spec for spec, r in zip(seed_specs, runs[1:]) if r is None]
    if missing:
        return missing, None
    metrics = [effective_metric(r["metric"], r["diverged"]) for r in runs]
    finite = [m for m in metrics if math.isfinite(m)]
    return [], {"d": d, "lr": lr, "lr_selected_on": SELECTED_ON,
                "validation_by_lr": {str(k): v if math.isfinite(v) else None for k, v in validation_by_lr.items()},
                "metric_by_lr": {str(k): v if math.isfinite(v) else None for k, v in metric_by_lr.items()},
                "diverged_lrs": [k for k, r in by_lr.items() if r["diverged"]],
                "per_seed": [m if math.isfinite(m) else None for m in metrics],
                "mean": statistics.fmean(metrics) if len(finite) == len(metrics) else 0.0,
                "min": min(finite, default=0.0), "max": max(finite, default=0.0),
                "trainable": runs[0]["trainable"], "D": runs[0]["D"],
                "seconds": statistics.fmean(r["seconds"] for r in runs)}


def _walk(ctx: Context, curve: Curve, target: float) -> tuple[list[dict[str, Any]], dict[int, dict[str, Any]]]:
    """Replay the curve's search over the results so far: (specs to run next, the points measured)."""
    s = ctx.settings
    points: dict[int, dict[str, Any]] = {}
    dims = sorted(set(curve.fixed) | (set(curve.start) if curve.search else set()))
    while dims:
        missing: list[dict[str, Any]] = []
        for d in dims:
            need, point = _point(ctx, curve, d)
            missing += need
            if point is not None:
                points[d] = point
        if missing or not curve.search:
            return missing, points
        dims = next_dims({d: p["mean"] for d, p in points.items()}, target, curve.start, s.d_min, s.d_max, s.refine)
    return [], points


def _summary(curve: Curve, baseline: dict[str, Any], target: float | None, points: dict[int, dict[str, Any]],
             fraction: float) -> dict[str, Any]:
    """A measured curve: its points, baseline, target, d90 of the mean and per seed (median), as JSON data.

    ``target`` None: the baseline's metric was 0, so no d90 exists (the curve has no points).
    """
    if target is None:
        return {"name": curve.name, "base": curve.base, "projection": curve.projection, "said": curve.said,
                "seeds": curve.seeds, "baseline": baseline, "fraction": fraction, "target": None, "points": [],
                "d90": None, "d90_per_seed": [None] * curve.seeds, "d90_median": None, "d90_bounded": False,
                "searched": curve.search}
    ordered = [points[d] for d in sorted(points)]
    dims = [p["d"] for p in ordered]
    per_seed = [crossing(dims, [p["per_seed"][i] if p["per_seed"][i] is not None else -math.inf for p in ordered],
                         target) for i in range(curve.seeds)]
    d90 = crossing(dims, [p["mean"] for p in ordered], target)
    return {"name": curve.name, "base": curve.base, "projection": curve.projection, "said": curve.said,
            "seeds": curve.seeds, "baseline": baseline, "fraction": fraction, "target": target, "points": ordered,
            "d90": d90, "d90_per_seed": per_seed, "d90_median": median_d90(per_seed),
            "d90_bounded": d90 is not None and d90 == dims[0],  # True: only an upper bound (the first d already hit)
            "searched": curve.search}  # False: a fixed grid only, so "not reached" means above its largest d


def measure_curves(ctx: Context, curves: Sequence[Curve], desc: str = "intrinsic") -> dict[str, dict[str, Any]]:
    """Measure every curve: baselines first, then rounds of sweeps until each curve's search is done."""
    s = ctx.settings
    ctx.sweep([spec for c in curves for spec in _baseline_specs(s, c.base, c.seeds)], f"{desc}: baselines")
    baselines = {c.name: _baseline(ctx, c.base, c.seeds) for c in curves}
    # a baseline that learned nothing (metric 0) leaves no 90% to reach: such a curve is reported, not measured
    measured = [c for c in curves if baselines[c.name]["metric"] > 0]
    targets = {c.name: target_of(baselines[c.name]["metric"], s.fraction) for c in measured}
    while True:
        missing = [spec for c in measured for spec in _walk(ctx, c, targets[c.name])[0]]
        if not missing:
            break
        ctx.sweep(missing, f"{desc}: subspace runs")
    return {c.name: _summary(c, baselines[c.name], targets.get(c.name),
                             _walk(ctx, c, targets[c.name])[1] if c in measured else {}, s.fraction)
            for c in curves}


# ------------------------------------------------------------------------------------------ experiments


def _pretrained(s: Settings) -> Curve:
    """The skills model with Fastfood, measured also on the dense grid: shared by most experiments."""
    return Curve("pretrained", "skills", s.seeds, s.start, fixed=s.dense_dims)


def _write(ctx: Context, out: Path | None, name: str, payload: dict[str, Any]) -> dict[str, Any]:
    result = {"experiment": INTRINSIC_PREFIX + name, "settings": ctx.settings.as_dict(), "selected_on": SELECTED_ON,
              "reported_on": REPORTED_ON, **payload}
    if out is not None:
        write_result(Path(out) / intrinsic_file(name), result)
    return result


def projections(ctx: Context, out: Path | None = None) -> dict[str, Any]:
    """Metric against d for the Fastfood, sparse and dense projections on the skills model (dense where P fits)."""
    s = ctx.settings
    D = _base_model("skills", 0).num_parameters()
    dense = tuple(d for d in s.dense_dims if D * d * 4 <= DENSE_MAX_BYTES)  # float32 P, as DenseProjection stores it
    curves = [replace(_pretrained(s), name="fastfood"),
              Curve("sparse", "skills", s.seeds, s.start, projection="sparse", fixed=s.dense_dims, search=False),
              Curve("dense", "skills", s.seeds, s.start, projection="dense", fixed=dense, search=False)]
    return _write(ctx, out, "projections", {"curves": measure_curves(ctx, curves, "projections")})


def pretrained_vs_random(ctx: Context, out: Path | None = None) -> dict[str, Any]:
    """d90 of the skills model against the same architecture from random initialisation (Fastfood)."""
    s = ctx.settings
    curves = measure_curves(ctx, [_pretrained(s), Curve(RANDOM, RANDOM, s.random_seeds, s.start_random)],
                            "pretrained vs random")
    d90s = [curves[n]["d90"] for n in ("pretrained", RANDOM)]
    ratio = d90s[1] / d90s[0] if None not in d90s else None
    return _write(ctx, out, "pretrained-vs-random", {"curves": curves, "random_over_pretrained": ratio})


def _pretrain_spec(runs: Path, n_embd: int, steps: int, snapshots: Sequence[int],
                   compare_shipped: bool) -> dict[str, Any]:
    """Pretraining with the skills recipe's settings (task, lr, batch, warm-up, weight decay, seed) at another
    width or length; snapshots cached in ``runs/pretrain/...``."""
    r = RECIPES["skills"]
    block = max(get_task(r.task).block_size, MODEL_SIZES[r.size]["block_size"])
    folder = runs.resolve() / "pretrain" / f"{r.task}-{r.size}-n_embd{n_embd}-{steps}steps"
    return {"pretrain": {"task": r.task, "size": r.size, "n_embd": n_embd, "block_size": block, "steps": steps,
                         "lr": r.lr, "batch_size": r.batch_size,
                         "warmup": min(r.warmup_steps, default_warmup_steps(steps)),
                         "weight_decay": 0.1, "seed": r.seed, "snapshots": sorted(set(snapshots) | {steps}),
                         "dir": str(folder), "compare_shipped": compare_shipped}}


def _snapshots_spec(ctx: Context) -> dict[str, Any]:
    steps = max(ctx.settings.snapshots)
    return _pretrain_spec(ctx.runs, 64, steps, ctx.settings.snapshots, compare_shipped=steps == RECIPES["skills"].steps)


def _width_specs(ctx: Context) -> list[dict[str, Any]]:
    s = ctx.settings
    return [_pretrain_spec(ctx.runs, w, s.width_steps, (), compare_shipped=False) for w in s.widths]


def along_pretraining(ctx: Context, out: Path | None = None) -> dict[str, Any]:
    """d90 of the skills model's checkpoints along its pretraining (the recipe rerun, saving snapshots)."""
    s = ctx.settings
    recipe_steps = RECIPES["skills"].steps
    run = ctx.sweep([_snapshots_spec(ctx)], "pretraining snapshots")[0]["result"]
    curves = []
    for step, start in zip(sorted(s.snapshots), s.snapshot_starts, strict=True):
        if step == recipe_steps and run["equals_shipped"]:  # the shipped model itself: share its runs
            curves.append(replace(_pretrained(s), name=f"step {step}"))
        else:
            curves.append(Curve(f"step {step}", run["files"][str(step)], s.seeds, start))
    measured = measure_curves(ctx, curves, "along pretraining")
    rows = [{"step": step, "pretrain_metric": run["metrics"][str(step)], **_d90_fields(measured[f"step {step}"])}
            for step in sorted(s.snapshots)]
    return _write(ctx, out, "pretraining", {"curves": measured, "rows": rows, "equals_shipped": run["equals_shipped"]})


def _d90_fields(curve: dict[str, Any]) -> dict[str, Any]:
    return {k: curve[k]
            for k in ("d90", "d90_median", "d90_per_seed", "target")} | {"baseline": curve["baseline"]["metric"]}


def width(ctx: Context, out: Path | None = None) -> dict[str, Any]:
    """d90 against model width: GPTs of n_embd in ``widths`` pretrained with the skills recipe for ``width_steps``."""
    s = ctx.settings
    runs = [row["result"] for row in ctx.sweep(_width_specs(ctx), "pretraining widths")]
    curves = [Curve(f"n_embd {w}", run["files"][str(s.width_steps)], s.seeds, s.start)
              for w, run in zip(s.widths, runs)]
    measured = measure_curves(ctx, curves, "widths")
    rows = [{"n_embd": w, "parameters": run["parameters"], "pretrain_metric": run["metrics"][str(s.width_steps)],
             **_d90_fields(measured[f"n_embd {w}"])} for w, run in zip(s.widths, runs)]
    return _write(ctx, out, "width", {"curves": measured, "rows": rows})


def said(ctx: Context, out: Path | None = None) -> dict[str, Any]:
    """SAID (one learned scale per parameter tensor) against the plain subspace, on the skills model."""
    s = ctx.settings
    curves = [_pretrained(s), Curve("SAID", "skills", s.seeds, s.start, said=True)]
    return _write(ctx, out, "said", {"curves": measure_curves(ctx, curves, "SAID")})


def budget(ctx: Context, out: Path | None = None) -> dict[str, Any]:
    """Metric against trainable parameters: full fine-tuning, LoRA at every rank, subspace at every d (same task)."""
    s = ctx.settings
    lora_specs = [_lora_spec(s, r, seed) for r in s.ranks for seed in range(s.seeds)]
    ctx.sweep(lora_specs, "LoRA ranks")
    curve = measure_curves(ctx, [_pretrained(s)], "budget")["pretrained"]
    lora = []
    for r in s.ranks:
        runs = [ctx.result(_lora_spec(s, r, seed)) for seed in range(s.seeds)]
        metrics = [effective_metric(x["metric"], x["diverged"]) for x in runs]
        lora.append({"rank": r, "trainable": runs[0]["trainable"], "per_seed": metrics,
                     "mean": statistics.fmean(metrics),
                     "min": min(metrics), "max": max(metrics)})
    return _write(ctx, out, "budget", {"subspace": curve, "lora": lora, "full": curve["baseline"],
                                            "target": curve["target"]})


def toy(ctx: Context, out: Path | None = None) -> dict[str, Any]:
    """Li et al.'s toy problem (D = 1000, 10 independent linear constraints): its intrinsic dimension is 10."""
    return _write(ctx, out, "toy", {"toy": {p: toy_summary(max_d=ctx.settings.toy_max_d, projection=p)
                                                 for p in ("dense", "sparse", "fastfood")}})


Experiment = Callable[[Context, "Path | None"], dict[str, Any]]
EXPERIMENTS: dict[str, Experiment] = {  # in the order they run: the headline result first
    "pretrained-vs-random": pretrained_vs_random, "budget": budget, "pretraining": along_pretraining,
    "projections": projections, "said": said, "width": width, "toy": toy,
}


def run_intrinsic(only: Sequence[str] | None = None, fast: bool = False, out: str | Path | None = None,
                  runs: str | Path | None = None, jobs: int = 1, executor: Any = None,
                  settings: Settings | None = None) -> dict[str, dict[str, Any]]:
    """Run the named experiments (default: all of ``EXPERIMENTS``) and write ``out/intrinsic-<name>.json``.

    Runs are cached in ``runs/runs`` (default ``runs/intrinsic`` or ``runs/intrinsic-fast``: a rerun resumes),
    pretraining snapshots in ``runs/pretrain``; ``out`` defaults to ``runs`` (only ``rerun_figures`` writes into
    figures/).  Both are checked before the first run.  ``settings`` defaults to FAST or FULL.
    """
    names = list(EXPERIMENTS) if not only else list(only)
    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown:
        raise ValueError(f"unknown intrinsic experiment(s) {unknown}; expected some of {list(EXPERIMENTS)}")
    cache = Path(runs) if runs is not None else Path("runs") / ("intrinsic-fast" if fast else "intrinsic")
    results = cache if out is None else Path(out)
    check_writable(results, "results folder")
    check_writable(cache, "run cache")
    ctx = Context(settings or (FAST if fast else FULL), cache, jobs=jobs, executor=executor)
    pretraining = (([_snapshots_spec(ctx)] if "pretraining" in names else [])
                   + (_width_specs(ctx) if "width" in names else []))
    if pretraining:  # all pretraining runs side by side, before the experiments that need them
        ctx.sweep(pretraining, "pretraining")
    return {name: EXPERIMENTS[name](ctx, results) for name in names}
