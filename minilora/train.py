"""One training loop for every method: pretraining, full fine-tuning, LoRA and subspace runs.

The method decides *which* parameters are trainable (``requires_grad``) before the loop starts; the
loop itself is the same: sample a batch, forward, loss, backward, clip, AdamW step with a warm-up +
cosine learning rate, evaluate now and then, checkpoint atomically.  A run is deterministic on
CPU for a given seed, and a run stopped and resumed from its checkpoint ends with the same weights
as one that never stopped (the data generator's and dropout generators' states are saved too).

A run never wastes its work or lies about itself: every setting is checked before the first step; the
output folder is checked (writable, no other run's checkpoint) before the first step; a resume with
settings other than the checkpoint's is refused (only ``steps`` may grow, and the growth is recorded);
a non-finite loss stops the run before the weights are updated; Ctrl-C finishes the step and the write
in progress, saves a checkpoint and raises ``TrainingInterrupted``.
"""

from __future__ import annotations

import contextlib
import json
import math
import signal
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
from tqdm.auto import tqdm

from minilora import backend
from minilora.data.registry import Task
from minilora.io import atomic_write_json, check_writable_folder, clean_temporaries
from minilora.nn import Dropout, Embedding, Module
from minilora.optim import AdamW, Optimizer, clip_grad_norm, warmup_cosine
from minilora.engine.tensor import Tensor
from minilora.train_state import load_training_state, read_training_state, save_training_state

__all__ = ["TrainConfig", "TrainResult", "Task", "train", "train_step", "make_optimizer", "decay_groups",
           "TrainingDiverged", "TrainingInterrupted", "checkpoint_state", "CHECKPOINT_FILE", "HISTORY_FILE"]

CHECKPOINT_FILE = "checkpoint.safetensors"
HISTORY_FILE = "history.json"


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


# the smallest value of each integer setting, and of each real one (with True when the bound itself is refused)
_INT_FIELDS = {"steps": 1, "batch_size": 1, "warmup_steps": 0, "eval_every": 0, "checkpoint_every": 0, "seed": 0}
_REAL_FIELDS = {"lr": (0.0, True), "min_lr": (0.0, False), "weight_decay": (0.0, False), "grad_clip": (0.0, False)}
# settings that may differ when a run is resumed: steps (the run is extended) and how often it checkpoints
_RESUMABLE_CHANGES = ("steps", "checkpoint_every")


@dataclass
class TrainConfig:
    """Hyper-parameters of one run (saved next to its results); every one is checked here, a bad value is a
    ValueError naming it.  ``grad_clip`` 0 means no clipping; ``eval_every`` / ``checkpoint_every`` 0 mean
    only at the end."""

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
        for name, least in _INT_FIELDS.items():
            value = getattr(self, name)
            if not _is_int(value) or value < least:
                raise ValueError(f"TrainConfig: {name} must be an integer >= {least}, got {value!r}")
            setattr(self, name, int(value))
        for name, (least, open_below) in _REAL_FIELDS.items():
            value = getattr(self, name)
            if value is None and name == "min_lr":
                continue
            if not _is_real(value) or not math.isfinite(value) or value < least or (open_below and value == least):
                bound = f"> {least:g}" if open_below else f">= {least:g}"
                raise ValueError(f"TrainConfig: {name} must be a finite number {bound}, got {value!r}")
            setattr(self, name, float(value))
        try:
            betas = tuple(self.betas)
        except TypeError:
            betas = ()
        if len(betas) != 2 or not all(_is_real(b) and 0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"TrainConfig: betas must be two numbers in [0, 1), got {self.betas!r}")
        self.betas = (float(betas[0]), float(betas[1]))
        if self.min_lr is not None and self.min_lr > self.lr:
            raise ValueError(f"TrainConfig: min_lr ({self.min_lr:g}) must not exceed lr ({self.lr:g})")


@dataclass
class TrainResult:
    """Loss per step, evaluations, final metrics and timing of a run.

    ``history`` holds one dict per step: step, loss, lr, grad_norm and seconds (the step's wall time:
    batch, forward, backward, clipping and optimizer update; evaluations and checkpoints excluded).
    ``extensions`` records each resume that raised ``steps`` ({"at_step", "from_steps", "to_steps"}: the
    cosine schedule was stretched from then on); ``already_finished`` is True when ``train`` was asked to
    resume a run that had finished, and so did nothing.
    """

    history: list[dict[str, Any]] = field(default_factory=list)
    evals: list[dict[str, Any]] = field(default_factory=list)
    final_metrics: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    trainable_parameters: int = 0
    extensions: list[dict[str, int]] = field(default_factory=list)
    already_finished: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class TrainingDiverged(ValueError):
    """The loss (or the gradient norm) became NaN or infinite; the weights were not updated by that step."""

    def __init__(self, message: str, step: int | None = None) -> None:
        super().__init__(message)
        self.step = step


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped training after ``step`` finished steps; ``checkpoint`` (when not None) resumes it."""

    def __init__(self, step: int, checkpoint: Path | None) -> None:
        where = f"checkpoint saved to {checkpoint}" if checkpoint is not None else "nothing saved (no out_dir)"
        super().__init__(f"training interrupted after {step} steps; {where}")
        self.step, self.checkpoint = step, checkpoint


class _InterruptGuard:
    """Ctrl-C inside ``critical()`` (a training step, a checkpoint write) takes effect when the section ends.

    Installed only in the main thread and only over Python's default SIGINT handler; elsewhere it does nothing
    (a KeyboardInterrupt raised by other code is still handled by ``train``).
    """

    def __init__(self) -> None:
        self.depth, self.pending, self.previous = 0, False, None

    def __enter__(self) -> "_InterruptGuard":
        if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.depth:
            self.pending = True
        else:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def critical(self, raise_pending: bool = True) -> Any:
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1
        if raise_pending and self.pending and not self.depth:
            self.pending = False
            raise KeyboardInterrupt


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
    or None when there is none; the arrays are not read."""
    path = Path(out_dir) / CHECKPOINT_FILE
    return read_training_state(path) if path.is_file() else None


def _json_form(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists), to compare settings with a checkpoint's."""
    return json.loads(json.dumps(value))


def _check_resume(state: dict[str, Any], config: TrainConfig, run: dict[str, Any] | None, path: Path) -> None:
    """Refuse to resume the run in ``path`` with settings other than its own (only ``steps`` may grow)."""
    done = int(state["step"])
    recorded = {**state.get("run", {}), **state.get("train_config", {})}
    wanted = _json_form({**(run or {}), **asdict(config)})
    for key, old in recorded.items():
        if key in _RESUMABLE_CHANGES or key not in wanted or wanted[key] == old:
            continue
        raise ValueError(f"cannot resume {path}: it was trained with {key} = {old!r}, not {wanted[key]!r}; only "
                         f"the number of steps may change when resuming (start a new run in another folder instead)")
    if config.steps < done:
        raise ValueError(f"cannot resume {path} with steps = {config.steps}: it has already done {done} steps; "
                         f"resume with steps >= {done}")


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
          run: dict[str, Any] | None = None) -> TrainResult:
    """Train the parameters of ``model`` that require grad on ``task``; returns the loss history and metrics.

    Per step: lr_t = warmup_cosine(t);  loss = cross_entropy(model(x), y);  g = clip(∇loss);  AdamW(g).
    With ``out_dir``, ``checkpoint.safetensors`` and ``history.json`` are written there (atomically); the
    folder is checked first, and stale temporary files of killed writes are removed.  ``run`` (JSON-able
    settings such as task and method) is recorded in the checkpoint beside the ``TrainConfig``.
    ``resume=True`` continues from that checkpoint; any recorded setting that differs is a ValueError, except
    ``steps``, which may grow (``result.extensions``); resuming a finished run changes nothing
    (``result.already_finished``).  A non-finite loss raises ``TrainingDiverged`` naming the step (the last
    checkpoint stays); Ctrl-C saves a checkpoint after the step in progress and raises ``TrainingInterrupted``.
    """
    _check_dtypes(model)
    data_rng = np.random.default_rng(config.seed)
    optimizer = make_optimizer(model, config)
    result = TrainResult(trainable_parameters=model.num_parameters(trainable_only=True))
    min_lr = config.lr / 10 if config.min_lr is None else config.min_lr
    checkpoint = None
    if out_dir is not None:
        clean_temporaries(check_writable_folder(out_dir))
        checkpoint = Path(out_dir) / CHECKPOINT_FILE
    start, saved = 0, None
    if resume:
        if checkpoint is None or not checkpoint.is_file():
            raise ValueError(f"resume=True but there is no checkpoint at {checkpoint}")
        _check_resume(read_training_state(checkpoint), config, run, checkpoint)
        state = load_training_state(checkpoint, model, optimizer)
        _restore_rngs(model, data_rng, state["rngs"])
        start = saved = int(state["step"])
        result.history, result.evals = state["history"], state["evals"]
        result.seconds = float(state["seconds"])
        result.extensions = state.get("extensions", [])
        previous_steps = int(state["train_config"]["steps"])
        if state.get("finished") and start == config.steps:
            result.final_metrics, result.already_finished = state["final_metrics"], True
            return result
        if config.steps != previous_steps:
            result.extensions.append({"at_step": start, "from_steps": previous_steps, "to_steps": config.steps})
    elif checkpoint is not None and checkpoint.exists():
        raise ValueError(f"{out_dir} already holds a training checkpoint; pass resume=True to continue that run, "
                         f"or train into another folder")

    def save(step: int, finished: bool = False) -> None:
        state = {"step": step, "rngs": _rng_states(model, data_rng), "history": result.history,
                 "evals": result.evals, "seconds": result.seconds, "train_config": asdict(config), "run": run or {},
                 "extensions": result.extensions, "finished": finished, "final_metrics": result.final_metrics}
        save_training_state(checkpoint, model, optimizer, state)
        atomic_write_json(Path(out_dir) / HISTORY_FILE, result.to_dict())

    def evaluate(step: int) -> dict[str, Any]:
        metrics = task.evaluate(model)
        model.train()
        if on_eval is not None:
            on_eval(step, metrics)
        result.evals.append({"step": step, **metrics})  # after on_eval: an interrupted callback records no eval
        return metrics

    model.train()
    device = model.device
    t0 = time.perf_counter() - result.seconds
    done, snapshot, guard = start, None, _InterruptGuard()
    with guard:
        try:
            for step in tqdm(range(start, config.steps), desc=desc, initial=start, total=config.steps, leave=False):
                snapshot = _rng_states(model, data_rng) if checkpoint is not None else None  # the state before the step
                step_start = time.perf_counter()
                lr = warmup_cosine(step, config.lr, config.warmup_steps, config.steps, min_lr)
                optimizer.lr = lr
                x, y = task.sample_batch(data_rng, config.batch_size)
                with guard.critical():  # Ctrl-C waits for the update and the history line
                    loss, grad_norm = train_step(model, optimizer, backend.to_device(x, device),
                                                 Tensor(backend.to_device(y, device)), config.grad_clip)
                    done, snapshot = step + 1, None
                    result.history.append({"step": step, "loss": loss.item(), "lr": lr, "grad_norm": grad_norm,
                                           "seconds": time.perf_counter() - step_start})
                if config.eval_every and done % config.eval_every == 0 and done < config.steps:
                    evaluate(done)
                result.seconds = time.perf_counter() - t0
                if checkpoint is not None and config.checkpoint_every and done % config.checkpoint_every == 0:
                    with guard.critical():
                        save(done)
                        saved = done
            result.final_metrics = evaluate(config.steps)
            result.seconds = time.perf_counter() - t0
            if checkpoint is not None:
                with guard.critical():
                    save(config.steps, finished=True)
        except TrainingDiverged as err:
            kept = f"the checkpoint of step {saved} in {out_dir} is kept" if saved is not None else "no checkpoint was written"
            raise TrainingDiverged(
                f"training diverged at step {done}: {err}; the weights were not updated and {kept}. Likely causes: "
                f"a learning rate too high (lr {config.lr:g}: try a smaller one) or a low-precision dtype", step=done) from None
        except KeyboardInterrupt:
            if checkpoint is None:
                raise TrainingInterrupted(done, None) from None
            if snapshot is not None:  # stopped inside a step before its update: undo its random draws
                _restore_rngs(model, data_rng, snapshot)
            result.seconds = time.perf_counter() - t0
            with guard.critical(raise_pending=False):
                save(done)
            raise TrainingInterrupted(done, checkpoint) from None
    return result
