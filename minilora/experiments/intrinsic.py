"""Intrinsic-dimension experiments: what ``minilora intrinsic`` runs (Li et al. 2018; Aghajanyan et al. 2020).

Every number comes from independent runs (specs) run by the one sweep runner (``experiments/sweep.py``):

    subspace  train only z ∈ R^d in θ = θ0 + P z (``SubspaceModel``), lr from a grid per d
    full      full fine-tuning of the same base: the baseline of d90 (same task, steps, batch, schedule), lr from a
              grid of the same size
    lora      LoRA at rank r (the parameter-budget chart), lr from a grid of the same size

Every choice is made the same way, on the validation split: seed 0 is trained at every learning rate of the
method's grid, the lr with the best *validation* metric is kept (``d90.choose_lr``; a diverged run is a miss), and
the other seeds run at that lr; every reported metric is on the test split.  A *curve* is one base model +
projection measured over d; d grows by the search of ``d90.next_dims`` until d90 is bracketed.

The bases are the zoo's models, never pretrained here: the shipped skills model, its run's own snapshots
(``pretrained("skills", step=S)``), the width family (``n_embd=``) and the pretraining-seed replicas
(``pretrain_seed=``), whose spread of d90 is the *noise floor* every trend is judged against (``d90.trend``).
The experiments below each combine a few curves and write one JSON file (``intrinsic-<name>.json``) that
``plots/intrinsic.py`` draws.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from minilora.experiments.d90 import (
    FRACTION,
    choose_lr,
    crossing,
    effective_metric,
    median_d90,
    next_dims,
    noise_floor,
    target_of,
    trend,
)
from minilora.experiments.folders import check_writable
from minilora.experiments.intrinsic_run import (
    RANDOM,
    SELECTED_ON,
    SHIPPED,
    base_model,
    pretrain_metric,
    run_one,
    zoo_base,
)
from minilora.experiments.intrinsic_table import format_table
from minilora.experiments.results import INTRINSIC_PREFIX, intrinsic_file, write_result
from minilora.experiments.spec import RunSpec
from minilora.experiments.sweep import run_sweep, spec_key
from minilora.experiments.toy_intrinsic import toy_summary
from minilora.subspace import DENSE_MAX_BYTES
from minilora.train import TrainConfig, default_warmup_steps

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
    "noise_floor_experiment",
    "pretrained_vs_random",
    "projections",
    "run_intrinsic",
    "run_one",
    "said",
    "toy",
    "width",
    "zoo_base",
]

REPORTED_ON = "test"  # the split every reported metric is measured on


@dataclass(frozen=True)
class Settings:
    """The budget and grids of the intrinsic-dimension experiments (FULL and FAST below).

    Every method gets a learning-rate grid of the same size (``lrs`` for z, ``lrs_full``, ``lrs_lora``), each chosen
    on the validation split.  ``snapshots``, ``widths`` and ``pretrain_seeds`` name zoo models (see
    ``models/zoo.py``): steps of the skills run, n_embd of the width family, seeds of the replicas.
    """

    task: str = "reverse-shift"
    steps: int = 300  # full fine-tuning of every pretrained zoo model reaches test accuracy 1.0 in 300 steps
    batch_size: int = 64
    lrs: tuple[float, ...] = (0.01, 0.03, 0.1)  # z's learning-rate grid, best per d (large d needs the small ones)
    lrs_full: tuple[float, ...] = (1e-3, 3e-3, 1e-2)  # full fine-tuning's grid, best per base
    lrs_lora: tuple[float, ...] = (3e-3, 1e-2, 3e-2)  # LoRA's grid, best per rank
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
    snapshots: tuple[int, ...] = (250, 500, 1000, 2000, 4000, 9000)  # steps of the skills run (its zoo snapshots)
    snapshot_starts: tuple[tuple[int, ...], ...] = ((8192, 16384), (4096, 8192), (2048, 4096), (1024, 2048),
                                                    (1024, 2048), (512, 1024))
    widths: tuple[int, ...] = (32, 64, 128)  # n_embd of the zoo's width family (each pretrained to criterion)
    pretrain_seeds: tuple[int, ...] = (0, 1, 2)  # the zoo's replicas of the skills recipe: the noise floor
    toy_max_d: int = 20

    def __post_init__(self) -> None:
        sizes = {"lrs": len(self.lrs), "lrs_full": len(self.lrs_full), "lrs_lora": len(self.lrs_lora)}
        if len(set(sizes.values())) != 1:
            raise ValueError(f"every method's learning-rate grid must have the same size (a fair choice), got {sizes}")
        if len(self.snapshots) != len(self.snapshot_starts):
            raise ValueError(f"one start per snapshot: {len(self.snapshots)} snapshots, "
                             f"{len(self.snapshot_starts)} snapshot_starts")

    def as_dict(self) -> dict[str, Any]:
        """The settings as JSON data (stored in every result file)."""
        return asdict(self)


FULL = Settings()
# a quick look (≈ 2-3 minutes on 2 cores): one seed, one lr per method, fewer steps and models, no refinement
FAST = Settings(steps=100, lrs=(0.03,), lrs_full=(3e-3,), lrs_lora=(1e-2,), seeds=1, random_seeds=1, refine=0,
                ranks=(1, 4), dense_dims=(256,), start=(1024, 2048), start_random=(8192, 16384),
                snapshots=(1000, 9000), snapshot_starts=((2048, 4096), (1024, 2048)), widths=(32, 64),
                pretrain_seeds=(0, 1), toy_max_d=12)


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


# ------------------------------------------------------------------------------------------- the curves


def _job(s: Settings, method: str, base: str, seed: int, lr: float, settings: Mapping[str, Any] | None = None
         ) -> dict[str, Any]:
    """The sweep job of one training run: ``s``'s task and budget, warm-up ``default_warmup_steps``, no decay."""
    train_config = TrainConfig(steps=s.steps, batch_size=s.batch_size, lr=lr,
                               warmup_steps=default_warmup_steps(s.steps),
                               weight_decay=0.0, seed=seed)
    return {"run": RunSpec.make(s.task, base, method, train_config, settings).to_json()}


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _select(ctx: Context, job: Callable[[float, int], dict[str, Any]], lrs: Sequence[float], seeds: int
            ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The one selection rule of every method: seed 0 at every lr of ``lrs``, the lr with the best *validation*
    metric kept, then seeds 1..seeds-1 at that lr.  ``job(lr, seed)`` makes the run's spec.

    Returns (specs still missing, None) until every run is done, then ([], the choice): lr, the validation and test
    metrics of every lr on seed 0, the test metric of every seed at the chosen lr (−inf → None: diverged), its mean
    (0 when a seed diverged), min and max, and the chosen runs' results.
    """
    by_lr = {lr: ctx.result(job(lr, 0)) for lr in lrs}
    missing = [job(lr, 0) for lr, r in by_lr.items() if r is None]
    if missing:
        return missing, None
    validation_by_lr = {lr: effective_metric(r["validation_metric"], r["diverged"]) for lr, r in by_lr.items()}
    lr = choose_lr(validation_by_lr)  # chosen on the validation split; every reported metric is on test
    seed_jobs = [job(lr, seed) for seed in range(1, seeds)]
    runs = [by_lr[lr]] + [ctx.result(spec) for spec in seed_jobs]
    missing = [spec for spec, r in zip(seed_jobs, runs[1:]) if r is None]
    if missing:
        return missing, None
    metrics = [effective_metric(r["metric"], r["diverged"]) for r in runs]
    finite = [m for m in metrics if math.isfinite(m)]
    return [], {"lr": lr, "lr_selected_on": SELECTED_ON,
                "validation_by_lr": {str(k): _finite(v) for k, v in validation_by_lr.items()},
                "metric_by_lr": {str(k): _finite(effective_metric(r["metric"], r["diverged"]))
                                 for k, r in by_lr.items()},
                "diverged_lrs": [k for k, r in by_lr.items() if r["diverged"]],
                "per_seed": [_finite(m) for m in metrics],
                "mean": statistics.fmean(metrics) if len(finite) == len(metrics) else 0.0,
                "min": min(finite, default=0.0), "max": max(finite, default=0.0),
                "stdev": statistics.stdev(finite) if len(finite) > 1 else 0.0, "runs": runs}


def _subspace_job(s: Settings, curve: Curve, d: int) -> Callable[[float, int], dict[str, Any]]:
    return lambda lr, seed: _job(s, "subspace", curve.base, seed, lr,
                                 {"d": d, "projection": curve.projection, "said": curve.said})


def _full_job(s: Settings, base: str) -> Callable[[float, int], dict[str, Any]]:
    return lambda lr, seed: _job(s, "full", base, seed, lr)


def _lora_job(s: Settings, r: int) -> Callable[[float, int], dict[str, Any]]:
    return lambda lr, seed: _job(s, "lora", SHIPPED, seed, lr, {"r": r})


def _summarise(choice: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A choice as JSON data: without its raw runs, with their size and mean time."""
    runs = choice["runs"]
    return {**extra, **{k: v for k, v in choice.items() if k != "runs"}, "trainable": runs[0]["trainable"],
            "D": runs[0]["D"], "seconds": statistics.fmean(r["seconds"] for r in runs)}


def _baseline(ctx: Context, curve: Curve) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Full fine-tuning of the curve's base, lr chosen on validation: the mean test metric is the baseline of d90
    (``metric``), with its spread over seeds (``per_seed``, ``min``, ``max``, ``stdev``)."""
    missing, choice = _select(ctx, _full_job(ctx.settings, curve.base), ctx.settings.lrs_full, curve.seeds)
    if choice is None:
        return missing, None
    return [], _summarise(choice, metric=choice["mean"])


def _point(ctx: Context, curve: Curve, d: int) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """(specs still missing, the measured point at ``d`` once complete): lr chosen on seed 0, then the other seeds."""
    missing, choice = _select(ctx, _subspace_job(ctx.settings, curve, d), ctx.settings.lrs, curve.seeds)
    if choice is None:
        return missing, None
    return [], _summarise(choice, d=d)


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
    """Measure every curve: baselines first (lr chosen on validation), then rounds of sweeps until each curve's
    search is done."""
    s = ctx.settings
    while True:
        missing = [spec for c in curves for spec in _baseline(ctx, c)[0]]
        if not missing:
            break
        ctx.sweep(missing, f"{desc}: baselines")
    baselines = {c.name: _baseline(ctx, c)[1] for c in curves}
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
    return Curve("pretrained", SHIPPED, s.seeds, s.start, fixed=s.dense_dims)


def _replica(s: Settings, seed: int) -> Curve:
    """The pretraining-seed replica ``seed`` of the skills recipe (seed 0: the shipped model, sharing its runs)."""
    return replace(_pretrained(s), name=f"pretrain_seed {seed}", base=zoo_base(pretrain_seed=seed))


def _write(ctx: Context, out: Path | None, name: str, payload: dict[str, Any]) -> dict[str, Any]:
    result = {"experiment": INTRINSIC_PREFIX + name, "settings": ctx.settings.as_dict(), "selected_on": SELECTED_ON,
              "reported_on": REPORTED_ON, **payload}
    if out is not None:
        write_result(Path(out) / intrinsic_file(name), result)
    return result


def _replicas(s: Settings) -> list[Curve]:
    """The curves of the pretraining-seed replicas of the skills recipe (``s.pretrain_seeds``)."""
    return [_replica(s, seed) for seed in s.pretrain_seeds]


def _floor(s: Settings, replicas: Sequence[Curve], measured: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """The noise floor (``d90.noise_floor``) of the replicas' seed-mean d90, with the seeds it comes from."""
    d90s = {str(seed): measured[c.name]["d90"] for seed, c in zip(s.pretrain_seeds, replicas, strict=True)}
    return {**noise_floor(d90s), "pretrain_seeds": list(s.pretrain_seeds)}


def _with_floor(ctx: Context, curves: Sequence[Curve], desc: str
                ) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Measure ``curves`` together with the pretraining-seed replicas (shared, cached runs): (the curves, the noise
    floor: ``d90.noise_floor`` of the replicas' seed-mean d90)."""
    replicas = _replicas(ctx.settings)
    measured = measure_curves(ctx, [*curves, *replicas], desc)
    return {c.name: measured[c.name] for c in curves}, _floor(ctx.settings, replicas, measured)


def _d90_fields(curve: dict[str, Any]) -> dict[str, Any]:
    return {k: curve[k] for k in ("d90", "d90_median", "d90_per_seed", "target")} | {
        "baseline": curve["baseline"]["metric"], "parameters": curve["baseline"]["D"]}


def noise_floor_experiment(ctx: Context, out: Path | None = None) -> dict[str, Any]:
    """d90 of each pretraining-seed replica of the skills recipe: how much d90 moves between two pretraining runs of
    one recipe (the noise floor = the largest d90 / the smallest)."""
    s = ctx.settings
    replicas = _replicas(s)
    measured = measure_curves(ctx, replicas, "noise floor")
    floor = _floor(s, replicas, measured)
    rows = [{"pretrain_seed": seed, "base": c.base, "pretrain_metric": pretrain_metric(c.base),
             **_d90_fields(measured[c.name])}
            for seed, c in zip(s.pretrain_seeds, replicas)]
    return _write(ctx, out, "noise-floor", {"curves": measured, "rows": rows, "noise_floor": floor})


def pretrained_vs_random(ctx: Context, out: Path | None = None) -> dict[str, Any]:
    """d90 of the skills model against the same architecture from random initialisation (Fastfood)."""
    s = ctx.settings
    curves, floor = _with_floor(ctx, [_pretrained(s), Curve(RANDOM, RANDOM, s.random_seeds, s.start_random)],
                                "pretrained vs random")
    d90s = [curves[n]["d90"] for n in (RANDOM, "pretrained")]
    ratio = d90s[0] / d90s[1] if None not in d90s else None
    return _write(ctx, out, "pretrained-vs-random", {
        "curves": curves, "random_over_pretrained": ratio, "noise_floor": floor,
        "trend": trend([RANDOM, "pretrained"], d90s, floor["ratio"])})


def along_pretraining(ctx: Context, out: Path | None = None) -> dict[str, Any]:
    """d90 of the skills model's own snapshots along its pretraining (the zoo's ``pretrained("skills", step=S)``)."""
    s = ctx.settings
    steps = sorted(s.snapshots)
    starts = dict(zip(s.snapshots, s.snapshot_starts, strict=True))
    curves = [Curve(f"step {step}", zoo_base(step=step), s.seeds, starts[step]) for step in steps]
    return _zoo_trend(ctx, out, "pretraining", "along pretraining", "step", steps, curves)


def width(ctx: Context, out: Path | None = None) -> dict[str, Any]:
    """d90 against model width: the zoo's width family, each pretrained to the skills model's criterion."""
    s = ctx.settings
    widths = sorted(s.widths)
    curves = [replace(_pretrained(s), name=f"n_embd {w}", base=zoo_base(n_embd=w), fixed=()) for w in widths]
    return _zoo_trend(ctx, out, "width", "widths", "n_embd", widths, curves)


def _zoo_trend(ctx: Context, out: Path | None, experiment: str, desc: str, key: str, values: Sequence[int],
               curves: list[Curve]) -> dict[str, Any]:
    """One trend over zoo models (``values`` of ``key``, one curve each, in order), measured with the noise floor:
    the shipped model's curve is the pretrained one (so its runs are shared), and the trend runs first → last."""
    curves = [replace(_pretrained(ctx.settings), name=c.name) if c.base == SHIPPED else c for c in curves]
    measured, floor = _with_floor(ctx, curves, desc)
    rows = [{key: v, "base": c.base, "pretrain_metric": pretrain_metric(c.base), **_d90_fields(measured[c.name])}
            for v, c in zip(values, curves, strict=True)]
    return _write(ctx, out, experiment, {
        "curves": measured, "rows": rows, "noise_floor": floor,
        "trend": trend([c.name for c in curves], [r["d90"] for r in rows], floor["ratio"])})


def projections(ctx: Context, out: Path | None = None) -> dict[str, Any]:
    """Metric against d for the Fastfood, sparse and dense projections on the skills model (dense where P fits)."""
    s = ctx.settings
    D = base_model(SHIPPED, 0).num_parameters()
    dense = tuple(d for d in s.dense_dims if D * d * 4 <= DENSE_MAX_BYTES)  # float32 P, as DenseProjection stores it
    curves = [replace(_pretrained(s), name="fastfood"),
              Curve("sparse", SHIPPED, s.seeds, s.start, projection="sparse", fixed=s.dense_dims, search=False),
              Curve("dense", SHIPPED, s.seeds, s.start, projection="dense", fixed=dense, search=False)]
    return _write(ctx, out, "projections", {"curves": measure_curves(ctx, curves, "projections")})


def said(ctx: Context, out: Path | None = None) -> dict[str, Any]:
    """SAID (one learned scale per parameter tensor) against the plain subspace, on the skills model."""
    s = ctx.settings
    curves = [_pretrained(s), Curve("SAID", SHIPPED, s.seeds, s.start, said=True)]
    return _write(ctx, out, "said", {"curves": measure_curves(ctx, curves, "SAID")})


def budget(ctx: Context, out: Path | None = None) -> dict[str, Any]:
    """Metric against trainable parameters: full fine-tuning, LoRA at every rank, subspace at every d (same task);
    LoRA's lr chosen per rank on validation from a grid of the same size as the others'."""
    s = ctx.settings
    while True:
        missing = [spec for r in s.ranks for spec in _select(ctx, _lora_job(s, r), s.lrs_lora, s.seeds)[0]]
        if not missing:
            break
        ctx.sweep(missing, "LoRA ranks")
    curve = measure_curves(ctx, [_pretrained(s)], "budget")["pretrained"]
    lora = [_summarise(_select(ctx, _lora_job(s, r), s.lrs_lora, s.seeds)[1], rank=r) for r in s.ranks]
    return _write(ctx, out, "budget", {"subspace": curve, "lora": lora, "full": curve["baseline"],
                                       "target": curve["target"]})


def toy(ctx: Context, out: Path | None = None) -> dict[str, Any]:
    """Li et al.'s toy problem (D = 1000, 10 independent linear constraints): its intrinsic dimension is 10."""
    return _write(ctx, out, "toy", {"toy": {p: toy_summary(max_d=ctx.settings.toy_max_d, projection=p)
                                            for p in ("dense", "sparse", "fastfood")}})


Experiment = Callable[[Context, "Path | None"], dict[str, Any]]
EXPERIMENTS: dict[str, Experiment] = {  # in the order they run: the headline result first
    "pretrained-vs-random": pretrained_vs_random, "noise-floor": noise_floor_experiment, "budget": budget,
    "pretraining": along_pretraining, "projections": projections, "said": said, "width": width, "toy": toy,
}


def run_intrinsic(only: Sequence[str] | None = None, fast: bool = False, out: str | Path | None = None,
                  runs: str | Path | None = None, jobs: int = 1, executor: Any = None,
                  settings: Settings | None = None) -> dict[str, dict[str, Any]]:
    """Run the named experiments (default: all of ``EXPERIMENTS``) and write ``out/intrinsic-<name>.json``.

    Runs are cached in ``runs/runs`` (default ``runs/intrinsic`` or ``runs/intrinsic-fast``: a rerun resumes);
    ``out`` defaults to ``runs`` (only ``rerun_figures`` writes into figures/).  Both are checked before the first
    run.  ``settings`` defaults to FAST or FULL.  Nothing is pretrained: every base is a zoo model.
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
    return {name: EXPERIMENTS[name](ctx, results) for name in names}
