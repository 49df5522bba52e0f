"""Devices: which array module (NumPy or CuPy) holds a tensor's data, and moving data between them.

A *device* is a name (``"cpu"``, ``"cuda"``) bound to an array module ``xp`` with NumPy's API.
Code that does array math asks ``get_xp(array)`` for the module that owns the array, so one code
path runs on NumPy and on CuPy (the DeZero ``get_array_module`` pattern).

Random numbers are always drawn on the host with ``numpy.random.Generator`` and then moved with
``to_device``: the same seed gives the same initial weights on every device.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import os
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

__all__ = [
    "Device",
    "register_device",
    "available_devices",
    "cuda_available",
    "cuda_unavailable_message",
    "GPU_INSTALL",
    "default_device",
    "set_default_device",
    "get_xp",
    "device_of",
    "to_device",
    "to_host",
    "check_same_device",
    "keep_freed_host_memory",
]


@dataclass(frozen=True)
class Device:
    """A named place for arrays: its array module, its array type and the host transfers."""

    name: str
    xp: Any  # the array module: numpy, cupy, or a test stand-in with NumPy's API
    array_type: type
    from_host: Callable[[np.ndarray], Any]
    to_host: Callable[[Any], np.ndarray]


def _numpy_to_host(array: Any) -> np.ndarray:
    return np.asarray(array)


CPU = Device("cpu", np, np.ndarray, lambda a: a, _numpy_to_host)

# Devices other than the CPU, in the order they are checked by device_of(); "cuda" is added
# lazily by cuda_available(), test-only devices by register_device().
_extra_devices: dict[str, Device] = {}
_default_device: str | None = None


def register_device(device: Device) -> None:
    """Make a device known by name (used for CuPy and for the test-only strict device)."""
    if device.name == "cpu":
        raise ValueError("the 'cpu' device is built in and cannot be replaced")
    _extra_devices[device.name] = device


@functools.lru_cache(maxsize=None)
def cuda_available() -> bool:
    """True when CuPy imports, sees a GPU and can run one tiny kernel (checked once, cached).

    ``import cupy`` succeeding does not mean a GPU exists, so a kernel is actually launched.
    """
    try:
        import cupy

        if not cupy.cuda.is_available():
            return False
        probe = cupy.arange(4, dtype=cupy.float32) * 2
        if float(probe.sum()) != 12.0:
            return False
    except Exception:  # any failure (no driver, no device, broken install) means "no GPU"
        return False
    register_device(Device("cuda", cupy, cupy.ndarray, cupy.asarray, cupy.asnumpy))
    return True


def available_devices() -> list[str]:
    """Names of the devices usable now: always ``"cpu"``, ``"cuda"`` with a working GPU, test devices."""
    cuda_available()
    return ["cpu", *_extra_devices]


def _lookup(name: str) -> Device:
    if name == "cpu":
        return CPU
    if name == "cuda" and "cuda" not in _extra_devices:
        cuda_available()
    try:
        return _extra_devices[name]
    except KeyError:
        if name == "cuda":
            raise ValueError(cuda_unavailable_message()) from None
        raise ValueError(
            f"unknown or unavailable device {name!r}; expected one of {available_devices()}"
        ) from None


GPU_INSTALL = 'pip install "minilora[gpu]"'
"""The command that installs minilora's GPU extra (CuPy built for CUDA 12: cupy-cuda12x)."""


def cuda_unavailable_message() -> str:
    """One line saying why device "cuda" cannot be used and what to do: install CuPy, or find a GPU."""
    if importlib.util.find_spec("cupy") is None:
        return (f"device 'cuda' needs CuPy, which is not installed: {GPU_INSTALL} (CuPy for CUDA 12, "
                f"cupy-cuda12x), or use the device 'cpu'")
    return ("device 'cuda' is not available: CuPy is installed but found no working GPU (check nvidia-smi and "
            "that the CuPy package matches your CUDA version), or use the device 'cpu'")


def default_device() -> str:
    """The device new tensors go to: ``set_default_device(...)``, else env ``MINILORA_DEVICE``, else ``"cpu"``."""
    if _default_device is not None:
        return _default_device
    return os.environ.get("MINILORA_DEVICE", "cpu") or "cpu"


def set_default_device(name: str | None) -> None:
    """Set the device that creation functions use when no ``device=`` is given (None: back to env/cpu)."""
    global _default_device
    if name is not None:
        _lookup(name)  # fail now, with the list of devices, rather than at the first tensor
    _default_device = name


def _device_for_array(array: Any) -> Device:
    if isinstance(array, (np.ndarray, np.generic)):
        return CPU
    for device in _extra_devices.values():
        if isinstance(array, device.array_type):
            return device
    return CPU


def get_xp(array: Any) -> Any:
    """The array module (numpy, cupy, ...) that owns ``array``; Python scalars belong to numpy."""
    if type(array) is np.ndarray:  # fast path: the common case on CPU
        return np
    return _device_for_array(array).xp


def device_of(array: Any) -> str:
    """The device name of an array: ``"cpu"`` for NumPy arrays, ``"cuda"`` for CuPy arrays."""
    if type(array) is np.ndarray:
        return "cpu"
    return _device_for_array(array).name


def to_host(array: Any) -> np.ndarray:
    """Copy (if needed) an array from any device into a NumPy array."""
    return _device_for_array(array).to_host(array)


def to_device(array: Any, device: str | None = None) -> Any:
    """Move a host or device array to ``device`` (default: ``default_device()``); no copy if already there."""
    target = _lookup(device or default_device())
    source = _device_for_array(array)
    if source.name == target.name:
        return array
    host = source.to_host(array)
    return target.from_host(np.asarray(host, order="C"))  # not ascontiguousarray: it turns 0-d into 1-d


def check_same_device(arrays: tuple, op_name: str) -> None:
    """Raise a clear error when the arrays of one operation live on different devices."""
    first = type(arrays[0])
    if all(type(a) is first for a in arrays):
        return
    names = [device_of(a) for a in arrays]
    if len(set(names)) > 1:
        raise RuntimeError(
            f"{op_name}: inputs are on different devices {names}; "
            f"move them to one device first with .to({names[0]!r})"
        )


@functools.lru_cache(maxsize=None)
def keep_freed_host_memory() -> bool:
    """Ask glibc's malloc to keep freed host memory for reuse instead of handing it back to the OS.

    A training step allocates and frees the same large activation arrays every time.  By default
    glibc returns big blocks to the OS (``munmap``, heap trimming), so the next step page-faults on
    every 4 KiB page it touches again — thousands of faults per step, ~7% of bench-tiny's step time.
    Raising ``M_MMAP_THRESHOLD`` (to glibc's 32 MiB maximum) and ``M_TRIM_THRESHOLD`` (to 1 GiB) keeps
    the memory in the process; the price is that its resident size does not shrink afterwards.  So it
    is opt-in: the ``minilora`` command and the benchmarks call it, a notebook may.  Linux with glibc
    only; returns False (and changes nothing) elsewhere.  Applied once per process.
    """
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # mallopt parameter numbers from <malloc.h>
    return bool(mallopt(m_mmap_threshold, 32 << 20)) and bool(mallopt(m_trim_threshold, 1 << 30))
