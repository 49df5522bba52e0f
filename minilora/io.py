"""Files: atomic writes and safetensors reading/writing of host NumPy arrays.

Every file minilora writes goes to a temporary file in the same folder first and is then
renamed over the target (``os.replace`` is atomic), so a crash mid-write never leaves a
truncated file where a good one stood.  Arrays are always written from host memory, so a file
written on a GPU loads on a machine without CuPy.  Nothing is ever unpickled.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["atomic_write_bytes", "atomic_write_json", "save_arrays", "load_arrays", "load_metadata", "strip_prefix",
           "temporary_name", "clean_temporaries", "check_writable_folder", "TEMP_PATTERN"]

# ".<target name>.<12 hex digits>.tmp": the only names atomic_write_bytes gives its temporary files
TEMP_PATTERN = re.compile(r"^\..+\.[0-9a-f]{12}\.tmp$")


def temporary_name(path: Path) -> Path:
    """The temporary file an atomic write of ``path`` goes through: ``.<name>.<12 hex digits>.tmp`` beside it."""
    return path.parent / f".{path.name}.{uuid.uuid4().hex[:12]}.tmp"


def clean_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete what killed atomic writes left in ``folder``: files named like ``TEMP_PATTERN``, nothing else.

    A write killed between creating its temporary file and renaming it (``kill -9``, power loss) leaves
    the hidden file behind; the next run in the folder calls this.  Returns the files removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = [p for p in folder.iterdir() if TEMP_PATTERN.match(p.name) and p.is_file() and not p.is_symlink()]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def check_writable_folder(folder: str | os.PathLike, what: str = "output folder") -> Path:
    """Make sure ``folder`` is, or can become, a folder minilora can write into, before any work is done.

    Nothing is created: one temporary file is written and deleted in ``folder`` or, when it does not exist
    yet, in its nearest existing parent (writes create the missing folders later).  Any failure (it or a
    parent is a file, no permission, a read-only disk) is a one-line ValueError.
    """
    folder = Path(folder)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        where = "" if existing == folder else f" ({existing} is a file)"
        raise ValueError(f"{what} {folder} is a file, not a folder{where}; choose a folder path")
    try:
        probe = temporary_name(existing / "write-check")
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise ValueError(f"{what} {folder} is not writable: {err.strerror or err}") from None
    return folder


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    # not tempfile.mkstemp: its files are private (0600); os.open applies the umask as open() does
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def save_arrays(path: str | os.PathLike, arrays: dict[str, np.ndarray], metadata: dict[str, Any] | None = None) -> None:
    """Write host arrays (and JSON-able metadata) as one safetensors file, atomically.

    Arrays are made C-contiguous first: safetensors must not be handed strided views.
    """
    from safetensors.numpy import save

    contiguous = {name: np.asarray(a, order="C") for name, a in arrays.items()}  # ascontiguousarray makes 0-d 1-d
    meta = {"minilora": json.dumps(metadata or {})}
    atomic_write_bytes(path, save(contiguous, metadata=meta))


def load_arrays(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a safetensors file written by ``save_arrays``: (name → host array, metadata).

    A missing, truncated or corrupt file is a ValueError naming the file.
    """
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no such file: {path}")
    try:
        with safe_open(str(path), framework="numpy") as f:
            arrays = {name: f.get_tensor(name) for name in f.keys()}
            raw = (f.metadata() or {}).get("minilora", "{}")
        metadata = json.loads(raw)
    except Exception as err:  # safetensors raises its own error types for corrupt headers/data
        raise ValueError(f"cannot read {path}: not a valid safetensors file ({type(err).__name__}: {err})") from None
    return arrays, metadata


def load_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """Only the metadata of a file written by ``save_arrays`` (no array is read); errors as ``load_arrays``."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no such file: {path}")
    try:
        with safe_open(str(path), framework="numpy") as f:
            return json.loads((f.metadata() or {}).get("minilora", "{}"))
    except Exception as err:  # safetensors raises its own error types for corrupt headers
        raise ValueError(f"cannot read {path}: not a valid safetensors file ({type(err).__name__}: {err})") from None


def strip_prefix(arrays: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    """The arrays whose names start with ``prefix``, renamed without it (``"model.w"`` → ``"w"``)."""
    return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
