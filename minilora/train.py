"""One training loop for every method: pretraining, full fine-tuning, LoRA and subspace runs.

The method decides *which* parameters are trainable (``requires_grad``) before the loop starts; the
loop itself is the same: sample a batch, forward, loss, backward, clip, AdamW step with a warm-up +
cosine learning rate, evaluate now and then.  ``train`` below is that loop and nothing else; what
surrounds it (the run folder, resume, checkpoints, stop signals, divergence) is ``RunState`` in
``train_state.py``.  A run is deterministic on CPU for a given seed, and a run stopped and resumed from
its checkpoint ends with the same weights as one that never stopped.

A run never wastes its work or lies about itself: every setting is checked before the first step; the
output folder is checked (writable, no other run's checkpoint) before the first step; a resume with
settings other than the checkpoint's is refused (see ``TrainConfig``); a non-finite loss stops the run
before the weights are updated; Ctrl-C, SIGTERM and SIGHUP finish the step in progress, save a
checkpoint and raise ``TrainingInterrupted``; with an output folder, a checkpoint is also written every
``checkpoint_seconds`` (a minute by default), so even ``kill -9`` loses at most that much.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from minilora import backend
from minilora.data.registry import Task
from minilora.engine.tensor import Tensor
from minilora.nn import Embedding, Module
from minilora.optim import AdamW, Optimizer, clip_grad_norm, warmup_cosine
from minilora.progress import progress
from minilora.train_state import (
    CHECKPOINT_FILE,
    HISTORY_FILE,
    RunState,
    TrainingDiverged,
    TrainingInterrupted,
    TrainResult,
    read_training_state,
)
from minilora.validation import is_int, is_real

__all__ = ["TrainConfig", "TrainResult", "Task", "train", "train_step", "make_optimizer", "decay_groups",
           "default_warmup_steps", "TrainingDiverged", "TrainingInterrupted", "checkpoint_state", "CHECKPOINT_FILE",
           "HISTORY_FILE"]


# the smallest value of each integer setting, and of each real one (with True when the bound itself is refused)
_INT_FIELDS = {"steps": 1, "batch_size": 1, "warmup_steps": 0, "eval_every": 0, "checkpoint_every": 0, "seed": 0}
_REAL_FIELDS = {"lr": (0.0, True), "min_lr": (0.0, False), "weight_decay": (0.0, False), "grad_clip": (0.0, False),
                "checkpoint_seconds": (0.0, False)}


def default_warmup_steps(steps: int) -> int:
    """The learning-rate warm-up of a run that does not choose one: 5 % of its steps, at least one.

    warmup_steps = max(1, ⌊steps / 20⌋).  Long enough for AdamW's second-moment estimate v (β₂ = 0.99 averages
    about the last 100 squared gradients) to stop being dominated by the first few, noisy ones before the learning
    rate reaches its peak; short enough that almost all of the run trains at the scheduled rate.
    """
    return max(1, steps // 20)


@dataclass
class TrainConfig:
    """Hyper-parameters of one run (saved next to its results); every one is checked here, a bad value is a
    ValueError naming it.  ``grad_clip`` 0 means no clipping; ``eval_every`` / ``checkpoint_every`` 0 mean
    only at the end.  ``checkpoint_seconds``: with an output folder, a checkpoint is also written whenever that
    much wall time has passed since the last one (0: off), so a killed run loses at most about that much.

    Resuming a run: ``steps`` may grow (the run is extended), and ``eval_every``, ``checkpoint_every`` and
    ``checkpoint_seconds`` may change (``train_state.RESUMABLE_CHANGES``: none changes what a step computes);
    every other field (batch_size, lr, min_lr, warmup_steps, weight_decay, betas, grad_clip, seed) must be the
    checkpoint's, or the resume is refused before any work.
    """

    steps: int = 1000
    batch_size: int = 64
    lr: float = 2e-3
    min_lr: float | None = None  # default lr / 10
    warmup_steps: int = 100
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.99)
    grad_clip: float = 1.0
    eval_every: int = 0  # 0: evaluate only at the end
    checkpoint_every: int = 0  # steps; 0: no checkpoint by step count (when out_dir is given)
    checkpoint_seconds: float = 60.0  # wall time; 0: no checkpoint by time (when out_dir is given)
    seed: int = 0

    def __post_init__(self) -> None:
        for name, least in _INT_FIELDS.items():
            value = getattr(self, name)
            if not is_int(value) or value < least:
                raise ValueError(f"TrainConfig: {name} must be an integer >= {least}, got {value!r}")
            setattr(self, name, int(value))
        for name, (least, open_below) in _REAL_FIELDS.items():
            value = getattr(self, name)
            if value is None and name == "min_lr":
                continue
            if not is_real(value) or not math.isfinite(value) or value < least or (open_below and value == least):
                bound = f"> {least:g}" if open_below else f">= {least:g}"
                raise ValueError(f"TrainConfig: {name} must be a finite number {bound}, got {value!r}")
            setattr(self, name, float(value))
        try:
            betas = tuple(self.betas)
        except TypeError:
            betas = ()
        if len(betas) != 2 or not all(is_real(b) and 0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"TrainConfig: betas must be two numbers in [0, 1), got {self.betas!r}")
        self.betas = (float(betas[0]), float(betas[1]))
        if self.min_lr is not None and self.min_lr > self.lr:
            raise ValueError(f"TrainConfig: min_lr ({self.min_lr:g}) must not exceed lr ({self.lr:g})")


def decay_groups(model: Module, weight_decay: float, skip_embeddings: bool = True) -> list[dict[str, Any]]:
    """The weight-decay policy of training: two parameter groups for AdamW.

    Matrices (≥ 2-D, the weights of products x·Wᵀ) get ``weight_decay``; biases, LayerNorm gains (1-D) and
    embedding tables get 0 (decaying a lookup table shrinks rarely seen tokens for no benefit).  It is the
    training code's choice, not the optimizer's: ``optim`` only applies the groups it is given.
    """
    embedding_ids = set()
    if skip_embeddings:
        for _, module in model.named_modules():
            if isinstance(module, Embedding):
                embedding_ids.update(id(p) for p in module.parameters())
    decay, no_decay = [], []
    for _, p in model.named_parameters():
        (decay if p.ndim >= 2 and id(p) not in embedding_ids else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(model: Module, config: TrainConfig) -> AdamW:
    """The run's AdamW over every parameter (state appears only for trainable ones); matrices decay, the rest not.

    A model may bring its own groups, nanoGPT-style: ``model.optimizer_groups(lr, weight_decay)`` (LoRA+ sets it)."""
    own_groups = getattr(model, "optimizer_groups", None)
    groups = own_groups(config.lr, config.weight_decay) if own_groups else decay_groups(model, config.weight_decay)
    return AdamW(groups, lr=config.lr, betas=config.betas)


def train_step(model: Module, optimizer: Optimizer, x: Any, y: Any, grad_clip: float) -> tuple[Tensor, float | None]:
    """One optimisation step on a batch already on the model's device: the loss and the gradient norm.

    loss = model(x, y);  g = ∇loss (gradients cleared first);  g ← clip(g, grad_clip) unless grad_clip is 0;
    then the optimizer's update.  Returns (loss, ||g|| before clipping, or None without clipping).  A loss or
    gradient norm that is NaN or infinite raises ``TrainingDiverged`` before the update: the weights keep
    their last finite values.
    """
    _, loss = model(x, y)
    optimizer.zero_grad()
    loss.backward()
    grad_norm = clip_grad_norm(model.parameters(), grad_clip) if grad_clip else None
    loss_value = loss.item()
    if not math.isfinite(loss_value) or (grad_norm is not None and not math.isfinite(grad_norm)):
        raise TrainingDiverged(f"the loss is {loss_value} (gradient norm {grad_norm})")
    optimizer.step()
    return loss, grad_norm


def checkpoint_state(out_dir: str | Path) -> dict[str, Any] | None:
    """The recorded state of the training checkpoint in ``out_dir`` (step, train_config, run, finished, ...),
    or None when there is none; the arrays are not read.  A TrainConfig field that a checkpoint written before
    it existed lacks (``checkpoint_seconds``) reads as its default."""
    path = Path(out_dir) / CHECKPOINT_FILE
    if not path.is_file():
        return None
    state = read_training_state(path)
    defaults = {f.name: f.default for f in fields(TrainConfig)}
    state["train_config"] = {**defaults, **state.get("train_config", {})}
    return state


def _check_dtypes(model: Module) -> None:
    """float16 training is refused: without loss scaling its small gradients underflow and its large values
    overflow to inf, and the loss turns NaN within a few steps."""
    half = sorted({str(p.dtype) for p in model.parameters() if p.requires_grad and p.dtype.itemsize < 4})
    if half:
        raise ValueError(f"training in {', '.join(half)} is not supported: without loss scaling its gradients "
                         f"underflow and its activations overflow (the loss becomes NaN); train in float32 "
                         f"(model.astype(np.float32)) and cast afterwards if you need a small file")


def train(model: Module, task: Task, config: TrainConfig, out_dir: str | Path | None = None, resume: bool = False,
          desc: str = "train", on_eval: Callable[[int, dict[str, Any]], None] | None = None,
          run: dict[str, Any] | None = None, on_checkpoint: Callable[[int, str], None] | None = None,
          on_step: Callable[[int], None] | None = None) -> TrainResult:
    """Train the parameters of ``model`` that require grad on ``task``; returns the loss history and metrics.

    Per step t: lr_t = warmup_cosine(t);  loss = cross_entropy(model(x), y);  g = clip(∇loss);  AdamW(g, lr_t).
    ``task.evaluate`` runs every ``eval_every`` steps and at the end, each result passed to ``on_eval(step, m)``.
    With ``out_dir``, ``checkpoint.safetensors`` and ``history.json`` are written there (atomically) every
    ``checkpoint_every`` steps, every ``checkpoint_seconds``, at a stop and at the end, each write followed by
    ``on_checkpoint(steps_done, "running" | "interrupted" | "finished")``; ``on_step(steps_done)`` runs at the end of
    every step, inside it (a stop waits for it), and must only read (e.g. save a snapshot of the weights): one that
    draws a random number or changes the model changes the run; ``run`` (JSON-able settings such as
    task and method) is recorded beside the TrainConfig.  ``resume=True`` continues from that checkpoint (see
    ``TrainConfig`` for what may change).  SIGINT (Ctrl-C), SIGTERM, SIGHUP finish the step, save, and raise
    ``TrainingInterrupted``; a non-finite loss raises ``TrainingDiverged`` before its update (``RunState``).
    """
    _check_dtypes(model)
    data_rng = np.random.default_rng(config.seed)
    optimizer = make_optimizer(model, config)
    result = TrainResult(trainable_parameters=model.num_parameters(trainable_only=True))
    state = RunState(model, optimizer, data_rng, result, config, out_dir, run, on_checkpoint)
    start = state.resume() if resume else state.start_fresh()
    if result.already_finished:
        return result
    min_lr = config.lr / 10 if config.min_lr is None else config.min_lr

    def evaluate(step: int) -> dict[str, Any]:
        metrics = task.evaluate(model)
        model.train()
        if on_eval is not None:
            on_eval(step, metrics)
        result.evals.append({"step": step, **metrics})  # after on_eval: an interrupted callback records no eval
        return metrics

    model.train()
    device = model.device
    with state.running():  # a stop signal: checkpoint, TrainingInterrupted; a NaN loss: TrainingDiverged
        for step in progress(range(start, config.steps), desc=desc, initial=start, total=config.steps, leave=False):
            with state.step(step):  # a stop signal waits for the end of the step
                step_start = time.perf_counter()
                lr = optimizer.lr = warmup_cosine(step, config.lr, config.warmup_steps, config.steps, min_lr)
                x, y = task.sample_batch(data_rng, config.batch_size)
                loss, grad_norm = train_step(model, optimizer, backend.to_device(x, device),
                                             Tensor(backend.to_device(y, device)), config.grad_clip)
                result.history.append({"step": step, "loss": loss.item(), "lr": lr, "grad_norm": grad_norm,
                                       "seconds": time.perf_counter() - step_start})
                if on_step is not None:
                    on_step(step + 1)
            if config.eval_every and (step + 1) % config.eval_every == 0 and step + 1 < config.steps:
                evaluate(step + 1)
            state.maybe_checkpoint()
        result.final_metrics = evaluate(config.steps)
        state.finish()
    return result
