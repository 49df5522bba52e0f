"""Pretraining and fine-tuning runs: what ``minilora pretrain`` / ``minilora finetune`` do, callable from notebooks.

A run builds (or loads) a model, chooses its trainable parameters by method, hands it to the one
training loop in ``train.py``, and writes its results into an output folder:
``model.safetensors`` (full weights) or ``adapter_model.safetensors`` + ``adapter_config.json``
(LoRA), plus ``history.json`` and a resumable ``checkpoint.safetensors``.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Sequence

from minilora.models.checkpoint import MODEL_FILE, load_model, save_model
from minilora.data import get_task
from minilora.io import atomic_write_json
from minilora.models.configs import MODEL_SIZES, model_config
from minilora.models.gpt import GPT
from minilora.train import TrainConfig, TrainResult, train

__all__ = ["pretrain", "finetune", "prepare", "save_weights", "load_base", "METHODS", "DEFAULT_TARGETS", "summarize",
           "print_eval", "RUN_FILE"]

METHODS = ("full", "lora")
# Attention (the LoRA paper's W_q, W_v) and the MLP: on this 2-layer model, subtraction reaches
# 65-87% of full fine-tuning with q, v alone at r = 4 (1000 steps), and > 99% once the MLP is adapted too.
DEFAULT_TARGETS = ("q_proj", "v_proj", "fc_in", "fc_out")
EvalCallback = Callable[[int, dict[str, Any]], None]
RUN_FILE = "run.json"  # what a run was: task, method, settings, final metrics


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
             on_eval: EvalCallback | None = None) -> tuple[GPT, TrainResult]:
    """Train a new GPT of a named size on ``task`` from random initialisation (seeded by ``config.seed``).

    ``on_eval(step, metrics)`` is called after each evaluation (e.g. ``print_eval``).
    """
    task_obj = get_task(task)
    block_size = max(task_obj.block_size, MODEL_SIZES[size]["block_size"]) if size in MODEL_SIZES else task_obj.block_size
    gpt_config = model_config(size, task_obj.tokenizer.vocab_size, block_size=block_size)
    model = GPT(gpt_config, seed=config.seed, device=device)
    result = train(model, task_obj, config, out_dir=out_dir, resume=resume, desc=f"pretrain {task}", on_eval=on_eval)
    if out_dir is not None:
        meta = {**(extra or {}), "task": task, "size": size, "train_config": asdict(config), "metrics": result.final_metrics}
        save_model(Path(out_dir) / MODEL_FILE, model, extra=meta)
        atomic_write_json(Path(out_dir) / RUN_FILE, meta)
    return model, result


def load_base(base: str, device: str | None = None) -> GPT:
    """A pretrained model by shipped name ("skills", "names") or by checkpoint path (file or run folder)."""
    from minilora.models.zoo import RECIPES, pretrained

    if base in RECIPES and not Path(base).exists():
        return pretrained(base, device=device)
    return load_model(base, device=device)


def finetune(base: str | GPT, task: str, method: str, config: TrainConfig, out_dir: str | Path | None = None,
             rank: int = 4, alpha: float | None = None, targets: Sequence[str] = DEFAULT_TARGETS,
             device: str | None = None, resume: bool = False,
             on_eval: EvalCallback | None = None) -> tuple[GPT, TrainResult]:
    """Adapt a pretrained model to ``task`` with ``method``: "full" (every weight) or "lora" (rank-``rank`` adapters).

    The same loop, data, budget and schedule for both, so their results can be compared side by side.
    """
    model = load_base(base, device=device) if isinstance(base, str) else base
    task_obj = get_task(task)
    if task_obj.tokenizer.vocab_size != model.config.vocab_size:
        raise ValueError(f"task {task!r} has {task_obj.tokenizer.vocab_size} tokens but the base model was pretrained "
                         f"with {model.config.vocab_size}; fine-tune a model pretrained on the same vocabulary")
    prepare(model, method, rank=rank, alpha=alpha, targets=targets, seed=config.seed)
    result = train(model, task_obj, config, out_dir=out_dir, resume=resume, desc=f"{method} {task}", on_eval=on_eval)
    if out_dir is not None:
        _save_finetuned(Path(out_dir), model, method, task, config, result, base if isinstance(base, str) else None)
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


def _save_finetuned(out: Path, model: GPT, method: str, task: str, config: TrainConfig, result: TrainResult,
                    base: str | None) -> None:
    meta = {"base": base, "task": task, "method": method, "train_config": asdict(config), "metrics": result.final_metrics}
    save_weights(out, model, method, meta, base)
    atomic_write_json(out / RUN_FILE, meta)
