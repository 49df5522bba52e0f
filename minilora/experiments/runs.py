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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from minilora.alternatives.files import ALT_CONFIG_NAME
from minilora.data import get_task
from minilora.experiments.folders import (
    default_run_folder,
    prepare_run_folder,
    read_run,
    run_folder,
    writing,
)
from minilora.experiments.methods import DEFAULT_TARGETS, METHODS, get_method
from minilora.experiments.results import RUN_FILE, write_result
from minilora.io import load_metadata
from minilora.lora.adapters import CONFIG_NAME, WEIGHTS_NAME
from minilora.models.checkpoint import (
    MODEL_FILE,
    load_model,
    resolve_model_path,
    save_model,
    snapshot_path,
)
from minilora.models.configs import MODEL_SIZES, model_config
from minilora.models.gpt import GPT
from minilora.train import (
    TrainConfig,
    TrainingDiverged,
    TrainingInterrupted,
    TrainResult,
    train,
)
from minilora.validation import is_int

__all__ = [
    "DEFAULT_TARGETS",
    "FINETUNE_METHODS",
    "RUN_FILE",
    "default_run_folder",
    "finetune",
    "load_base",
    "load_trained",
    "prepare_run_folder",
    "pretrain",
    "print_eval",
    "read_run",
    "save_weights",
    "summarize",
]

EvalCallback = Callable[[int, dict[str, Any]], None]
# the methods whose weights a fine-tuning run saves: every weight (model.safetensors) or an adapter's (PEFT files)
FINETUNE_METHODS = ("full", *(name for name, method in METHODS.items() if method.adapter or method.save))


def _run_and_record(folder: Path | None, meta: dict[str, Any],
                    train_run: Callable[[Callable[[int, str], None] | None], TrainResult]) -> TrainResult:
    """Call ``train_run(on_checkpoint)`` with ``run.json`` in ``folder`` saying what happens: "running" first,
    rewritten at every checkpoint with the steps it holds, then "finished" with the metrics, or "interrupted" /
    "diverged" with the step reached (so run.json never describes a state older than the newest checkpoint)."""
    if folder is None:
        return train_run(None)
    done = read_run(folder) or {}
    if done.get("status") != "finished":
        write_result(folder / RUN_FILE, {**meta, "status": "running", "steps_done": done.get("steps_done", 0)})

    def on_checkpoint(step_done: int, status: str) -> None:
        if status != "finished":  # the finished record (with metrics) is written below
            status = "running" if status not in ("interrupted", "diverged") else status
            write_result(folder / RUN_FILE, {**meta, "status": status, "steps_done": step_done})

    try:
        result = train_run(on_checkpoint)
    except TrainingInterrupted as err:
        write_result(folder / RUN_FILE, {**meta, "status": "interrupted", "steps_done": err.step})
        raise
    except TrainingDiverged as err:
        write_result(folder / RUN_FILE, {**meta, "status": "diverged", "steps_done": err.step, "error": str(err)})
        raise
    if not result.already_finished:
        write_result(folder / RUN_FILE, {**meta, "status": "finished", "steps_done": meta["train_config"]["steps"],
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


def pretrain(task: str, size: str, config: TrainConfig, out: str | Path | None = None, device: str | None = None,
             resume: bool = False, extra: dict[str, Any] | None = None,
             on_eval: EvalCallback | None = None, overwrite: bool = False,
             task_kwargs: Mapping[str, Any] | None = None, n_embd: int | None = None,
             snapshots: Sequence[int] = ()) -> tuple[GPT, TrainResult]:
    """Train a new GPT of a named size (``n_embd``: another width) on ``task`` (built as
    ``get_task(task, **task_kwargs)``) from random initialisation (seeded by ``config.seed``).

    ``on_eval(step, metrics)`` is called after each evaluation (e.g. ``print_eval``).  The run folder ``out`` is
    owned (locked) for the whole run and checked first (see ``folders.run_folder``); ``resume`` continues the run
    there, ``overwrite`` replaces it.  ``snapshots``: steps (before the last) after which the weights are also
    saved, to ``out/steps/step-<S>.safetensors``; saving reads the weights only, so the run is the same with or
    without them.
    """
    bad = [s for s in snapshots if not is_int(s) or not 0 < s < config.steps]
    if bad:
        raise ValueError(f"snapshots must be steps between 1 and {config.steps - 1} (the last step's weights are "
                         f"model.safetensors), got {bad}")
    if snapshots and out is None:
        raise ValueError("snapshots are saved into the run folder: pass out")
    if out is None:
        return _pretrain(task, size, config, None, device, resume, extra, on_eval, task_kwargs, n_embd, ())
    with run_folder(out, resume, overwrite) as folder:
        return _pretrain(task, size, config, folder, device, resume, extra, on_eval, task_kwargs, n_embd, snapshots)


def _pretrain(task: str, size: str, config: TrainConfig, folder: Path | None, device: str | None, resume: bool,
              extra: dict[str, Any] | None, on_eval: EvalCallback | None, task_kwargs: Mapping[str, Any] | None,
              n_embd: int | None, snapshots: Sequence[int]) -> tuple[GPT, TrainResult]:
    task_obj = get_task(task, **(task_kwargs or {}))
    block_size = (max(task_obj.block_size, MODEL_SIZES[size]["block_size"]) if size in MODEL_SIZES
                  else task_obj.block_size)
    width = {} if n_embd is None else {"n_embd": n_embd}
    gpt_config = model_config(size, task_obj.tokenizer.vocab_size, block_size=block_size, **width)
    model = GPT(gpt_config, seed=config.seed, device=device)
    identity = {**(extra or {}), "kind": "pretrain", "task": task, "size": size, **width,
                **({"task_kwargs": dict(task_kwargs)} if task_kwargs else {})}
    meta = {**identity, "train_config": asdict(config)}

    def save_snapshot(done: int) -> None:  # reads the weights, draws no random number: the run is unchanged
        if folder is not None and done in snapshots:
            save_model(snapshot_path(folder, done), model, extra={**meta, "step": done})

    result = _run_and_record(folder, meta, lambda cb: train(model, task_obj, config, out_dir=folder, resume=resume,
                                                            desc=f"pretrain {task}", on_eval=on_eval, run=identity,
                                                            on_checkpoint=cb, on_step=save_snapshot))
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
        model = load_adapter(_adapter_base(load_base(base, device=device), run or _recorded_run(path)), path)
        return model.eval(), run.get("task")
    if path.is_dir() and (path / ALT_CONFIG_NAME).is_file():  # bottleneck adapters or a prefix (alternatives)
        from minilora.alternatives import load_alternative

        recorded = json.loads((path / ALT_CONFIG_NAME).read_text()).get("base_model_name_or_path")
        base = base or run.get("base") or recorded
        if not base:
            raise ValueError(f"the run in {path} does not record its base model; pass --base NAME_OR_PATH")
        return load_alternative(load_base(base, device=device), path).eval(), run.get("task")
    model_file = resolve_model_path(path)
    if not model_file.is_file():
        raise ValueError(f"{path} holds neither {MODEL_FILE} nor an adapter ({CONFIG_NAME}): an unfinished run? "
                         f"(see its {RUN_FILE})")
    return load_model(model_file, device=device).eval(), run.get("task") or load_metadata(model_file).get("task")


def _recorded_run(folder: Path) -> dict[str, Any]:
    """What an adapter folder without ``run.json`` says about its run: for a QLoRA adapter, the method "qlora" and
    the 4-bit format its weights file records (``lora.provenance.base_quantization``); else nothing."""
    quantization = (load_metadata(folder / WEIGHTS_NAME).get("base_model") or {}).get("quantization")
    if not quantization:
        return {}
    return {"method": "qlora", "settings": {"blocksize": quantization["blocksize"],
                                            "double_quant": quantization["double_quant"]}}


def _adapter_base(model: GPT, run: Mapping[str, Any]) -> GPT:
    """The base an adapter was trained on: ``model`` itself, or for a QLoRA run (``run.json``'s method "qlora")
    ``model`` with every Linear but the head quantised to NF4 with the run's blocksize and double_quant, as
    ``methods._prepare_qlora`` did before training (the adapter on the full-precision base computes another
    function).  An adapter folder without ``run.json`` says the same through the quantisation its weights file
    records (``_recorded_run``)."""
    if run.get("method") != "qlora":
        return model
    from minilora.quant import quantize_model

    settings = get_method("qlora").check(run.get("settings") or {})
    return quantize_model(model, blocksize=settings["blocksize"], double_quant=settings["double_quant"])


def finetune(base: str | GPT, task: str, method: str, config: TrainConfig, out: str | Path | None = None,
             settings: Mapping[str, Any] | None = None, device: str | None = None, resume: bool = False,
             on_eval: EvalCallback | None = None, overwrite: bool = False) -> tuple[GPT, TrainResult]:
    """Adapt a pretrained model to ``task`` with ``method`` (a ``methods.METHODS`` name: "full", "lora", "subspace")
    and its ``settings`` (e.g. {"r": 8}; checked by the registry, so a setting of another method is refused).

    The same loop, data, budget and schedule for every method, so their results can be compared side by side.
    The run folder ``out`` is owned (locked) for the whole run and checked first (see ``folders.run_folder``);
    ``resume`` continues the run there (refused when its base, task, method, settings or training settings differ,
    except a larger ``config.steps``), ``overwrite`` replaces it.
    """
    checked = get_method(method).check(settings)
    if method not in FINETUNE_METHODS:  # none trains nothing; a subspace run's z is measured by ``intrinsic``
        raise ValueError(f"finetune: method {method!r} is not a fine-tuning run; expected one of {FINETUNE_METHODS}")
    if out is None:
        return _finetune(base, task, method, checked, config, None, device, resume, on_eval)
    with run_folder(out, resume, overwrite) as folder:
        return _finetune(base, task, method, checked, config, folder, device, resume, on_eval)


def _finetune(base: str | GPT, task: str, method: str, settings: dict[str, Any], config: TrainConfig,
              folder: Path | None, device: str | None, resume: bool,
              on_eval: EvalCallback | None) -> tuple[GPT, TrainResult]:
    model = load_base(base, device=device) if isinstance(base, str) else base
    task_obj = get_task(task)
    if task_obj.tokenizer.vocab_size != model.config.vocab_size:
        raise ValueError(f"task {task!r} has {task_obj.tokenizer.vocab_size} tokens but the base model was pretrained "
                         f"with {model.config.vocab_size}; fine-tune a model pretrained on the same vocabulary")
    model = get_method(method).prepare(model, settings, seed=config.seed)
    base_name = base if isinstance(base, str) else None
    identity: dict[str, Any] = {"kind": "finetune", "base": base_name, "task": task, "method": method,
                                "settings": settings}
    meta = {**identity, "train_config": asdict(config)}
    result = _run_and_record(folder, meta, lambda cb: train(model, task_obj, config, out_dir=folder, resume=resume,
                                                            desc=f"{method} {task}", on_eval=on_eval, run=identity,
                                                            on_checkpoint=cb))
    entry = get_method(method)
    weights_name = entry.weights_file or (WEIGHTS_NAME if entry.adapter else MODEL_FILE)
    weights = folder / weights_name if folder is not None else None
    if weights is not None and not (result.already_finished and weights.is_file()):
        save_weights(folder, model, method, {**meta, "metrics": result.final_metrics}, base_name)
    return model, result


def save_weights(out: Path, model: GPT, method: str, meta: dict[str, Any], base: str | None) -> Path:
    """Write what a fine-tuning run learned: the adapter files (LoRA), the method's own files (bottleneck adapters,
    prefix-tuning: ``alternative_config.json`` + ``alternative_model.safetensors``) or ``model.safetensors`` (full,
    with ``meta`` in its metadata).  Returns the weights file; an OS error (no space, no permission) is a
    one-line ValueError naming the folder."""
    with writing(out):
        entry = get_method(method)
        if entry.save is not None:
            return Path(entry.save(model, out, base))
        if entry.adapter:
            from minilora.lora import save_adapter

            save_adapter(model, out, base_model_name_or_path=base)
            return out / WEIGHTS_NAME
        save_model(out / MODEL_FILE, model, extra=meta)
        return out / MODEL_FILE
