"""One training loop for every method: pretraining, full fine-tuning, LoRA and subspace runs.

The method decides *which* parameters are trainable (``requires_grad``) before the loop starts; the
loop itself is the same: sample a batch, forward, loss, backward, clip, AdamW step with a warm-up +
cosine learning rate, evaluate now and then, checkpoint atomically.  A run is deterministic on
CPU for a given seed, and a run stopped and resumed from its checkpoint ends with the same weights
as one that never stopped (the data generator's and dropout generators' states are saved too).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
from tqdm.auto import tqdm

from minilora import backend
from minilora.data.registry import Task
from minilora.io import atomic_write_json
from minilora.nn import Dropout, Embedding, Module
from minilora.optim import AdamW, Optimizer, clip_grad_norm, warmup_cosine
from minilora.engine.tensor import Tensor
from minilora.train_state import load_training_state, save_training_state

__all__ = ["TrainConfig", "TrainResult", "Task", "train", "train_step", "make_optimizer", "decay_groups"]

CHECKPOINT_FILE = "checkpoint.safetensors"
HISTORY_FILE = "history.json"


@dataclass
class TrainConfig:
    """Hyper-parameters of one run (saved next to its results)."""

    steps: int = 1000
    batch_size: int = 64
    lr: float = 2e-3
    min_lr: float | None = None  # default lr / 10
    warmup_steps: int = 100
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.99)
    grad_clip: float = 1.0
    eval_every: int = 0  # 0: evaluate only at the end
    checkpoint_every: int = 0  # 0: checkpoint only at the end (when out_dir is given)
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"TrainConfig: {name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"TrainConfig: lr must be > 0, got {self.lr}")
        self.betas = tuple(self.betas)


@dataclass
class TrainResult:
    """Loss per step, evaluations, final metrics and timing of a run.

    ``history`` holds one dict per step: step, loss, lr, grad_norm and seconds (the step's wall time:
    batch, forward, backward, clipping and optimizer update; evaluations and checkpoints excluded).
    """

    history: list[dict[str, Any]] = field(default_factory=list)
    evals: list[dict[str, Any]] = field(default_factory=list)
    final_metrics: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    trainable_parameters: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _rng_states(model: Module, data_rng: np.random.Generator) -> dict[str, Any]:
    dropout = {name: m.rng.bit_generator.state for name, m in model.named_modules() if isinstance(m, Dropout)}
    return {"data": data_rng.bit_generator.state, "dropout": dropout}


def _restore_rngs(model: Module, data_rng: np.random.Generator, states: dict[str, Any]) -> None:
    data_rng.bit_generator.state = states["data"]
    for name, m in model.named_modules():
        if isinstance(m, Dropout) and name in states["dropout"]:
            m.rng.bit_generator.state = states["dropout"][name]


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
    """The run's AdamW over every parameter (state appears only for trainable ones); matrices decay, the rest not."""
    return AdamW(decay_groups(model, config.weight_decay), lr=config.lr, betas=config.betas)


def train_step(model: Module, optimizer: Optimizer, x: Any, y: Any, grad_clip: float) -> tuple[Tensor, float | None]:
    """One optimisation step on a batch already on the model's device: the loss and the gradient norm.

    loss = model(x, y);  g = ∇loss (gradients cleared first);  g ← clip(g, grad_clip) unless grad_clip is 0;
    then the optimizer's update.  Returns (loss, ||g|| before clipping, or None without clipping).
    """
    _, loss = model(x, y)
    optimizer.zero_grad()
    loss.backward()
    grad_norm = clip_grad_norm(model.parameters(), grad_clip) if grad_clip else None
    optimizer.step()
    return loss, grad_norm


def train(model: Module, task: Task, config: TrainConfig, out_dir: str | Path | None = None, resume: bool = False,
          desc: str = "train", on_eval: Callable[[int, dict[str, Any]], None] | None = None) -> TrainResult:
    """Train the parameters of ``model`` that require grad on ``task``; returns the loss history and metrics.

    Per step: lr_t = warmup_cosine(t);  loss = cross_entropy(model(x), y);  g = clip(∇loss);  AdamW(g).
    With ``out_dir``, ``checkpoint.safetensors`` and ``history.json`` are written there (atomically);
    ``resume=True`` continues from that checkpoint.
    """
    data_rng = np.random.default_rng(config.seed)
    optimizer = make_optimizer(model, config)
    result = TrainResult(trainable_parameters=model.num_parameters(trainable_only=True))
    min_lr = config.lr / 10 if config.min_lr is None else config.min_lr
    checkpoint = Path(out_dir) / CHECKPOINT_FILE if out_dir is not None else None
    start = 0
    if resume:
        if checkpoint is None or not checkpoint.is_file():
            raise ValueError(f"resume=True but there is no checkpoint at {checkpoint}")
        state = load_training_state(checkpoint, model, optimizer)
        _restore_rngs(model, data_rng, state["rngs"])
        start = int(state["step"])
        result.history, result.evals = state["history"], state["evals"]
        result.seconds = float(state["seconds"])

    def save(step: int) -> None:
        state = {"step": step, "rngs": _rng_states(model, data_rng), "history": result.history,
                 "evals": result.evals, "seconds": result.seconds, "train_config": asdict(config)}
        save_training_state(checkpoint, model, optimizer, state)
        atomic_write_json(Path(out_dir) / HISTORY_FILE, result.to_dict())

    def evaluate(step: int) -> dict[str, Any]:
        metrics = task.evaluate(model)
        model.train()
        result.evals.append({"step": step, **metrics})
        if on_eval is not None:
            on_eval(step, metrics)
        return metrics

    model.train()
    device = model.device
    t0 = time.perf_counter() - result.seconds
    for step in tqdm(range(start, config.steps), desc=desc, initial=start, total=config.steps, leave=False):
        step_start = time.perf_counter()
        lr = warmup_cosine(step, config.lr, config.warmup_steps, config.steps, min_lr)
        optimizer.lr = lr
        x, y = task.sample_batch(data_rng, config.batch_size)
        loss, grad_norm = train_step(model, optimizer, backend.to_device(x, device),
                                     Tensor(backend.to_device(y, device)), config.grad_clip)
        loss_value = loss.item()  # waits for the device, so "seconds" is the whole step
        result.history.append({"step": step, "loss": loss_value, "lr": lr, "grad_norm": grad_norm,
                               "seconds": time.perf_counter() - step_start})
        done = step + 1
        if config.eval_every and done % config.eval_every == 0 and done < config.steps:
            evaluate(done)
        result.seconds = time.perf_counter() - t0
        if checkpoint is not None and config.checkpoint_every and done % config.checkpoint_every == 0:
            save(done)
    result.final_metrics = evaluate(config.steps)
    result.seconds = time.perf_counter() - t0
    if checkpoint is not None:
        save(config.steps)
    return result
