"""Creating tensors: from data, filled with a constant, ranges, and random samples drawn on the host.

Random numbers always come from a ``numpy.random.Generator`` on the host and are then moved to the
device, so the same seed gives the same tensor on CPU and GPU.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from minilora import backend
from minilora.engine.tensor import Tensor, as_array
from minilora.validation import as_rng

__all__ = ["tensor", "as_tensor", "zeros", "ones", "full", "arange", "randn", "rand"]



def tensor(data: Any, requires_grad: bool = False, dtype: Any = None, device: str | None = None) -> Tensor:
    """A new tensor from a list, scalar or array (lists of floats become float32)."""
    return Tensor(as_array(data, dtype, device), requires_grad=requires_grad)


def as_tensor(data: Any, dtype: Any = None, device: str | None = None) -> Tensor:
    """``data`` itself if it is already a Tensor, else ``tensor(data)``."""
    if isinstance(data, Tensor) and dtype is None and device is None:
        return data
    return tensor(data, dtype=dtype, device=device)


def _filled(fill: Any, shape: Iterable[int] | int, dtype: Any, device: str | None, requires_grad: bool) -> Tensor:
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    host = np.full(shape, fill, dtype=dtype or np.float32)
    return Tensor(backend.to_device(host, device or backend.default_device()), requires_grad=requires_grad)


def zeros(shape: Iterable[int] | int, dtype: Any = None, device: str | None = None,
          requires_grad: bool = False) -> Tensor:
    """A tensor of zeros (float32 unless ``dtype`` says otherwise)."""
    return _filled(0, shape, dtype, device, requires_grad)


def ones(shape: Iterable[int] | int, dtype: Any = None, device: str | None = None,
         requires_grad: bool = False) -> Tensor:
    """A tensor of ones (float32 unless ``dtype`` says otherwise)."""
    return _filled(1, shape, dtype, device, requires_grad)


def full(shape: Iterable[int] | int, value: float, dtype: Any = None, device: str | None = None,
         requires_grad: bool = False) -> Tensor:
    """A tensor filled with ``value``."""
    return _filled(value, shape, dtype, device, requires_grad)


def arange(*args: float, dtype: Any = None, device: str | None = None) -> Tensor:
    """Values ``start, start + step, ...`` below ``stop``, like ``numpy.arange`` (int64 for integer arguments, else
    float32)."""
    if dtype is None:
        dtype = np.int64 if all(isinstance(a, (int, np.integer)) for a in args) else np.float32
    return Tensor(backend.to_device(np.arange(*args, dtype=dtype), device or backend.default_device()))


def randn(shape: Iterable[int] | int, rng: np.random.Generator | int | None = None, dtype: Any = np.float32,
          device: str | None = None, requires_grad: bool = False) -> Tensor:
    """Standard normal samples drawn on the host (``numpy.random.Generator``), then moved to ``device``."""
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    host = as_rng(rng).standard_normal(shape).astype(dtype)
    return Tensor(backend.to_device(host, device or backend.default_device()), requires_grad=requires_grad)


def rand(shape: Iterable[int] | int, rng: np.random.Generator | int | None = None, dtype: Any = np.float32,
         device: str | None = None, requires_grad: bool = False) -> Tensor:
    """Uniform samples in [0, 1) drawn on the host, then moved to ``device``."""
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    host = as_rng(rng).random(shape).astype(dtype)
    return Tensor(backend.to_device(host, device or backend.default_device()), requires_grad=requires_grad)
