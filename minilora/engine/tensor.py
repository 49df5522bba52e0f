"""The Tensor, the computation graph and reverse-mode automatic differentiation.

A Tensor wraps an array (``.data``, NumPy or CuPy) and remembers the ``Function`` that produced it.
``loss.backward()`` visits the graph once in reverse topological order and applies the chain rule:
for y = f(x1, ..., xn), each input receives  dL/dxi = backward_i(dL/dy).

Inputs that do not require grad get no gradient computed (``ctx.needs_input_grad``); the walk
itself (``autograd.run_backward``) is in ``autograd.py``.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from minilora import backend
from minilora.engine.autograd import GraphRef, run_backward, unbroadcast

__all__ = [
    "Array",
    "Tensor",
    "Function",
    "no_grad",
    "enable_grad",
    "is_grad_enabled",
    "unbroadcast",
    "as_array",
    "lift",
    "normalize_axis",
    "index_to_arrays",
]

Array = Any
"""A NumPy or CuPy ndarray (or a test device's array): what a Function's forward and backward take and return.

One alias for every Function signature, ``forward(ctx: Function, a: Array, b: Array) -> Array``;
it is ``Any`` because NumPy and CuPy share no array base class."""

_grad_enabled = True


def is_grad_enabled() -> bool:
    """True unless inside ``no_grad()``: only then do operations record the graph."""
    return _grad_enabled


class _GradMode(contextlib.ContextDecorator):
    """Context manager and decorator that sets whether operations record the graph."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._previous: list[bool] = []

    def __enter__(self) -> None:
        global _grad_enabled
        self._previous.append(_grad_enabled)
        _grad_enabled = self.enabled

    def __exit__(self, *exc: object) -> None:
        global _grad_enabled
        _grad_enabled = self._previous.pop()


def no_grad() -> _GradMode:
    """Inside ``with no_grad():`` (or a function decorated ``@no_grad()``) no graph is built."""
    return _GradMode(False)


def enable_grad() -> _GradMode:
    """Turn graph recording back on inside a ``no_grad`` region."""
    return _GradMode(True)


# ----------------------------------------------------------------------------------------------
# Function: one node of the graph
# ----------------------------------------------------------------------------------------------


class Function:
    """A differentiable primitive.  Subclasses define two static methods on raw arrays:

    ``forward(ctx: Function, *arrays: Array, **params) -> Array`` computes the output and saves what backward
    needs; ``backward(ctx: Function, grad: Array) -> tuple[Array | None, ...]`` returns one gradient per input,
    ``dL/dinput = J^T · grad``, or None where ``ctx.needs_input_grad[i]`` is False (nothing is computed for those
    inputs).

    The instance itself is the context ``ctx`` and becomes the graph node of the output.
    """

    inputs: tuple["Tensor", ...] | None
    needs_input_grad: tuple[bool, ...]
    saved_tensors: tuple[Array | None, ...] = ()

    def save_for_backward(self, *arrays: Array | None) -> None:
        """Keep the arrays (or None) that backward needs; released when the graph is freed."""
        self.saved_tensors = arrays

    @staticmethod
    def forward(ctx: "Function", *arrays: Array, **params: Any) -> Array:  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def backward(ctx: "Function", grad: Array) -> tuple[Array | None, ...]:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs: Any, **params: Any) -> "Tensor":
        """Run forward on the inputs' arrays and, when any input requires grad, record the node."""
        tensors = tuple(x if isinstance(x, Tensor) else Tensor(x) for x in inputs)
        arrays = tuple(t.data for t in tensors)
        if len(arrays) > 1:
            backend.check_same_device(arrays, cls.__name__)
        ctx = cls()
        needs = tuple(t.requires_grad for t in tensors) if _grad_enabled else ()
        ctx.needs_input_grad = needs
        out = cls.forward(ctx, *arrays, **params)
        if isinstance(out, np.generic):  # NumPy returns scalars for 0-d results; keep arrays
            out = np.asarray(out)
        result = Tensor(out)
        if any(needs):
            # leaves that need a gradient are kept (their .grad is filled); every other input only by its
            # graph node, so arrays an op did not save are freed as soon as the user drops them
            ctx.inputs = tuple(t if t._ctx is None and t.requires_grad else t._graph_ref() for t in tensors)
            result.requires_grad = True
            result._ctx = ctx
        return result


# ----------------------------------------------------------------------------------------------
# Tensor
# ----------------------------------------------------------------------------------------------


def _is_array(data: Any) -> bool:
    """True for NumPy arrays and for device arrays (CuPy, test devices)."""
    return isinstance(data, np.ndarray) or backend.device_of(data) != "cpu"


def as_array(data: Any, dtype: Any = None, device: str | None = None) -> Any:
    """Turn user data into an array on a device, with minilora's dtype rules.

    Python lists and scalars of floats become float32; integers stay integer; arrays keep their dtype.
    """
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, np.generic):  # a NumPy scalar keeps its dtype, like an array
        data = np.asarray(data)
    is_array = _is_array(data)
    if not is_array:
        data = np.asarray(data)
        if dtype is None and data.dtype == np.float64:
            dtype = np.float32
    if device is None:
        device = backend.device_of(data) if is_array else backend.default_device()
    array = backend.to_device(data, device)
    if dtype is not None and array.dtype != np.dtype(dtype):
        array = array.astype(dtype)
    return array


class Tensor:
    """An array plus the information needed to differentiate through it.

    Attributes: ``data`` (xp array), ``grad`` (xp array or None, filled by ``backward``),
    ``requires_grad`` (bool).  Shapes, dtypes and indexing follow NumPy.  Comparisons (``==``, ``<``, ...)
    are elementwise, as in NumPy, so to find a tensor in a list compare identities (``is``, ``id()``).
    """

    __array_priority__ = 1000  # make ``numpy_array * tensor`` call Tensor.__rmul__
    __array_ufunc__ = None

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None, device: str | None = None):
        if dtype is None and device is None and _is_array(data):
            self.data = data  # arrays are kept as they are (no copy, same dtype and device)
        else:
            self.data = as_array(data, dtype, device)
        self.grad: Any = None
        self._ctx: Function | None = None
        self._ref: GraphRef | None = None
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    # -- properties ------------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return int(self.data.size)

    @property
    def device(self) -> str:
        return backend.device_of(self.data)

    @property
    def is_leaf(self) -> bool:
        """A leaf was created by the user (no producing Function); only leaves receive ``.grad``."""
        return self._ctx is None

    def _graph_ref(self) -> "GraphRef":
        """This tensor as a graph edge without its data (one per tensor, so gradients meet in one place)."""
        if self._ref is None:
            self._ref = GraphRef(self)
        return self._ref

    @property
    def xp(self) -> Any:
        """The array module of this tensor's data (numpy or cupy)."""
        return backend.get_xp(self.data)

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor: it has no first axis")
        return self.shape[0]

    def __iter__(self):
        """The sub-tensors along the first axis (each a differentiable ``self[i]``)."""
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        grad = ", requires_grad=True" if self.requires_grad else ""
        dev = "" if self.device == "cpu" else f", device={self.device!r}"
        body = np.array2string(self.numpy(), precision=4, separator=", ", threshold=20)
        return f"tensor({body}, dtype={self.dtype}{dev}{grad})"

    # -- conversions -----------------------------------------------------------------------------
    def requires_grad_(self, flag: bool = True) -> "Tensor":
        """Set ``requires_grad`` in place; only floating-point tensors can require grad."""
        if flag and self.data.dtype.kind not in "fc":
            raise TypeError(f"only floating-point tensors can require grad, got dtype {self.data.dtype}")
        self.requires_grad = flag
        return self

    def item(self) -> float | int:
        """The single value of a one-element tensor as a Python number."""
        if self.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.data.reshape(()).item()

    def numpy(self) -> np.ndarray:
        """The data as a host NumPy array (copied from the GPU when needed)."""
        return backend.to_host(self.data)

    def tolist(self) -> Any:
        """The values as nested Python lists (via the host)."""
        return self.numpy().tolist()

    def detach(self) -> "Tensor":
        """The same data, cut from the graph (shares memory, requires no grad)."""
        return Tensor(self.data)

    def float(self) -> "Tensor":
        """Cast to float32."""
        return self.astype(np.float32)

    def double(self) -> "Tensor":
        """Cast to float64 (what gradient checks need)."""
        return self.astype(np.float64)

    # -- autograd --------------------------------------------------------------------------------
    def backward(self, grad: Any = None) -> None:
        """Compute d(self)/d(leaf) for every leaf that requires grad and add it to ``leaf.grad``.

        ``grad`` is dL/d(self); it may be omitted only when ``self`` has one element (then 1).
        The graph is freed afterwards: call backward once per forward pass.
        """
        if not self.requires_grad:
            raise RuntimeError(
                "backward() on a tensor that does not require grad: no input of the computation "
                "had requires_grad=True (or it was computed under no_grad())"
            )
        xp = self.xp
        if grad is None:
            if self.size != 1:
                raise RuntimeError(
                    f"backward() without a gradient needs a single-element tensor, got shape {self.shape}; "
                    "reduce it first (e.g. .sum()) or pass grad=dL/dself"
                )
            grad = xp.ones_like(self.data)
        else:
            grad = as_array(grad.data if isinstance(grad, Tensor) else grad, self.dtype, self.device)
            if tuple(grad.shape) != self.shape:
                raise ValueError(f"backward(grad): grad has shape {tuple(grad.shape)}, expected {self.shape}")
        run_backward(self, grad)

    def zero_grad(self) -> None:
        """Forget the accumulated gradient (``grad = None``)."""
        self.grad = None

    # comparisons give boolean tensors outside the graph (elementwise, as in NumPy and PyTorch)
    def __eq__(self, other: Any) -> "Tensor":  # type: ignore[override]
        return Tensor(self.data == _comparable(other, self, 'eq'))

    def __ne__(self, other: Any) -> "Tensor":  # type: ignore[override]
        return Tensor(self.data != _comparable(other, self, 'ne'))

    def __bool__(self) -> bool:
        if self.size != 1:
            raise ValueError(f"the truth value of a tensor of shape {self.shape} is ambiguous; use .any() on "
                             "its NumPy array (t.numpy().any()) or compare one element")
        return bool(self.item())

    def __lt__(self, other: Any) -> "Tensor":
        return Tensor(self.data < _comparable(other, self, 'lt'))

    def __le__(self, other: Any) -> "Tensor":
        return Tensor(self.data <= _comparable(other, self, 'le'))

    def __gt__(self, other: Any) -> "Tensor":
        return Tensor(self.data > _comparable(other, self, 'gt'))

    def __ge__(self, other: Any) -> "Tensor":
        return Tensor(self.data >= _comparable(other, self, 'ge'))

    __hash__ = object.__hash__

def _comparable(other: Any, like: Tensor, op: str) -> Any:
    """The raw operand of a comparison, after checking it lives on ``like``'s device."""
    raw = other.data if isinstance(other, Tensor) else other
    if _is_array(raw):
        backend.check_same_device((like.data, raw), f"__{op}__")
    return raw


def lift(value: Any, like: Tensor) -> Tensor:
    """Turn an operand into a Tensor on ``like``'s device; Python scalars take ``like``'s dtype.

    Python scalars never promote: float32 * 2.0 stays float32 (an int tensor times 0.5 becomes floating point,
    with NumPy's rule for int64 and float32: float64).
    """
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (int, float, bool)) and not isinstance(value, np.generic):
        dtype = like.dtype
        if isinstance(value, float) and dtype.kind not in "fc":
            dtype = np.dtype(np.float32)
        return Tensor(like.xp.asarray(value, dtype=dtype))
    if _is_array(value):
        return Tensor(as_array(value))  # stays where it is: mixing devices is an error, not a copy
    return Tensor(as_array(value, device=like.device))  # lists and NumPy scalars (keep their dtype)


def normalize_axis(axis: Any, ndim: int) -> tuple[int, ...] | None:
    """Normalise an axis argument to a sorted tuple of non-negative axes (None: all axes)."""
    if axis is None:
        return None
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for a in axes:
        if not -ndim <= a < max(ndim, 1):
            raise ValueError(f"axis {a} is out of range for a tensor with {ndim} dimensions")
        out.append(int(a) % max(ndim, 1))
    return tuple(sorted(set(out)))


def index_to_arrays(index: Any, like: Tensor) -> Any:
    """Move integer-array parts of an index (lists, NumPy arrays, Tensors) onto ``like``'s device."""
    if not isinstance(index, tuple):
        index = (index,)
    out = []
    for part in index:
        if isinstance(part, Tensor):
            part = part.data
        if isinstance(part, list):
            part = np.asarray(part)
        if hasattr(part, "dtype") and hasattr(part, "shape"):
            if part.dtype.kind not in "iub":
                raise TypeError(f"index arrays must be integer or boolean, got dtype {part.dtype}")
            part = backend.to_device(part, like.device)
        out.append(part)
    return tuple(out)

