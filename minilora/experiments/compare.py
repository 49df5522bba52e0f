"""Full fine-tuning, LoRA and the other methods of the registry side by side: what ``minilora compare`` prints.

Every run starts from a fresh copy of the same pretrained model and gets the same budget: the
same steps, batch size, warm-up + cosine schedule and seed (so the same batches in the same
order); only the learning rate is each method's own.  Full fine-tuning and LoRA always run; ``methods`` adds
any other trainable method of the registry (``experiments.methods``).  The LoRA family (the methods with LoRA's
rank r and scaling lora_alpha: dora, pissa, olora, lora-fa, lora-plus, qlora) runs once per rank, like LoRA, on
the same target modules; the others (vera, adapter, prefix) run once with their own settings (VeRA on the same
target modules).  Per run it reports

    trainable parameters   full: every weight;  LoRA: Σ r(d + k) over the adapted d×k matrices;  the others: what
                           their registry entry makes trainable (LoRA-FA: Σ r·d, B only; DoRA: + d magnitudes each)
    task metric            the task's headline metric on its held-out set (``task.metric``)
    step time              median wall time of the run's training steps
    peak training memory   tracemalloc peak over a few extra, untimed steps (CPU only)
    optimizer state        AdamW's two moments per trainable weight: 2 · 4 bytes · |Θ| in float32
    file size              what the run saves: full: model.safetensors (every weight);  the LoRA family and VeRA:
                           PEFT's adapter_model.safetensors (PiSSA/OLoRA converted to a plain LoRA of rank 2r on the
                           original base, QLoRA's for the 4-bit base, VeRA's with its shared A, B);  adapter,
                           prefix: alternative_model.safetensors (their own trained weights)
    inference latency      every method but full: the base model's forward pass vs. the trained model as it trains
                           ("unmerged": W0 x + s·B A x, or the adapters / prefixes in the forward) and, where merging
                           exists, merged (W = W0 + ΔW: LoRA family and VeRA; not on QLoRA's 4-bit base: None)

Results are written as JSON (``compare.json``) next to the saved weights, so a table or figure
can be redrawn without retraining.  Each finished run also leaves ``row.json`` (its row and the settings it
ran with) in its folder, so an interrupted compare resumes (``resume=True``): finished runs are skipped.
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import os
import statistics
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from minilora.backend import to_device
from minilora.data import get_task
from minilora.data.registry import Task
from minilora.engine.tensor import Tensor
from minilora.experiments.folders import (
    LOCK_FILE,
    RUN_FILES,
    FolderLock,
    check_writable,
)
from minilora.experiments.measure import forward_ms, median_ms, peak_traced_bytes
from minilora.experiments.methods import DEFAULT_TARGETS, get_method
from minilora.experiments.results import (
    COMPARE_FILE,
    FULL_VS_LORA_PNG,
    ROW_FILE,
    read_result,
    write_result,
)
from minilora.experiments.runs import FINETUNE_METHODS, load_base, save_weights
from minilora.experiments.spec import RunSpec
from minilora.experiments.sweep import SweepInterrupted, run_sweep
from minilora.io import clean_temporaries
from minilora.lora import (
    LoraConfig,
    count_parameters,
    find_targets,
)
from minilora.lora.layer import MergeableLinear
from minilora.models.gpt import GPT
from minilora.train import (
    TrainConfig,
    default_warmup_steps,
    make_optimizer,
    train,
    train_step,
)

__all__ = ["COMPARE_FILE", "DEFAULT_LR", "compare", "compare_methods", "format_seed_summary", "format_table",
           "parse_ranks", "parse_seeds", "per_rank", "why_not_compared"]

REPORTED_ON = "test"  # compare chooses nothing: every metric is the test split's
DEFAULT_LR = {"full": 3e-3, "lora": 1e-2}


def per_rank(method: str) -> bool:
    """Whether ``method`` runs once per rank of ``ranks``: the LoRA family, the methods whose settings have LoRA's
    rank r and scaling lora_alpha (LoRA, DoRA, PiSSA, OLoRA, LoRA-FA, LoRA+, QLoRA; not VeRA, whose r is the rank
    of one random pair shared by all layers)."""
    settings = get_method(method).settings
    return "r" in settings and "lora_alpha" in settings


def why_not_compared(method: str) -> str | None:
    """None when ``methods`` may name ``method``; else why not, in a phrase (unknown, always run, or trains no
    weights that compare can save)."""
    if method in ("full", "lora"):
        return f"{method!r} is not one compare adds: it always runs"
    if method == "subspace":
        return ("'subspace' is not one compare adds: its z in θ = θ0 + P z is measured by `minilora intrinsic`; "
                "use that command")
    if method not in FINETUNE_METHODS:
        return f"{method!r} is not one compare adds; expected some of {', '.join(compare_methods())}"
    return None


def compare_methods() -> list[str]:
    """The methods ``methods`` may add, in the registry's order: every one that trains and saves weights, but full
    and LoRA (which always run)."""
    return [m for m in FINETUNE_METHODS if m not in ("full", "lora")]


def parse_ranks(text: str) -> list[int]:
    """"1,2,4,8" → [1, 2, 4, 8]; a ValueError names any entry that is not a positive integer."""
    ranks = []
    for part in (p.strip() for p in text.split(",")):
        if not part.isdigit() or int(part) < 1:
            raise ValueError(f"--ranks: {part!r} is not a positive integer; expected "
                             "comma-separated ranks like 1,2,4,8")
        ranks.append(int(part))
    return ranks


def parse_seeds(text: str) -> list[int]:
    """"0,1,2" → [0, 1, 2]; a ValueError names any entry that is not a non-negative integer, or a repeated one."""
    seeds = []
    for part in (p.strip() for p in text.split(",")):
        if not part.isdigit():
            raise ValueError(f"--seeds: {part!r} is not a non-negative integer; expected "
                             "comma-separated seeds like 0,1,2")
        seeds.append(int(part))
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds: {text!r} repeats a seed; expected distinct seeds like 0,1,2")
    return seeds


def _fresh_model(base: str | GPT, device: str | None) -> GPT:
    """A new GPT with the base weights: loaded from its name or path, or copied from a GPT (never shared)."""
    if isinstance(base, str):
        return load_base(base, device=device)
    model = GPT(base.config, device=device or base.device)
    model.load_state_dict(base.state_dict())
    return model


def _prepare_folder(out: Path, resume: bool, overwrite: bool) -> None:
    """Check the output folder before any run: writable, and holding another compare only when resuming it
    (``resume``) or replacing it (``overwrite`` deletes compare's own files, never anything else)."""
    methods = compare_methods()  # the folders of ``methods`` runs: "dora-r4", "vera", "vera-seed1", ...
    if resume and overwrite:
        raise ValueError("compare: resume and overwrite exclude each other")
    clean_temporaries(out)
    present = sorted(p for p in out.iterdir() if p.name != LOCK_FILE)
    if resume or not present:
        return
    ours = [p for p in present if p.name in (COMPARE_FILE, FULL_VS_LORA_PNG) or (
        p.is_dir() and (p.name in ("full", *methods)
                        or p.name.startswith(("full-seed", "lora-r", *(f"{m}-{tail}" for m in methods
                                                                       for tail in ("seed", "r")))))
        and all(f.name in (*RUN_FILES, ROW_FILE) for f in p.iterdir()))]
    foreign = [p.name for p in present if p not in ours]
    if foreign:
        raise ValueError(f"{out} is not empty and holds files compare does not write ({', '.join(foreign[:3])}); "
                         f"choose a new or empty folder")
    if not overwrite:
        raise ValueError(f"{out} already holds a compare run; pass --resume to finish it (finished runs are "
                         f"skipped), --overwrite to start again, or choose another --out")
    for p in ours:
        if p.is_dir():
            for f in p.iterdir():
                f.unlink()
            p.rmdir()
        else:
            p.unlink()


def _finished_row(folder: Path, spec: dict[str, Any]) -> dict[str, Any] | None:
    """The row a finished run left in ``folder`` (None when it has not finished); a run made with another spec
    is a ValueError naming the first setting that differs."""
    path = folder / ROW_FILE
    if not path.is_file():
        return None
    saved = read_result(path, require=("spec", "row"))
    flat_saved, flat_wanted = _flat(saved["spec"]), _flat(spec)
    for key in flat_wanted:
        if flat_saved.get(key) != flat_wanted[key]:
            raise ValueError(f"cannot resume: {folder} was run with {key} = {flat_saved.get(key)!r}, not "
                             f"{flat_wanted[key]!r}; compare again with the first run's settings, or --overwrite")
    return saved["row"]


def _flat(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested JSON as one level: {"train": {"lr": 1}} → {"train.lr": 1} (to name the setting that differs)."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and value:
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _training_memory(model: GPT, task: Task, config: TrainConfig, steps: int) -> tuple[int | None, int]:
    """(peak bytes allocated by ``steps`` training steps above the loaded model, AdamW state bytes).

    The steps are train.py's: forward, backward, clipping, AdamW on every parameter (frozen ones get
    no gradient and so no state).  The peak is None off the CPU, where tracemalloc cannot see arrays.
    """
    optimizer = make_optimizer(model, config)
    rng = np.random.default_rng(config.seed)
    batches = [task.sample_batch(rng, config.batch_size) for _ in range(steps)]  # data is not training memory

    def run() -> None:
        model.train()
        for x, y in batches:
            train_step(model, optimizer, to_device(x, model.device), Tensor(to_device(y, model.device)),
                       config.grad_clip)

    peak = peak_traced_bytes(run)
    return (peak if model.device == "cpu" else None), optimizer.state_bytes()


def _latency(base_model: GPT, model: GPT, idx: np.ndarray, repeats: int) -> dict[str, float | None]:
    """Median forward milliseconds of the base model and of ``model`` as it trained ("unmerged") and, where its
    layers merge (``MergeableLinear``: the LoRA family, VeRA), merged, W = W0 + ΔW; bottleneck adapters and
    prefixes have nothing to merge, and a 4-bit base (QLoRA's) refuses to: their merged time is None."""
    layers = [m for m in model.modules() if isinstance(m, MergeableLinear)]
    if not layers or any(getattr(m, "is_quantized", False) for m in model.modules()):
        return {**forward_ms({"base": base_model, "unmerged": model}, idx, repeats), "merged": None}

    def merge() -> None:
        for layer in layers:
            layer.merge()

    def unmerge() -> None:
        for layer in layers:
            layer.unmerge()

    times = forward_ms({"base": base_model, "merged": model, "unmerged": model}, idx, repeats,
                       before={"merged": merge, "unmerged": unmerge})
    unmerge()
    return times


def _run(spec: RunSpec, base: str | GPT, base_model: GPT, task: Task, device: str | None, folder: Path,
         memory_steps: int, latency_idx: np.ndarray, latency_repeats: int) -> dict[str, Any]:
    """Train one run from a fresh copy of the base (prepared by the methods registry) and measure it; one row."""
    method, config = get_method(spec.method), spec.train

    def fresh():
        return method.prepare(_fresh_model(base, device), spec.settings, seed=config.seed)

    peak, state_bytes = _training_memory(fresh(), task, config, memory_steps)
    model = fresh()
    counts = count_parameters(model)
    result = train(model, task, config, desc=folder.name)
    losses = [h["loss"] for h in result.history]
    meta = {"task": task.name, "method": spec.method, "train_config": asdict(config), "metrics": result.final_metrics}
    weights_file = save_weights(folder, model, spec.method, meta, base if isinstance(base, str) else None)
    row = {
        "run": folder.name, "method": spec.method, "rank": spec.settings.get("r"), "lr": config.lr,
        "trainable_params": counts.trainable, "total_params": counts.total, "trainable_pct": counts.percent,
        "metric": task.metric, "metric_value": result.final_metrics[task.metric],
        "final_loss": statistics.fmean(losses[-max(1, len(losses) // 20):]),
        "train_seconds": result.seconds, "step_ms": median_ms([h["seconds"] for h in result.history]),
        "peak_train_bytes": peak, "optimizer_state_bytes": state_bytes,
        "file": str(weights_file), "file_bytes": os.path.getsize(weights_file),
        "infer_base_ms": None, "infer_merged_ms": None, "infer_unmerged_ms": None,
    }
    if spec.method != "full":
        times = _latency(base_model, model, latency_idx, latency_repeats)
        row.update(infer_base_ms=times["base"], infer_merged_ms=times["merged"], infer_unmerged_ms=times["unmerged"])
    row["losses"] = losses
    return row


def _run_job(job: dict[str, Any], task: Task, base: str | GPT) -> dict[str, Any]:
    """One run of ``compare`` from its job (what ``run_sweep`` calls, in this process or a worker): train from a
    fresh copy of the base, measure, and write ``row.json`` into the run's folder at once (so ``resume`` finds
    every run that finished, even when a later one fails)."""
    spec, folder = RunSpec.from_json(job["run"]), Path(job["folder"])
    latency_idx, _ = task.sample_batch(np.random.default_rng(spec.train.seed), job["latency_batch"])
    row = _run(spec, base, _fresh_model(base, job["device"]), task, job["device"], folder, job["memory_steps"],
               latency_idx, job["latency_repeats"])
    row["seed"] = spec.train.seed
    if job["save_row"]:
        write_result(folder / ROW_FILE, {"spec": job["run"], "row": row})
    return row


def compare(task: str | Task, base: str | GPT = "skills", ranks: Sequence[int] = (1, 2, 4, 8), steps: int = 1000,
            batch_size: int = 64, lr_full: float = DEFAULT_LR["full"], lr_lora: float = DEFAULT_LR["lora"],
            targets: Sequence[str] = DEFAULT_TARGETS, seed: int = 0, warmup_steps: int | None = None,
            device: str | None = None, out: str | Path | None = None, memory_steps: int = 3,
            latency_batch: int = 256, latency_repeats: int = 20,
            on_row: Callable[[dict[str, Any]], None] | None = None, resume: bool = False,
            overwrite: bool = False, seeds: Sequence[int] | None = None, jobs: int = 1,
            executor: cf.Executor | None = None, methods: Mapping[str, Mapping[str, Any]] | Sequence[str] = (),
            lr_methods: Mapping[str, float] | None = None) -> list[dict[str, Any]]:
    """Fine-tune ``base`` on ``task`` fully, with LoRA at each of ``ranks`` and with ``methods``; one measured row
    per run.

    Budget (the same for every run): ``steps`` AdamW steps of ``batch_size`` sequences, lr_t a linear
    warm-up over ``warmup_steps`` (default ``default_warmup_steps(steps)`` = steps / 20) then a cosine decay to
    lr / 10, no weight decay, data and LoRA initialisation seeded by ``seed``; lr = ``lr_full`` or ``lr_lora``.
    ``task`` is a name or a task object (e.g. ``get_task("sort", n_eval=100)`` for a quicker evaluation); ``base``
    a shipped model name, a checkpoint path, or a GPT, which is copied and never changed.  Nothing is chosen:
    every metric is the task's test split.

    Each run's weights go to ``out/<run>/`` ("full", "lora-r4", ...) and all rows, with the
    settings, to ``out/compare.json``; without ``out`` the files are written to a temporary
    folder (to measure their size) and deleted.  Peak memory is traced over ``memory_steps`` separate
    steps; latency is the median of ``latency_repeats`` forward passes of ``latency_batch`` sequences.
    ``on_row(row)`` is called as each run finishes.  Row keys: see ``format_table`` and the module docstring;
    ``losses`` is the training loss per step.  ``out`` is checked and locked (one compare per folder) before any
    run: a folder holding another compare is refused unless ``resume`` (runs that finished are loaded, not rerun;
    a run made with other settings is refused) or ``overwrite`` (its files are deleted first).

    ``seeds`` (default: ``[seed]``) runs every method once per seed (folders "full-seed1", "lora-r4-seed1", ... when
    there are several; rows carry their ``seed``); the runs go through ``run_sweep`` with ``jobs`` worker
    processes (default 1: this process) or ``executor``, and ``on_row`` is called for each row, in order, once all
    have finished.

    ``methods`` adds other trainable methods of the registry (``compare_methods()``: dora, pissa, olora, lora-fa,
    lora-plus, vera, adapter, prefix, qlora), a list of names (the registry's default settings) or name → settings
    (e.g. ``{"lora-plus": {"loraplus_lr_ratio": 4.0}, "adapter": {"bottleneck": 8}}``), each at
    ``lr_methods[name]`` (default ``lr_lora``).  The LoRA family (``per_rank``) runs at each of ``ranks`` on
    ``targets`` (folders "dora-r4", ...; its r and target_modules are not settings here); vera, adapter and prefix run
    once (folder = the method's name), VeRA on ``targets`` with its own r.  "subspace" is refused: its intrinsic
    dimension is measured by ``minilora intrinsic``.
    """
    extra = _extra_methods(methods, lr_methods, lr_lora, tuple(targets))
    if out is None:
        return _compare(task, base, ranks, steps, batch_size, lr_full, lr_lora, targets, seed, warmup_steps, device,
                        None, memory_steps, latency_batch, latency_repeats, on_row, False, seeds, jobs, executor,
                        extra)
    folder = check_writable(out, "compare folder")
    with FolderLock(folder / LOCK_FILE, "compare folder"):
        _prepare_folder(folder, resume, overwrite)
        return _compare(task, base, ranks, steps, batch_size, lr_full, lr_lora, targets, seed, warmup_steps, device,
                        folder, memory_steps, latency_batch, latency_repeats, on_row, resume, seeds, jobs, executor,
                        extra)


def _extra_methods(methods: Mapping[str, Mapping[str, Any]] | Sequence[str], lr_methods: Mapping[str, float] | None,
                   lr_lora: float, targets: tuple[str, ...]) -> dict[str, tuple[dict[str, Any], float]]:
    """name → (checked settings, lr) of the methods ``compare`` runs besides full and LoRA, with ``targets`` as the
    target_modules of those that have them and without r for the LoRA family (``ranks`` gives it); a ValueError
    names a method that is unknown, always runs or saves no weights, a setting compare sets itself, or a bad setting
    or lr."""
    given = dict(methods) if isinstance(methods, Mapping) else {name: {} for name in methods}
    lrs = dict(lr_methods or {})
    extra = {}
    for name, settings in given.items():
        problem = why_not_compared(name)
        if problem:
            raise ValueError(f"compare: methods: {problem}")
        method, settings = get_method(name), dict(settings or {})
        owned = {"target_modules": "targets", **({"r": "ranks"} if per_rank(name) else {})}
        for setting, argument in owned.items():
            if setting in settings:
                raise ValueError(f"compare: methods: {name}'s {setting} is compare's {argument} (the same for every "
                                 f"method); leave it out of its settings")
        if "target_modules" in method.settings:
            settings["target_modules"] = list(targets)
        lr = lrs.pop(name, lr_lora)
        if not lr > 0:
            raise ValueError(f"compare: the lr of {name} must be > 0, got {lr!r}")
        checked = method.check(settings)
        if per_rank(name):
            checked.pop("r")
        extra[name] = (checked, float(lr))
    if lrs:
        raise ValueError(f"compare: lr_methods names {sorted(lrs)}, which are not among methods {list(given)}")
    return extra


def _compare(task: str | Task, base: str | GPT, ranks: Sequence[int], steps: int, batch_size: int, lr_full: float,
             lr_lora: float, targets: Sequence[str], seed: int, warmup_steps: int | None, device: str | None,
             out: Path | None, memory_steps: int, latency_batch: int, latency_repeats: int,
             on_row: Callable[[dict[str, Any]], None] | None, resume: bool, seeds: Sequence[int] | None, jobs: int,
             executor: cf.Executor | None, extra: dict[str, tuple[dict[str, Any], float]]) -> list[dict[str, Any]]:
    task_obj = get_task(task) if isinstance(task, str) else task
    ranks, targets = list(ranks), tuple(targets)
    for name, value in (("lr_full", lr_full), ("lr_lora", lr_lora)):
        if not value > 0:
            raise ValueError(f"compare: {name} must be > 0, got {value!r}")
    for name, value in (("memory_steps", memory_steps), ("latency_batch", latency_batch),
                        ("latency_repeats", latency_repeats)):
        if value < 1:
            raise ValueError(f"compare: {name} must be >= 1, got {value!r}")
    bad = [r for r in ranks if isinstance(r, bool) or not isinstance(r, (int, np.integer)) or r < 1]
    if bad or len(set(ranks)) != len(ranks):
        raise ValueError(f"compare: ranks must be distinct positive integers, got {ranks!r}")
    base_model = _fresh_model(base, device)
    if task_obj.tokenizer.vocab_size != base_model.config.vocab_size:
        raise ValueError(f"task {task_obj.name!r} has {task_obj.tokenizer.vocab_size} tokens but the base model has "
                         f"{base_model.config.vocab_size}; compare on a task with the base model's vocabulary")
    for r in ranks:  # unknown targets or a rank too large for a layer fail now, not after the full run
        find_targets(base_model, LoraConfig(r=int(r), target_modules=targets))
    seeds = [seed] if seeds is None else list(seeds)
    if not seeds or len(set(seeds)) != len(seeds) or any(
            isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0 for s in seeds):
        raise ValueError(f"compare: seeds must be distinct non-negative integers, got {seeds!r}")
    warmup = default_warmup_steps(steps) if warmup_steps is None else warmup_steps
    configs = {(m, s): TrainConfig(steps=steps, batch_size=batch_size, lr=lr, warmup_steps=warmup, weight_decay=0.0,
                                   seed=int(s))
               for m, lr in (("full", lr_full), ("lora", lr_lora), *((m, lr) for m, (_, lr) in extra.items()))
               for s in seeds}
    suffix = (lambda s: "") if len(seeds) == 1 else (lambda s: f"-seed{s}")
    runs = [(s, "full", {}, f"full{suffix(s)}") for s in seeds]
    runs += [(s, "lora", {"r": int(r), "target_modules": list(targets)}, f"lora-r{r}{suffix(s)}")
             for s in seeds for r in ranks]
    for name, (settings, _) in extra.items():  # the LoRA family once per rank, the others once
        if per_rank(name):
            for r in ranks[:1]:  # a bad combination fails before any run
                get_method(name).check({**settings, "r": int(r)})
            runs += [(s, name, {"r": int(r), **settings}, f"{name}-r{r}{suffix(s)}") for s in seeds for r in ranks]
        else:
            runs += [(s, name, settings, f"{name}{suffix(s)}") for s in seeds]
    base_name = base if isinstance(base, str) else "<GPT object>"
    rows: list[dict[str, Any] | None] = []
    with tempfile.TemporaryDirectory() as scratch:
        root = out if out is not None else Path(scratch)
        jobs_todo, places = [], []
        for s, method, settings, name in runs:
            spec = RunSpec.make(task_obj.name, base_name, method, configs[(method, s)], settings).to_json()
            row = _finished_row(root / name, spec) if out is not None and resume else None
            rows.append(row)
            if row is None:
                places.append(len(rows) - 1)
                jobs_todo.append({"run": spec, "folder": str(root / name), "device": device,
                                  "memory_steps": memory_steps,
                                  "latency_batch": latency_batch, "latency_repeats": latency_repeats,
                                  "save_row": out is not None})
        run_one = functools.partial(_run_job, task=task_obj, base=base)
        try:
            outcomes = run_sweep(jobs_todo, run_one, jobs=jobs, executor=executor, desc=f"compare {task_obj.name}")
        except SweepInterrupted as stop:  # the finished runs are kept in their folders (row.json) when out is given
            raise SweepInterrupted(len(runs) - len(jobs_todo) + stop.finished, len(runs), out,
                                   stop.signal) from None
        for place, outcome in zip(places, outcomes):
            rows[place] = outcome["result"]
    for row in rows:
        if on_row is not None:
            on_row(row)
    if out is not None:
        settings = {"task": task_obj.name, "base": base_name, "ranks": ranks, "seeds": seeds,
                    "targets": list(targets), "lr_full": lr_full, "lr_lora": lr_lora, "device": base_model.device,
                    **({"methods": {name: {"settings": settings, "lr": lr} for name, (settings, lr) in extra.items()}}
                       if extra else {}),
                    "train_config": {k: v for k, v in asdict(configs[("full", seeds[0])]).items() if k != "lr"},
                    "memory_steps": memory_steps, "latency_batch": latency_batch, "latency_repeats": latency_repeats,
                    "threads": {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")},
                    "numpy": np.__version__}
        write_result(out / COMPARE_FILE, {"experiment": "compare", "settings": settings, "reported_on": REPORTED_ON,
                                          "rows": rows})
    return rows


def _num(value: float | None, spec: str) -> str:
    """``value`` formatted with ``spec``, or "-" when it is None (not measured)."""
    return "-" if value is None else format(value, spec)


def _latency_cell(ms: float | None, base_ms: float | None) -> str:
    """"1.23 (+4%)": milliseconds and the overhead over the base model, 100 · (t / t_base − 1); "n/a" where the
    base was timed but not this (a merged time where nothing merges), "-" where nothing was timed (full)."""
    if base_ms is None:
        return "-"
    if ms is None:
        return "n/a"
    return f"{ms:.2f} ({100 * (ms / base_ms - 1):+.0f}%)"


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """The rows of ``compare`` as an aligned text table, one line per run.

    Columns: method, seed (only when the rows have several), rank r, trainable parameters and their share of
    all, the task metric, the final training loss, median step ms, peak training MiB (above the loaded model),
    optimizer state KiB, weights file KiB, and forward-pass ms of base / merged / unmerged (every row but full's; the
    percentage is the overhead over the base model; merged "n/a" where nothing merges: adapter, prefix, and QLoRA's
    4-bit base, which refuses to).
    """
    if not rows:
        raise ValueError("format_table: no rows to show")
    seeded = len({r.get("seed") for r in rows}) > 1  # a seed column only when the rows have several
    head = ("method", *(("seed",) if seeded else ()), "r", "trainable", "%", rows[0]["metric"], "loss", "step ms",
            "peak MiB", "optim KiB", "file KiB", "base ms", "merged ms", "unmerged ms")
    lines = [head]
    for r in rows:
        peak = None if r["peak_train_bytes"] is None else r["peak_train_bytes"] / 2**20
        lines.append((r["method"], *((str(r["seed"]),) if seeded else ()), _num(r["rank"], "d"),
                      f"{r['trainable_params']:,}", f"{r['trainable_pct']:.2f}",
                      f"{r['metric_value']:.3f}", f"{r['final_loss']:.3f}", f"{r['step_ms']:.1f}", _num(peak, ".2f"),
                      f"{r['optimizer_state_bytes'] / 2**10:.1f}", f"{r['file_bytes'] / 2**10:.1f}",
                      _num(r["infer_base_ms"], ".2f"), _latency_cell(r["infer_merged_ms"], r["infer_base_ms"]),
                      _latency_cell(r["infer_unmerged_ms"], r["infer_base_ms"])))
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    text = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths, strict=True)))
            for line in lines]
    text.insert(1, "-" * len(text[0]))
    return "\n".join(text)


def format_seed_summary(rows: Sequence[dict[str, Any]]) -> str:
    """The rows of ``compare`` grouped by method and rank over their seeds: the task metric and the final training
    loss as mean ± std (sample standard deviation), one line per method and rank, in the rows' order."""
    if not rows:
        raise ValueError("format_seed_summary: no rows to show")
    groups: dict[tuple[str, int | None], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["method"], r["rank"]), []).append(r)

    def pm(values: list[float]) -> str:
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.fmean(values):.3f} ± {spread:.3f}"

    wm = max(6, *(len(method) for method, _ in groups))  # "lora-plus" is wider than "method"
    lines = [f"{'method':{wm}s}  {'r':>3s}  {'trainable':>9s}  seeds  {rows[0]['metric'] + ' (mean ± std)':>24s}  "
             + f"{'loss (mean ± std)':>17s}"]
    for (method, rank), group in groups.items():
        lines.append(f"{method:{wm}s}  {_num(rank, 'd'):>3s}  {group[0]['trainable_params']:>9,}  {len(group):>5d}  "
                     f"{pm([g['metric_value'] for g in group]):>24s}  {pm([g['final_loss'] for g in group]):>17s}")
    return "\n".join(lines)
