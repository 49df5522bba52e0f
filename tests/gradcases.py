"""Gradient cases for Functions, shared by test_ops.py (engine/ops.py) and test_fused_ops.py (engine/fused.py).

A *case* is a builder ``build(m) -> (fn, *inputs)``: ``m`` (a ``Maker``) draws the inputs on one device in one
dtype, ``fn(*inputs)`` is a computation whose graph contains the Function the case is registered for.
Each test file keeps its own registry::

    case = GradCases()

    @case("Add")
    def add_broadcast(m):
        return (lambda a, b: a + b), m(2, 3), m(3)

    ALL_CASES = case.params()          # pytest.param(op, build) for @pytest.mark.parametrize
    case.assert_covers(ops)            # every Function of the module has a case, every case names one

``check_gradient_case`` compares the float64 gradients with central differences; ``check_float32_case``
checks that a float32 graph gets float32 gradients from every backward by itself.
"""

from __future__ import annotations

import importlib
import inspect
from types import ModuleType
from typing import Any, Callable

import numpy as np
import pytest

import minilora as ml
from minilora import backend
from minilora.engine.tensor import Function

# the module, not the function ml.tensor that shadows it in the package namespace
autograd_module = importlib.import_module("minilora.engine.autograd")

Builder = Callable[["Maker"], tuple]


class Maker:
    """Builds a case's inputs on one device in one dtype, from a fixed seed (deterministic)."""

    def __init__(self, device: str, dtype: Any = np.float64) -> None:
        self.device, self.dtype = device, dtype
        self.rng = np.random.default_rng(0)

    def __call__(self, *shape: int, positive: bool = False, requires_grad: bool = True) -> ml.Tensor:
        """Values with 0.5 <= |v| <= 1.5: far from the kinks of relu/abs and the pole of 1/x."""
        values = np.asarray(self.rng.uniform(0.5, 1.5, shape))
        if not positive:
            values = values * self.rng.choice([-1.0, 1.0], shape)
        return ml.tensor(values.astype(self.dtype), requires_grad=requires_grad, device=self.device)

    def const(self, values: Any) -> ml.Tensor:
        """A non-differentiable input (integer indices, boolean masks) on the case's device."""
        return ml.tensor(np.asarray(values), device=self.device)

    @property
    def other_device(self) -> str:
        return "cpu" if self.device != "cpu" else [d for d in backend.available_devices() if d != "cpu"][0]


def ops_in_graph(out: ml.Tensor) -> set[str]:
    """Names of the Functions that produced ``out`` (walked without recursion)."""
    names, stack, seen = set(), [out], set()
    while stack:
        t = stack.pop()
        if t._ctx is None or id(t) in seen:
            continue
        seen.add(id(t))
        names.add(type(t._ctx).__name__)
        stack.extend(t._ctx.inputs)
    return names


def functions_defined_in(module: ModuleType) -> set[str]:
    """Names of the Function subclasses that ``module`` itself defines."""
    return {name for name, obj in inspect.getmembers(module, inspect.isclass)
            if issubclass(obj, Function) and obj.__module__ == module.__name__}


class GradCases:
    """A registry: Function name -> the cases that exercise it.  ``@cases("Add")`` registers a builder."""

    def __init__(self) -> None:
        self.by_op: dict[str, list[Builder]] = {}

    def __call__(self, op_name: str) -> Callable[[Builder], Builder]:
        def register(build: Builder) -> Builder:
            self.by_op.setdefault(op_name, []).append(build)
            return build

        return register

    def params(self) -> list:
        """One ``pytest.param(op, build)`` per case, with the id "Op-builder_name"."""
        return [pytest.param(op, build, id=f"{op}-{build.__name__}") for op, builds in self.by_op.items()
                for build in builds]

    def assert_covers(self, *modules: ModuleType) -> None:
        """Every Function defined in ``modules`` has a case, and every case names one of them."""
        defined = set().union(*(functions_defined_in(module) for module in modules))
        names = ", ".join(module.__name__ for module in modules)
        missing, unknown = sorted(defined - self.by_op.keys()), sorted(self.by_op.keys() - defined)
        assert not missing, f"Functions of {names} without a gradient case: {missing}"
        assert not unknown, f"cases for Functions that {names} do not define: {unknown}"


def check_gradient_case(op: str, build: Builder, device: str) -> None:
    """The case's graph contains ``op``, and its float64 gradients match central differences."""
    fn, *inputs = build(Maker(device))
    assert op in ops_in_graph(fn(*inputs)), f"the case does not exercise {op}"
    assert ml.gradcheck(fn, *inputs, rtol=1e-5, atol=1e-7)


def check_float32_case(build: Builder, device: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every backward returns gradients in its input's dtype by itself (no silent float64 promotion)."""
    seen = []
    fit = autograd_module._fit_gradient

    def spy(grad, parent, op_name):
        seen.append((op_name, grad.dtype, parent.dtype))
        return fit(grad, parent, op_name)

    monkeypatch.setattr(autograd_module, "_fit_gradient", spy)
    fn, *inputs = build(Maker(device, np.float32))
    fn(*inputs).sum().backward()
    assert seen and all(g == p for _, g, p in seen), f"promoted gradients: {[s for s in seen if s[1] != s[2]]}"
    for x in inputs:
        assert x.grad is not None and x.grad.dtype == np.float32


def assert_typed_with_the_array_alias(module: ModuleType) -> None:
    """Every Function of ``module`` is typed minitorch style with the one alias ``Array`` (engine/tensor.py):
    ``forward(ctx: Function, x: Array, ...) -> Array`` (every argument annotated) and
    ``backward(ctx: Function, g: Array) -> tuple[Array | None, ...]``."""
    untyped = []
    for name in sorted(functions_defined_in(module)):
        cls = getattr(module, name)
        forward, backward = cls.forward.__annotations__, cls.backward.__annotations__
        arguments = inspect.signature(cls.forward).parameters
        if (forward.get("ctx") != "Function" or forward.get("return") != "Array"
                or any(a not in forward for a in arguments)
                or backward != {"ctx": "Function", "g": "Array", "return": "tuple[Array | None, ...]"}):
            untyped.append(name)
    assert not untyped, f"Functions of {module.__name__} not typed with the Array alias: {untyped}"
