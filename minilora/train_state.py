"""Everything around the training loop, so that ``train()`` reads as the loop itself: the run's record
(``TrainResult``), its checkpoint file, resume, random-generator snapshots, stop signals and divergence, behind
one object, ``RunState``.

The checkpoint is one safetensors file: arrays named ``model.<parameter path>`` and
``optim.<parameter path>.<buffer>``, and in its metadata the ``state`` as JSON (the step, the random generators'
states, the history so far, the TrainConfig and the run's identity).  It knows Modules and Optimizers, not which
model they are, so pretraining, full fine-tuning, LoRA and subspace runs all resume the same way.

Why a resumed run ends with the same weights, bit for bit, as one that never stopped: a checkpoint is written
only between steps and holds everything the next step reads (weights, AdamW's moments and step count, the data
generator's and every dropout generator's state).  Writing one reads that state and changes none of it, so how
often a run checkpoints (or whether it does) never changes its numbers.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from minilora.io import (
    atomic_write_json,
    check_writable_folder,
    clean_temporaries,
    load_arrays,
    load_metadata,
    save_arrays,
    strip_prefix,
)
from minilora.nn import Dropout, Module
from minilora.optim import Optimizer

__all__ = ["RunState", "StopSignals", "TrainResult", "TrainingDiverged", "TrainingInterrupted", "save_training_state",
           "load_training_state", "read_training_state", "CHECKPOINT_FILE", "HISTORY_FILE", "RESUMABLE_CHANGES",
           "STOP_SIGNALS", "TRAIN_STATE_FORMAT"]

CHECKPOINT_FILE = "checkpoint.safetensors"
HISTORY_FILE = "history.json"
TRAIN_STATE_FORMAT = "minilora-checkpoint-v1-train"
# the TrainConfig fields a resumed run may change: none of them changes what a step computes
# (steps may only grow: the cosine schedule is stretched from the resume on, and the run records it)
RESUMABLE_CHANGES = ("steps", "eval_every", "checkpoint_every", "checkpoint_seconds")
# the signals that stop a run cleanly: Ctrl-C; kill, timeout and batch schedulers; a closed terminal
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


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

    def __reduce__(self) -> tuple[Any, ...]:  # survives a process pool's pickling with its step
        return type(self), (str(self), self.step)


class TrainingInterrupted(KeyboardInterrupt):
    """A stop signal (``signal``: SIGINT = Ctrl-C, SIGTERM or SIGHUP; SIGINT for a KeyboardInterrupt raised by code)
    stopped training after ``step`` finished steps; ``checkpoint`` (when not None) resumes it.  A command that
    stops for it exits with status 128 + ``signal``, as a shell does."""

    def __init__(self, step: int, checkpoint: Path | None, signum: int = signal.SIGINT) -> None:
        where = f"checkpoint saved to {checkpoint}" if checkpoint is not None else "nothing saved (no out_dir)"
        super().__init__(f"training interrupted by {signal.Signals(signum).name} after {step} steps; {where}")
        self.step, self.checkpoint, self.signal = step, checkpoint, int(signum)

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.step, self.checkpoint, self.signal)


# -- the checkpoint file -----------------------------------------------------------------------------------


def save_training_state(path: str | os.PathLike, model: Module, optimizer: Optimizer, state: dict[str, Any]) -> None:
    """Write weights, optimizer moments and ``state`` (step, RNG states, history) for ``resume``."""
    names = {id(p): name for name, p in model.named_parameters()}
    arrays = {f"model.{k}": v for k, v in model.state_dict().items()}
    arrays.update({f"optim.{k}": v for k, v in optimizer.state_dict(names).items()})
    save_arrays(path, arrays, {"format": TRAIN_STATE_FORMAT, **state})


def _check_format(path: str | os.PathLike, meta: dict[str, Any]) -> None:
    if meta.get("format") != TRAIN_STATE_FORMAT:
        raise ValueError(f"{path} is not a minilora training checkpoint (format {meta.get('format')!r})")


def read_training_state(path: str | os.PathLike) -> dict[str, Any]:
    """The ``state`` of a training checkpoint without loading its arrays (to check a resume before any work)."""
    meta = load_metadata(path)
    _check_format(path, meta)
    return meta


def load_training_state(path: str | os.PathLike, model: Module, optimizer: Optimizer) -> dict[str, Any]:
    """Restore what ``save_training_state`` wrote into ``model`` and ``optimizer``; returns ``state``."""
    arrays, meta = load_arrays(path)
    _check_format(path, meta)
    try:
        model.load_state_dict(strip_prefix(arrays, "model."))
        optimizer.load_state_dict(strip_prefix(arrays, "optim."), dict(model.named_parameters()))
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    return meta


def _rng_states(model: Module, data_rng: np.random.Generator) -> dict[str, Any]:
    """The states of the data generator and of every dropout generator (reading them draws nothing)."""
    dropout = {name: m.rng.bit_generator.state for name, m in model.named_modules() if isinstance(m, Dropout)}
    return {"data": data_rng.bit_generator.state, "dropout": dropout}


def _restore_rngs(model: Module, data_rng: np.random.Generator, states: dict[str, Any]) -> None:
    data_rng.bit_generator.state = states["data"]
    for name, m in model.named_modules():
        if isinstance(m, Dropout) and name in states["dropout"]:
            m.rng.bit_generator.state = states["dropout"][name]


def _flat(settings: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested settings as one level: {"settings": {"r": 2}} → {"settings.r": 2}, so a refusal names the one that
    differs."""
    flat: dict[str, Any] = {}
    for key, value in settings.items():
        flat.update(_flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
    return flat


def _check_resume(state: dict[str, Any], wanted: dict[str, Any], path: Path) -> None:
    """Refuse to resume the run in ``path`` with settings other than its own (``wanted``: the run's identity and
    TrainConfig); only ``RESUMABLE_CHANGES`` may differ, and ``steps`` may not fall below the steps done.  A
    setting the checkpoint does not record (written before that setting existed) is not compared."""
    done = int(state["step"])
    recorded = _flat({**state.get("run", {}), **state.get("train_config", {})})
    wanted = _flat(json.loads(json.dumps(wanted)))  # as it reads back from JSON: tuples become lists
    for key, old in recorded.items():
        if key in RESUMABLE_CHANGES or key not in wanted or wanted[key] == old:
            continue
        raise ValueError(f"cannot resume {path}: it was trained with {key} = {old!r}, not {wanted[key]!r}; only "
                         f"{', '.join(RESUMABLE_CHANGES)} may change when resuming (start a new run in another "
                         f"folder instead)")
    if wanted["steps"] < done:
        raise ValueError(f"cannot resume {path} with steps = {wanted['steps']}: it has already done {done} steps; "
                         f"resume with steps >= {done}")


# -- stop signals --------------------------------------------------------------------------------------------


class StopSignals:
    """SIGINT (Ctrl-C), SIGTERM (``kill``, ``timeout``, a batch scheduler) and SIGHUP (a closed terminal) become a
    KeyboardInterrupt, and ``received`` says which one came.  Inside ``critical()`` (a training step, a checkpoint
    write) the signal waits for the end of the section; elsewhere (an evaluation) it acts at once.

    The handlers are installed for the ``with`` block only, and only where they may be: in the main thread (a run
    in a worker thread leaves signals alone), over a signal's default disposition only.  A signal the process
    inherited as ignored (``nohup``, a script's background job) stays ignored, as POSIX asks; a handler that
    someone else installed stays theirs.
    """

    def __init__(self) -> None:
        self.depth, self.pending, self.received = 0, False, None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                default = signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL
                if signal.getsignal(sig) is default:
                    self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()

    def _handle(self, signum: int, frame: Any) -> None:
        self.received = signum
        if self.depth:
            self.pending = True
        else:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def critical(self, raise_pending: bool = True) -> Iterator[None]:
        """A section a stop signal does not cut: one that came meanwhile is raised at its end, unless
        ``raise_pending`` is False (the write that saves the run at a stop)."""
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1
        if raise_pending and self.pending and not self.depth:
            self.pending = False
            raise KeyboardInterrupt


# -- the run around the loop ---------------------------------------------------------------------------------


class RunState:
    """The bookkeeping of one run around its loop: where it is saved, where it resumes from, when it checkpoints,
    and what a stop signal or a diverged step does.  ``done`` counts the finished steps.

    ``train`` calls, in this order: ``resume()`` or ``start_fresh()`` (the first step); ``running()`` (a with-block
    around the loop); ``step(t)`` (a with-block around step t); ``maybe_checkpoint()`` after each step; ``finish()``.
    Without ``out_dir`` nothing is written and a stop only raises.  ``config`` is the run's TrainConfig (this module
    sits below ``train`` and reads its fields: steps, lr, checkpoint_every, checkpoint_seconds).
    ``on_checkpoint(done, status)`` is called right after every checkpoint write, with status "running"
    (periodic), "interrupted" (a stop) or "finished" (the end).
    """

    def __init__(self, model: Module, optimizer: Optimizer, data_rng: np.random.Generator, result: TrainResult,
                 config: Any, out_dir: str | os.PathLike | None = None, run: dict[str, Any] | None = None,
                 on_checkpoint: Callable[[int, str], None] | None = None) -> None:
        self.model, self.optimizer, self.data_rng, self.result, self.config = model, optimizer, data_rng, result, config
        self.run, self.on_checkpoint = run or {}, on_checkpoint
        self.out_dir = self.checkpoint = None
        if out_dir is not None:  # checked before any work; what killed writes left behind is removed
            clean_temporaries(check_writable_folder(out_dir))
            self.out_dir, self.checkpoint = Path(out_dir), Path(out_dir) / CHECKPOINT_FILE
        self.done, self.saved, self.finished = 0, None, False  # steps finished; the newest checkpoint's step; final?
        self.signals = StopSignals()
        self._snapshot: dict[str, Any] | None = None  # the generators' states before the step in progress
        self._started = self._last_save = 0.0

    def start_fresh(self) -> int:
        """A new run: refused when ``out_dir`` already holds a checkpoint (another run's work).  Returns 0."""
        if self.checkpoint is not None and self.checkpoint.exists():
            raise ValueError(f"{self.out_dir} already holds a training checkpoint; pass resume=True to continue that "
                             f"run, or train into another folder")
        return 0

    def resume(self) -> int:
        """Load the checkpoint into the model, the optimizer, the generators and the result; returns the step to
        continue from.  Refused before any work without a checkpoint or with settings other than its own
        (``_check_resume``); more ``steps`` are recorded in ``result.extensions``; a finished run resumed with its
        own steps sets ``result.already_finished`` and ``final_metrics`` (nothing is left to do)."""
        if self.checkpoint is None or not self.checkpoint.is_file():
            raise ValueError(f"resume=True but there is no checkpoint at {self.checkpoint}")
        _check_resume(read_training_state(self.checkpoint), {**self.run, **asdict(self.config)}, self.checkpoint)
        state = load_training_state(self.checkpoint, self.model, self.optimizer)
        _restore_rngs(self.model, self.data_rng, state["rngs"])
        self.done = self.saved = int(state["step"])
        result, steps, previous = self.result, self.config.steps, int(state["train_config"]["steps"])
        result.history, result.evals, result.seconds = state["history"], state["evals"], float(state["seconds"])
        result.extensions = state.get("extensions", [])
        if state.get("finished") and self.done == steps:
            result.final_metrics, result.already_finished = state["final_metrics"], True
        elif steps != previous:
            result.extensions.append({"at_step": self.done, "from_steps": previous, "to_steps": steps})
        return self.done

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """The with-block around the loop.  Stop signals are handled inside it, and a run that ends early ends with
        one clear exception: a stop (a signal, or a KeyboardInterrupt raised inside) writes the checkpoint of the
        steps done and raises ``TrainingInterrupted``; a non-finite loss raises ``TrainingDiverged`` naming the step
        (that step updated nothing and the newest checkpoint stays)."""
        self._started = time.perf_counter() - self.result.seconds
        self._last_save = time.perf_counter()
        with self.signals:
            try:
                yield
            except TrainingDiverged as err:
                kept = (f"the checkpoint of step {self.saved} in {self.out_dir} is kept" if self.saved is not None
                        else "no checkpoint was written")
                raise TrainingDiverged(
                    f"training diverged at step {self.done}: {err}; the weights were not updated and {kept}. Likely "
                    f"causes: a learning rate too high (lr {self.config.lr:g}: try a smaller one) or a low-precision "
                    f"dtype", step=self.done) from None
            except KeyboardInterrupt:
                self._stop()

    @contextlib.contextmanager
    def step(self, step: int) -> Iterator[None]:
        """The with-block around step ``step``: a stop signal waits for its end, then ``done`` is step + 1.  When an
        exception leaves it early, ``done`` stays and the generators' states from before the step are kept, so a
        checkpoint written at the stop does not count the random numbers the unfinished step drew."""
        self._snapshot = _rng_states(self.model, self.data_rng) if self.checkpoint is not None else None
        with self.signals.critical():
            yield
            self.done, self._snapshot = step + 1, None

    def maybe_checkpoint(self) -> None:
        """After a step: write a checkpoint when ``checkpoint_every`` divides the steps done, or when
        ``checkpoint_seconds`` of wall time have passed since the last one (0 turns either off)."""
        every, seconds = self.config.checkpoint_every, self.config.checkpoint_seconds
        if self.checkpoint is not None and ((every and self.done % every == 0) or
                                            (seconds and time.perf_counter() - self._last_save >= seconds)):
            self._save("running")

    def finish(self) -> None:
        """The end of the run: its wall time, and the last checkpoint, marked finished."""
        self.result.seconds = time.perf_counter() - self._started
        if self.checkpoint is not None:
            self._save("finished")

    def _stop(self) -> NoReturn:
        signum = self.signals.received or signal.SIGINT
        if self.checkpoint is None:
            raise TrainingInterrupted(self.done, None, signum) from None
        if self._snapshot is not None:  # stopped inside a step, before its update: undo its random draws
            _restore_rngs(self.model, self.data_rng, self._snapshot)
        if not self.finished:  # (a signal during the last write stops a run that is saved as finished)
            self._save("interrupted")
        raise TrainingInterrupted(self.done, self.checkpoint, signum) from None

    def _save(self, status: str) -> None:
        """Write the checkpoint of ``done`` steps and ``history.json`` (atomically), then call ``on_checkpoint``; a
        stop signal waits for all three, then stops the run (unless this write is the stop's own)."""
        with self.signals.critical(raise_pending=status != "interrupted"):
            result = self.result
            result.seconds = time.perf_counter() - self._started
            state = {"step": self.done, "rngs": _rng_states(self.model, self.data_rng), "history": result.history,
                     "evals": result.evals, "seconds": result.seconds, "train_config": asdict(self.config),
                     "run": self.run, "extensions": result.extensions, "finished": status == "finished",
                     "final_metrics": result.final_metrics}
            save_training_state(self.checkpoint, self.model, self.optimizer, state)
            atomic_write_json(self.out_dir / HISTORY_FILE, result.to_dict())
            self.saved, self.finished, self._last_save = self.done, status == "finished", time.perf_counter()
            if self.on_checkpoint is not None:
                self.on_checkpoint(self.done, status)
