"""Pretraining and fine-tuning runs: what ``minilora pretrain`` / ``minilora finetune`` do, callable from notebooks.

A run builds (or loads) a model, chooses its trainable parameters by method, hands it to the one
training loop in ``train.py``, and writes its results into an output folder:
``model.safetensors`` (full weights) or ``adapter_model.safetensors`` + ``adapter_config.json``
(LoRA), plus ``history.json``, a resumable ``checkpoint.safetensors`` and ``run.json``, which says what the
run is (settings, status "running" / "interrupted" / "diverged" / "finished", steps done, final metrics).

A run folder only ever holds one run's files: ``prepare_run_folder`` checks it before any work and refuses
a folder that holds another run unless the caller resumes it (``resume=True``) or replaces it
(``overwrite=True``, which deletes that run's files and nothing else).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Sequence

from minilora.models.checkpoint import MODEL_FILE, load_model, resolve_model_path, save_model
from minilora.data import get_task
from minilora.io import TEMP_PATTERN, atomic_write_json, check_writable_folder, clean_temporaries, load_metadata
from minilora.lora.adapters import CONFIG_NAME, WEIGHTS_NAME
from minilora.models.configs import MODEL_SIZES, model_config
from minilora.models.gpt import GPT
from minilora.train import (CHECKPOINT_FILE, HISTORY_FILE, TrainConfig, TrainingDiverged, TrainingInterrupted,
                            TrainResult, train)

__all__ = ["pretrain", "finetune", "prepare", "save_weights", "load_base", "load_trained", "METHODS",
           "DEFAULT_TARGETS", "summarize", "print_eval", "RUN_FILE", "RUN_FILES", "prepare_run_folder",
           "default_run_folder", "read_run"]

METHODS = ("full", "lora")
# Attention (the LoRA paper's W_q, W_v) and the MLP: on this 2-layer model, subtraction reaches
# 65-87% of full fine-tuning with q, v alone at r = 4 (1000 steps), and > 99% once the MLP is adapted too.
DEFAULT_TARGETS = ("q_proj", "v_proj", "fc_in", "fc_out")
EvalCallback = Callable[[int, dict[str, Any]], None]
RUN_FILE = "run.json"  # what a run was: task, method, settings, status, final metrics
# every file a pretrain or finetune run writes into its folder (and nothing else may be there)
RUN_FILES = (RUN_FILE, HISTORY_FILE, CHECKPOINT_FILE, MODEL_FILE, CONFIG_NAME, WEIGHTS_NAME)


def read_run(folder: str | Path) -> dict[str, Any] | None:
    """The ``run.json`` of a run folder, or None when there is none (or it is unreadable)."""
    try:
        return json.loads((Path(folder) / RUN_FILE).read_text())
    except (OSError, ValueError):
        return None


def _describe(folder: Path) -> str:
    run = read_run(folder) or {}
    what = " ".join(str(run[k]) for k in ("kind", "method", "task") if run.get(k)) or "a run"
    if "steps_done" in run and "train_config" in run:
        what += f", {run.get('status', 'unknown')} at step {run['steps_done']} of {run['train_config']['steps']}"
    return what


def prepare_run_folder(out_dir: str | Path, resume: bool = False, overwrite: bool = False) -> Path:
    """Check (and create) a run's output folder before any work; returns it.

    Refused, each with a one-line ValueError: a path that is a file or cannot be written; ``resume`` without
    a checkpoint there; a folder holding files that are not a minilora run's; a folder holding another run,
    unless ``resume`` (continue it) or ``overwrite`` (delete that run's files first).  Stale temporary files
    of killed writes are removed.
    """
    folder = Path(out_dir)
    if resume and overwrite:
        raise ValueError("resume and overwrite exclude each other: resume continues the run in the folder, "
                         "overwrite deletes it")
    if resume and not (folder / CHECKPOINT_FILE).is_file():
        raise ValueError(f"nothing to resume in {folder}: there is no {CHECKPOINT_FILE}")
    clean_temporaries(check_writable_folder(folder))
    present = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    if resume or not present:
        return folder
    foreign = [name for name in present if name not in RUN_FILES]
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise ValueError(f"{folder} is not empty and holds files no minilora run writes ({shown}); "
                         f"choose a new or empty folder")
    if not overwrite:
        raise ValueError(f"{folder} already holds {_describe(folder)}; pass --resume to continue it, --overwrite "
                         f"to replace it, or choose another folder")
    for name in present:
        (folder / name).unlink()
    return folder


def default_run_folder(task: str, method: str, rank: int | None, seed: int, root: str | Path = "runs",
                       fresh: bool = True) -> Path:
    """Where a fine-tuning run goes without an explicit folder: ``runs/finetune-<task>-<method>[-r<rank>]-s<seed>``.

    ``fresh`` picks the first of that name, ``...-2``, ``...-3``, ... that does not exist yet (a new run never
    lands in an old run's folder); without it the plain name is returned (to resume or overwrite it).
    """
    name = f"finetune-{task}-{method}" + (f"-r{rank}" if method == "lora" else "") + f"-s{seed}"
    folder = Path(root) / name
    number = 1
    while fresh and folder.exists():
        number += 1
        folder = Path(root) / f"{name}-{number}"
    return folder


def _run_and_record(folder: Path | None, meta: dict[str, Any], train_run: Callable[[], TrainResult]) -> TrainResult:
    """Call ``train_run()`` with ``run.json`` in ``folder`` saying what happens: "running" first, then
    "finished" with the metrics, or "interrupted" / "diverged" with the step reached."""
    if folder is None:
        return train_run()
    done = read_run(folder) or {}
    if done.get("status") != "finished":
        atomic_write_json(folder / RUN_FILE, {**meta, "status": "running", "steps_done": done.get("steps_done", 0)})
    try:
        result = train_run()
    except TrainingInterrupted as err:
        atomic_write_json(folder / RUN_FILE, {**meta, "status": "interrupted", "steps_done": err.step})
        raise
    except TrainingDiverged as err:
        atomic_write_json(folder / RUN_FILE, {**meta, "status": "diverged", "steps_done": err.step, "error": str(err)})
        raise
    if not result.already_finished:
        atomic_write_json(folder / RUN_FILE, {**meta, "status": "finished", "steps_done": meta["train_config"]["steps"],
                                              "extensions": result.extensions, "metrics": result.final_metrics})
    return result


def summarize(metrics: dict[str, Any]) -> str:
    """One line of an evaluation: the headline metric, then per-skill accuracies when there are several."""
    parts = [f"{k} {v:.3f}" for k, v in metrics.items() if isinstance(v, float)]
    for skill, sub in metrics.get("by_skill", {}).items():
        parts.append(f"{skill} {sub['accuracy']:.3f}")
    return ", ".join(parts)


def print_eval(step: int, metrics: dict[str, Any]) -> None:
    """An ``on_eval`` callback that prints one line per evaluation (what the CLI uses)."""
    print(f"step {step}: {summarize(metrics)}", flush=True)


def pretrain(task: str, size: str, config: TrainConfig, out_dir: str | Path | None = None, device: str | None = None,
             resume: bool = False, extra: dict[str, Any] | None = None,
             on_eval: EvalCallback | None = None, overwrite: bool = False) -> tuple[GPT, TrainResult]:
    """Train a new GPT of a named size on ``task`` from random initialisation (seeded by ``config.seed``).

    ``on_eval(step, metrics)`` is called after each evaluation (e.g. ``print_eval``).  ``out_dir`` is
    checked first (see ``prepare_run_folder``); ``resume`` continues the run there, ``overwrite`` replaces it.
    """
    folder = prepare_run_folder(out_dir, resume, overwrite) if out_dir is not None else None
    task_obj = get_task(task)
    block_size = max(task_obj.block_size, MODEL_SIZES[size]["block_size"]) if size in MODEL_SIZES else task_obj.block_size
    gpt_config = model_config(size, task_obj.tokenizer.vocab_size, block_size=block_size)
    model = GPT(gpt_config, seed=config.seed, device=device)
    identity = {**(extra or {}), "kind": "pretrain", "task": task, "size": size}
    meta = {**identity, "train_config": asdict(config)}
    result = _run_and_record(folder, meta, lambda: train(model, task_obj, config, out_dir=folder, resume=resume,
                                                         desc=f"pretrain {task}", on_eval=on_eval, run=identity))
    if folder is not None and not (result.already_finished and (folder / MODEL_FILE).is_file()):
        save_model(folder / MODEL_FILE, model, extra={**meta, "metrics": result.final_metrics})
    return model, result


def load_base(base: str, device: str | None = None) -> GPT:
    """A pretrained model by shipped name ("skills", "names") or by checkpoint path (file or run folder)."""
    from minilora.models.zoo import RECIPES, pretrained

    if base in RECIPES and not Path(base).exists():
        return pretrained(base, device=device)
    return load_model(base, device=device)


def load_trained(source: str, base: str | None = None, device: str | None = None) -> tuple[GPT, str | None]:
    """A model to sample from or score, and the task it was trained on (None when nothing records it).

    ``source`` is a shipped model name ("skills", "names"), a model file or run folder with
    ``model.safetensors`` (pretraining, full fine-tuning), or a LoRA adapter folder, loaded on ``base`` or, by
    default, on the base its ``run.json`` or ``adapter_config.json`` (``base_model_name_or_path``) names.
    """
    from minilora.lora import load_adapter
    from minilora.models.zoo import RECIPES, pretrained

    path = Path(source)
    if source in RECIPES and not path.exists():
        return pretrained(source, device=device), RECIPES[source].task
    if not path.exists():
        raise ValueError(f"{source!r} is neither a shipped model ({', '.join(RECIPES)}) nor an existing file or folder")
    run = (read_run(path) if path.is_dir() else None) or {}
    if path.is_dir() and (path / CONFIG_NAME).is_file():
        try:
            recorded = json.loads((path / CONFIG_NAME).read_text()).get("base_model_name_or_path")
        except ValueError as err:
            raise ValueError(f"cannot read {path / CONFIG_NAME}: {err}") from None
        base = base or run.get("base") or recorded
        if not base:
            raise ValueError(f"the adapter in {path} does not record its base model; pass --base NAME_OR_PATH")
        model = load_adapter(load_base(base, device=device), path)
        return model.eval(), run.get("task")
    model_file = resolve_model_path(path)
    if not model_file.is_file():
        raise ValueError(f"{path} holds neither {MODEL_FILE} nor an adapter ({CONFIG_NAME}): an unfinished run? "
                         f"(see its {RUN_FILE})")
    return load_model(model_file, device=device).eval(), run.get("task") or load_metadata(model_file).get("task")


def finetune(base: str | GPT, task: str, method: str, config: TrainConfig, out_dir: str | Path | None = None,
             rank: int = 4, alpha: float | None = None, targets: Sequence[str] = DEFAULT_TARGETS,
             device: str | None = None, resume: bool = False,
             on_eval: EvalCallback | None = None, overwrite: bool = False) -> tuple[GPT, TrainResult]:
    """Adapt a pretrained model to ``task`` with ``method``: "full" (every weight) or "lora" (rank-``rank`` adapters).

    The same loop, data, budget and schedule for both, so their results can be compared side by side.
    ``out_dir`` is checked first (see ``prepare_run_folder``); ``resume`` continues the run there (refused
    when its base, task, method, LoRA settings or training settings differ, except a larger ``config.steps``),
    ``overwrite`` replaces it.
    """
    if method not in METHODS:
        raise ValueError(f"unknown fine-tuning method {method!r}; expected one of {METHODS}")
    folder = prepare_run_folder(out_dir, resume, overwrite) if out_dir is not None else None
    model = load_base(base, device=device) if isinstance(base, str) else base
    task_obj = get_task(task)
    if task_obj.tokenizer.vocab_size != model.config.vocab_size:
        raise ValueError(f"task {task!r} has {task_obj.tokenizer.vocab_size} tokens but the base model was pretrained "
                         f"with {model.config.vocab_size}; fine-tune a model pretrained on the same vocabulary")
    prepare(model, method, rank=rank, alpha=alpha, targets=targets, seed=config.seed)
    base_name = base if isinstance(base, str) else None
    identity: dict[str, Any] = {"kind": "finetune", "base": base_name, "task": task, "method": method}
    if method == "lora":
        identity.update(rank=rank, alpha=alpha, targets=list(targets))
    meta = {**identity, "train_config": asdict(config)}
    result = _run_and_record(folder, meta, lambda: train(model, task_obj, config, out_dir=folder, resume=resume,
                                                         desc=f"{method} {task}", on_eval=on_eval, run=identity))
    weights = folder / (WEIGHTS_NAME if method == "lora" else MODEL_FILE) if folder is not None else None
    if weights is not None and not (result.already_finished and weights.is_file()):
        save_weights(folder, model, method, {**meta, "metrics": result.final_metrics}, base_name)
    return model, result


def prepare(model: GPT, method: str, rank: int = 4, alpha: float | None = None,
            targets: Sequence[str] = DEFAULT_TARGETS, seed: int = 0) -> GPT:
    """Choose what trains: every weight ("full") or rank-``rank`` adapters on ``targets`` ("lora"); returns the model."""
    if method not in METHODS:
        raise ValueError(f"unknown fine-tuning method {method!r}; expected one of {METHODS}")
    if method == "lora":
        from minilora.lora import LoraConfig, apply_lora

        return apply_lora(model, LoraConfig(r=rank, alpha=alpha, target_modules=tuple(targets)), seed=seed)
    return model.requires_grad_(True)


def save_weights(out: Path, model: GPT, method: str, meta: dict[str, Any], base: str | None) -> Path:
    """Write what a fine-tuning run learned: the adapter files (LoRA) or ``model.safetensors`` (full,
    with ``meta`` in its metadata).  Returns the weights file."""
    if method == "lora":
        from minilora.lora import save_adapter
        from minilora.lora.adapters import WEIGHTS_NAME

        save_adapter(model, out, base_model_name_or_path=base)
        return out / WEIGHTS_NAME
    save_model(out / MODEL_FILE, model, extra=meta)
    return out / MODEL_FILE
