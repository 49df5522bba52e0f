"""One owner per run folder: where runs write, checked before any work and locked for the run's whole life.

A run (``pretrain``, ``finetune``, a ``compare`` folder, one entry of a sweep's run cache) takes an OS lock on its
folder before it looks inside, and keeps it until it ends:

    lock ``<folder>/.lock`` (flock, exclusive, non-blocking) ──held──► check the folder ──► train, write ──► release

A second process on the same folder (a new run, or ``--resume`` of a live one) is refused in one line naming the
process id that holds the lock (written into the lock file).  The kernel releases a flock when its process dies,
however it dies (even ``kill -9``), so a lock left by a dead run never blocks anyone.  ``fcntl`` is POSIX only;
on Windows, where it is missing, runs are not locked.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from minilora.alternatives.files import ALT_CONFIG_NAME, ALT_WEIGHTS_NAME
from minilora.experiments.results import RUN_FILE, writing
from minilora.io import check_writable_folder, clean_temporaries
from minilora.lora.adapters import CONFIG_NAME, WEIGHTS_NAME
from minilora.models.checkpoint import MODEL_FILE, SNAPSHOT_DIR
from minilora.train import CHECKPOINT_FILE, HISTORY_FILE

try:
    import fcntl
except ImportError:  # Windows: no flock
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "LOCK_FILE",
    "RUN_FILES",
    "FolderBusy",
    "FolderLock",
    "check_writable",
    "default_run_folder",
    "prepare_run_folder",
    "read_run",
    "run_folder",
    "writing",
]

LOCK_FILE = ".lock"  # the lock of a run folder; it holds the pid of the process that owns the folder
# every file a pretrain or finetune run writes into its folder (and nothing else may be there)
RUN_FILES = (RUN_FILE, HISTORY_FILE, CHECKPOINT_FILE, MODEL_FILE, SNAPSHOT_DIR, CONFIG_NAME, WEIGHTS_NAME,
             ALT_CONFIG_NAME, ALT_WEIGHTS_NAME, LOCK_FILE)


class FolderBusy(ValueError):
    """Another live process holds the lock; ``pid`` is its process id (None when it could not be read)."""

    def __init__(self, message: str, pid: int | None) -> None:
        super().__init__(message)
        self.pid = pid


def _holder_pid(fd: int, attempts: int = 40, pause_s: float = 0.005) -> int | None:
    """The pid the lock's holder wrote into the file, or None.  A holder writes it just after taking the lock, so
    a process refused in between finds the file empty: it reads again for up to ``attempts`` · ``pause_s``."""
    for attempt in range(attempts):
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        if holder.isdigit():
            return int(holder)
        if attempt + 1 < attempts:
            time.sleep(pause_s)
    return None


class FolderLock:
    """An exclusive OS lock on the file ``path`` (``flock``), with the owner's pid written into it.

    ``acquire()`` refuses at once with ``FolderBusy`` when another process (or another ``FolderLock`` on the same
    path) holds it; ``acquire(wait=True)`` waits for it instead.  Use it as a context manager.
    """

    def __init__(self, path: str | os.PathLike, what: str = "folder") -> None:
        self.path, self.what = Path(path), what
        self._fd: int | None = None

    def acquire(self, wait: bool = False) -> FolderLock:
        """Take the lock (creating the file and its folder), or raise ``FolderBusy`` naming the holder's pid."""
        if self._fd is not None or fcntl is None:
            return self
        with writing(self.path):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)  # no O_TRUNC: the holder's pid stays readable
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            pid = _holder_pid(fd)
            os.close(fd)
            who = f"process {pid}" if pid is not None else "another process"
            raise FolderBusy(f"{self.what} {self.path.parent} is in use by {who} (it holds {self.path}); wait for "
                             f"it to finish, or choose another folder", pid) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Give the lock back (the file stays; an unlocked file means nothing)."""
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def __enter__(self) -> FolderLock:  # noqa: PYI034 (Self needs Python 3.11)
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def check_writable(path: str | os.PathLike, what: str = "output folder") -> Path:
    """``path`` is, or can become, a writable folder (nothing is created); a one-line ValueError otherwise."""
    return check_writable_folder(path, what)


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
        status = run.get("status", "unknown")
        status = "stopped (its process died)" if status == "running" else status  # we hold the lock: no live writer
        what += f", {status} at step {run['steps_done']} of {run['train_config']['steps']}"
    return what


def prepare_run_folder(out: str | Path, resume: bool = False, overwrite: bool = False) -> Path:
    """Check (and create) a run's output folder before any work; returns it.  Call it holding the folder's lock
    (``run_folder`` does both).

    Refused, each with a one-line ValueError: a path that is a file or cannot be written; ``resume`` without
    a checkpoint there; a folder holding files that are not a minilora run's; a folder holding another run,
    unless ``resume`` (continue it) or ``overwrite`` (delete that run's files first).  Stale temporary files
    of killed writes are removed.
    """
    folder = Path(out)
    if resume and overwrite:
        raise ValueError("resume and overwrite exclude each other: resume continues the run in the folder, "
                         "overwrite deletes it")
    if resume and not (folder / CHECKPOINT_FILE).is_file():
        raise ValueError(f"nothing to resume in {folder}: there is no {CHECKPOINT_FILE}")
    clean_temporaries(check_writable(folder))
    present = sorted(p.name for p in folder.iterdir() if p.name != LOCK_FILE) if folder.is_dir() else []
    if resume or not present:
        return folder
    foreign = [name for name in present if name not in RUN_FILES]
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise ValueError(f"{folder} is not empty and holds files no minilora run writes ({shown}); "
                         f"choose a new or empty folder")
    if not overwrite:
        resume_hint = "pass --resume to continue it, " if (folder / CHECKPOINT_FILE).is_file() else ""
        raise ValueError(f"{folder} already holds {_describe(folder)}; {resume_hint}--overwrite to replace it, "
                         f"or choose another folder")
    for name in present:
        path = folder / name
        if name == SNAPSHOT_DIR and path.is_dir():  # a pretraining run's snapshots (steps/step-<S>.safetensors)
            for snapshot in path.iterdir():
                snapshot.unlink()
            path.rmdir()
        else:
            path.unlink()
    return folder


@contextlib.contextmanager
def run_folder(out: str | Path, resume: bool = False, overwrite: bool = False) -> Iterator[Path]:
    """Own the run folder ``out`` for the ``with`` block: check it is writable, lock it (a live owner elsewhere is
    refused, naming its pid), then ``prepare_run_folder``; the lock is released when the block ends."""
    folder = check_writable(out)
    created, lock = not folder.exists(), folder / LOCK_FILE
    had_lock = lock.exists()
    with FolderLock(lock, "run folder"):
        try:
            yield prepare_run_folder(folder, resume, overwrite)
        except BaseException:  # refused, or failed before writing a file: leave the folder as it was found
            if not had_lock and not any(p.name in RUN_FILES and p != lock for p in folder.iterdir()):
                lock.unlink()
                if created and not any(folder.iterdir()):
                    folder.rmdir()
            raise


def default_run_folder(task: str, method: str, rank: int | None, seed: int, root: str | Path = "runs",
                       fresh: bool = True) -> Path:
    """Where a fine-tuning run goes without an explicit folder: ``runs/finetune-<task>-<method>[-r<r>]-s<seed>``.

    ``fresh`` picks the first of that name, ``...-2``, ``...-3``, ... that does not exist yet (a new run never
    lands in an old run's folder); without it the plain name is returned (to resume or overwrite it).
    """
    name = f"finetune-{task}-{method}" + (f"-r{rank}" if rank is not None else "") + f"-s{seed}"
    folder = Path(root) / name
    number = 1
    while fresh and folder.exists():
        number += 1
        folder = Path(root) / f"{name}-{number}"
    return folder
