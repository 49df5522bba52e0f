"""A test-only device, "strict": NumPy math behind a wall, the way CuPy arrays behave.

CPU-only CI cannot run CuPy, but it can catch the bugs CuPy would expose: code that hands a
device array to NumPy, or mixes a device array with a host array.  A ``StrictArray`` holds a
private ``numpy.ndarray`` and

- refuses implicit conversion to NumPy: ``np.asarray(x)`` raises TypeError (``__array__``),
  and ``np.some_function(x)`` raises TypeError (``__array_function__``);
- refuses host arrays as operands, as index parts and as arguments of ``strict_xp`` functions;
- returns 0-d arrays, never NumPy scalars, from reductions and scalar indexing (as CuPy does);
- allows the explicit conversions CuPy allows: ``.item()``, ``.tolist()``, ``float()``,
  ``int()``, ``bool()``, ``len()``.

``strict_xp`` plays the role of the ``cupy`` module.  It is a little stricter than CuPy: even
``strict_xp.asarray(host_array)`` is refused, because minilora moves data only with
``backend.to_device`` / ``backend.to_host``.
"""

from __future__ import annotations

import operator
import types
from typing import Any

import numpy as np

__all__ = ["StrictArray", "strict_xp", "from_host", "to_host"]


def _leak(what: str) -> TypeError:
    return TypeError(
        f"strict device: {what}; device arrays must not meet host NumPy arrays "
        "(move data explicitly with backend.to_device / backend.to_host)"
    )


def _unwrap(value: Any) -> Any:
    """Replace StrictArrays (also inside tuples, lists and dicts) by their ndarrays; reject host arrays."""
    if isinstance(value, StrictArray):
        return value._a
    if isinstance(value, np.ndarray):
        raise _leak(f"got a host numpy.ndarray of shape {value.shape}")
    if isinstance(value, (tuple, list)):
        return type(value)(_unwrap(v) for v in value)
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    return value


def _wrap(value: Any) -> Any:
    """Wrap ndarray and NumPy-scalar results (also inside tuples and lists) as StrictArrays."""
    if isinstance(value, (np.ndarray, np.generic)):
        return StrictArray(np.asarray(value))
    if isinstance(value, (tuple, list)):
        return type(value)(_wrap(v) for v in value)
    return value


class StrictArray:
    """An ndarray that only talks to other StrictArrays and to Python scalars."""

    __slots__ = ("_a",)
    __array_ufunc__ = None  # NumPy ufuncs (and ndarray operators) defer to our reflected operators
    __hash__ = None  # like ndarray: mutable, unhashable

    def __init__(self, array: np.ndarray) -> None:
        self._a = array

    # -- implicit conversions are refused ------------------------------------------------------
    def __array__(self, *args: Any, **kwargs: Any) -> np.ndarray:
        raise _leak("implicit conversion to a NumPy array (np.asarray / np.array)")

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        raise _leak(f"numpy.{func.__name__} called on a device array; use the device's xp module")

    # -- explicit conversions are allowed (as in CuPy) -------------------------------------------
    def item(self) -> Any:
        return self._a.item()

    def tolist(self) -> Any:
        return self._a.tolist()

    def __float__(self) -> float:
        return float(self._a)

    def __int__(self) -> int:
        return int(self._a)

    def __bool__(self) -> bool:
        return bool(self._a)

    def __len__(self) -> int:
        return len(self._a)

    def __iter__(self):
        return (StrictArray(np.asarray(row)) for row in self._a)

    def __repr__(self) -> str:
        return f"StrictArray({self._a!r})"

    # -- attributes --------------------------------------------------------------------------------
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    flags = property(lambda self: self._a.flags)
    T = property(lambda self: StrictArray(self._a.T))

    # -- indexing ----------------------------------------------------------------------------------
    def __getitem__(self, index: Any) -> "StrictArray":
        return _wrap(self._a[_unwrap(index)])

    def __setitem__(self, index: Any, value: Any) -> None:
        self._a[_unwrap(index)] = _unwrap(value)


def _binary(op: Any) -> Any:
    def method(self: StrictArray, other: Any) -> Any:
        return _wrap(op(self._a, _unwrap(other)))

    return method


def _reflected(op: Any) -> Any:
    def method(self: StrictArray, other: Any) -> Any:
        return _wrap(op(_unwrap(other), self._a))

    return method


def _inplace(op: Any) -> Any:
    def method(self: StrictArray, other: Any) -> StrictArray:
        op(self._a, _unwrap(other))  # in place on the private array: views stay views
        return self

    return method


def _unary(op: Any) -> Any:
    return lambda self: _wrap(op(self._a))


def _method(name: str) -> Any:
    def method(self: StrictArray, *args: Any, **kwargs: Any) -> Any:
        return _wrap(getattr(self._a, name)(*_unwrap(args), **_unwrap(kwargs)))

    method.__name__ = name
    return method


# name -> (operator, in-place operator)
_BINARY = {
    "add": (operator.add, operator.iadd), "sub": (operator.sub, operator.isub),
    "mul": (operator.mul, operator.imul), "truediv": (operator.truediv, operator.itruediv),
    "floordiv": (operator.floordiv, operator.ifloordiv), "mod": (operator.mod, operator.imod),
    "pow": (operator.pow, operator.ipow), "matmul": (operator.matmul, operator.imatmul),
    "and": (operator.and_, operator.iand), "or": (operator.or_, operator.ior),
    "xor": (operator.xor, operator.ixor),
}
for _name, (_op, _iop) in _BINARY.items():
    setattr(StrictArray, f"__{_name}__", _binary(_op))
    setattr(StrictArray, f"__r{_name}__", _reflected(_op))
    setattr(StrictArray, f"__i{_name}__", _inplace(_iop))
for _name in ("eq", "ne", "lt", "le", "gt", "ge"):
    setattr(StrictArray, f"__{_name}__", _binary(getattr(operator, _name)))
for _name, _op in {"neg": operator.neg, "pos": operator.pos, "abs": operator.abs, "invert": operator.invert}.items():
    setattr(StrictArray, f"__{_name}__", _unary(_op))
for _name in (
    "reshape", "transpose", "swapaxes", "sum", "mean", "max", "min", "prod", "std", "var", "astype",
    "copy", "squeeze", "ravel", "flatten", "fill", "any", "all", "argmax", "argmin", "clip", "cumsum",
    "repeat", "take", "dot", "nonzero", "round", "conj", "sort", "argsort",
):
    setattr(StrictArray, _name, _method(_name))


# -- the array module ---------------------------------------------------------------------------


class _StrictUfunc:
    """A NumPy ufunc on StrictArrays, keeping ``.at``, ``.reduce``, ``.accumulate`` and ``.outer``."""

    def __init__(self, ufunc: np.ufunc) -> None:
        self._ufunc = ufunc

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _wrap(self._ufunc(*_unwrap(args), **_unwrap(kwargs)))

    def at(self, *args: Any) -> None:
        self._ufunc.at(*_unwrap(args))

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._ufunc, name)
        if callable(attr):  # reduce, accumulate, outer, reduceat
            return lambda *args, **kwargs: _wrap(attr(*_unwrap(args), **_unwrap(kwargs)))
        return attr  # nin, nout, identity, ...


class _StrictNamespace:
    """Attribute access mirrors a NumPy (sub)module with every function wrapped for StrictArrays."""

    def __init__(self, module: types.ModuleType) -> None:
        self._module = module

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._module, name)
        if name == "ndarray":
            return StrictArray
        if isinstance(attr, np.ufunc):
            return _StrictUfunc(attr)
        if isinstance(attr, types.ModuleType):
            return _StrictNamespace(attr)
        if isinstance(attr, type) or not callable(attr):
            return attr  # dtypes (float32, bool_), constants (pi, inf, newaxis)

        def function(*args: Any, **kwargs: Any) -> Any:
            return _wrap(attr(*_unwrap(args), **_unwrap(kwargs)))

        function.__name__ = name
        return function


strict_xp = _StrictNamespace(np)


def from_host(array: np.ndarray) -> StrictArray:
    """Upload: a private copy, so later changes to the host array do not reach the device."""
    return StrictArray(np.array(array, copy=True))


def to_host(array: StrictArray) -> np.ndarray:
    """Download: a copy, so the host array never aliases device memory (as with cupy.asnumpy)."""
    return np.array(array._a, copy=True)
