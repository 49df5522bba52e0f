"""Neural-network building blocks: Module, Parameter and the layers a GPT is made of.

A ``Module`` registers every ``Parameter`` and sub-``Module`` assigned to it as an attribute, so
``named_parameters()`` can list them by dotted path (``blocks.0.attn.q_proj.weight``), which is
how LoRA finds the layers to adapt and how checkpoints name their arrays.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Iterator, NamedTuple

import numpy as np

from minilora import backend
from minilora import functional as F
from minilora.engine import fused
from minilora.engine.tensor import Tensor
from minilora.validation import RngLike, as_rng, is_int

__all__ = [
    "Parameter", "Module", "Linear", "Embedding", "LayerNorm", "Dropout", "GELU", "ModuleList",
    "Sequential", "LoadResult",
]

class Parameter(Tensor):
    """A Tensor that is a learnable weight of a Module (``requires_grad=True`` unless frozen)."""

    def __init__(self, data: Any, requires_grad: bool = True):
        super().__init__(data if not isinstance(data, Tensor) else data.data, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter(" + super().__repr__()[len("tensor("):]


class LoadResult(NamedTuple):
    """Keys a non-strict ``load_state_dict`` skipped."""

    missing_keys: list[str]
    unexpected_keys: list[str]


class Module:
    """Base class of every layer and model.  Subclasses set attributes in ``__init__`` and define ``forward``."""

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}.__init__ must call super().__init__() before setting {name!r}")
        # Replacing a parameter or module keeps its place in the order (as apply_lora relies on).
        if not isinstance(value, Parameter):
            self._parameters.pop(name, None)
        if not isinstance(value, Module):
            self._modules.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        object.__delattr__(self, name)

    def forward(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    # -- traversal -------------------------------------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, "Module"]]:
        """Yield (dotted path, module) for this module and every module inside it, depth first."""
        stack = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            yield name, module
            children = [(f"{name}.{child}" if name else child, m) for child, m in module._modules.items()]
            stack.extend(reversed(children))

    def modules(self) -> Iterator["Module"]:
        """This module and every module inside it, depth first."""
        for _, module in self.named_modules():
            yield module

    def children(self) -> Iterator["Module"]:
        """The modules registered directly on this one."""
        yield from self._modules.values()

    def named_parameters(self, recurse: bool = True) -> Iterator[tuple[str, Parameter]]:
        """Yield (dotted path, parameter) for every parameter, e.g. ``blocks.0.attn.q_proj.weight``.

        ``recurse=False``: only the parameters registered directly on this module, one (attribute, parameter)
        per attribute (a Parameter held under two attribute names is listed under both).
        """
        if not recurse:
            yield from self._parameters.items()
            return
        seen: set[int] = set()
        for module_name, module in self.named_modules():
            for name, param in module._parameters.items():
                if id(param) in seen:  # a shared (tied) parameter is listed once
                    continue
                seen.add(id(param))
                yield (f"{module_name}.{name}" if module_name else name), param

    def parameters(self) -> Iterator[Parameter]:
        """Every parameter (shared ones once), in ``named_parameters`` order."""
        for _, param in self.named_parameters():
            yield param

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Number of scalar weights (only those with ``requires_grad`` when ``trainable_only``)."""
        return sum(p.size for p in self.parameters() if p.requires_grad or not trainable_only)

    # -- modes and devices -----------------------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        """Set training mode (dropout active) on this module and all inside it."""
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self) -> "Module":
        """Set evaluation mode (dropout off).  Independent of ``no_grad``."""
        return self.train(False)

    def requires_grad_(self, flag: bool = True) -> "Module":
        """Freeze (False) or unfreeze (True) every parameter."""
        for p in self.parameters():
            p.requires_grad_(flag)
        return self

    def zero_grad(self) -> None:
        """Forget accumulated gradients (``p.grad = None`` for every parameter)."""
        for p in self.parameters():
            p.grad = None

    def to(self, device: str) -> "Module":
        """Move every parameter (and its gradient) to ``device`` in place; returns self."""
        for p in self.parameters():
            p.data = backend.to_device(p.data, device)
            if p.grad is not None:
                p.grad = backend.to_device(p.grad, device)
        return self

    def astype(self, dtype: Any) -> "Module":
        """Cast every parameter to ``dtype`` in place (e.g. float64 for gradient checks); returns self."""
        for p in self.parameters():
            p.data = p.data.astype(dtype)
            p.grad = None
        return self

    @property
    def device(self) -> str:
        """The device of the first parameter (``"cpu"`` for a module without parameters)."""
        first = next(self.parameters(), None)
        return first.device if first is not None else "cpu"

    # -- state -----------------------------------------------------------------------------------
    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        """Dotted name → host NumPy copy of every parameter (safe to keep while training goes on)."""
        return OrderedDict((name, np.array(backend.to_host(p.data), copy=True)) for name, p in self.named_parameters())

    def load_state_dict(self, state: dict[str, Any], strict: bool = True) -> LoadResult:
        """Copy arrays into the parameters of the same names (keeping each parameter's dtype and device).

        Mis-shaped arrays are always an error; missing or unexpected names are an error when ``strict``.
        """
        params = dict(self.named_parameters())
        state = {k: v.data if isinstance(v, Tensor) else v for k, v in state.items()}
        # device arrays too
        shape = {k: tuple(v.shape) if hasattr(v, "shape") else np.shape(v) for k, v in state.items()}
        missing = [k for k in params if k not in state]
        unexpected = [k for k in state if k not in params]
        misshaped = [
            f"{k}: checkpoint {shape[k]} vs model {params[k].shape}"
            for k in params
            if k in state and shape[k] != params[k].shape
        ]
        problems = []
        if misshaped:
            problems.append("mis-shaped: " + "; ".join(misshaped))
        if strict and missing:
            problems.append(f"missing: {missing}")
        if strict and unexpected:
            problems.append(f"unexpected: {unexpected}")
        if problems:
            raise ValueError(f"load_state_dict: state does not fit {type(self).__name__}: " + " | ".join(problems))
        for name, p in params.items():
            if name in state:
                host = np.asarray(backend.to_host(state[name]), dtype=p.dtype)
                p.data = backend.to_device(host.copy(), p.device)
        return LoadResult(missing, unexpected)

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, module in self._modules.items():
            child = repr(module).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child}")
        return lines[0] + ")" if len(lines) == 1 else "\n".join(lines) + "\n)"


class Linear(Module):
    """y = x @ W^T + b with W of shape (out_features, in_features) — PyTorch's convention.

    Initialised like PyTorch: W, b ~ U(-1/sqrt(in), 1/sqrt(in)).  In LoRA terms W ∈ R^{d×k},
    d = out_features, k = in_features.  A frozen W gets no gradient computed (only dX).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, rng: RngLike = None,
                 dtype: Any = np.float32, device: str | None = None):
        super().__init__()
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if not is_int(value) or value < 1:
                raise ValueError(f"Linear: {name} must be a positive integer, got {value!r}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        rng = as_rng(rng)
        bound = 1.0 / np.sqrt(in_features)
        device = device or backend.default_device()
        w = rng.uniform(-bound, bound, (out_features, in_features)).astype(dtype)
        self.weight = Parameter(backend.to_device(w, device))
        self.bias = None
        if bias:
            self.bias = Parameter(backend.to_device(rng.uniform(-bound, bound, out_features).astype(dtype), device))

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.in_features:
            raise ValueError(f"Linear({self.in_features}, {self.out_features}): input has last dimension "
                             f"{x.shape[-1]}, expected {self.in_features}")
        if self.bias is None:
            return fused.LinearFn.apply(x, self.weight)
        return fused.LinearFn.apply(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Embedding(Module):
    """A lookup table: ``forward(ids)[..., :] = weight[ids, :]``, weight (num_embeddings, dim) ~ N(0, 1).

    Ids outside 0..num_embeddings-1 raise a clear ValueError on every device.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, rng: RngLike = None, dtype: Any = np.float32,
                 device: str | None = None):
        super().__init__()
        for name, value in (("num_embeddings", num_embeddings), ("embedding_dim", embedding_dim)):
            if not is_int(value) or value < 1:
                raise ValueError(f"Embedding: {name} must be a positive integer, got {value!r}")
        self.num_embeddings, self.embedding_dim = int(num_embeddings), int(embedding_dim)
        w = as_rng(rng).standard_normal((num_embeddings, embedding_dim)).astype(dtype)
        self.weight = Parameter(backend.to_device(w, device or backend.default_device()))

    def forward(self, ids: Any) -> Tensor:
        return F.embedding(ids, self.weight)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}"


class LayerNorm(Module):
    """y = (x - mean) / sqrt(var + eps) * weight + bias over the last axis; weight = 1, bias = 0 at init."""

    def __init__(self, dim: int, eps: float = 1e-5, bias: bool = True, dtype: Any = np.float32,
                 device: str | None = None):
        super().__init__()
        device = device or backend.default_device()
        self.dim, self.eps = int(dim), eps
        self.weight = Parameter(backend.to_device(np.ones(dim, dtype=dtype), device))
        self.bias = Parameter(backend.to_device(np.zeros(dim, dtype=dtype), device)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.dim}, eps={self.eps}"


class Dropout(Module):
    """Inverted dropout with probability p while training; identity in eval mode.  Masks come from ``rng``."""

    def __init__(self, p: float = 0.1, rng: RngLike = None):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p}")
        self.p = p
        self.rng = as_rng(rng)

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, training=self.training, rng=self.rng)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class GELU(Module):
    """GELU activation (tanh approximation), see ``functional.gelu``."""

    def forward(self, x: Tensor) -> Tensor:
        return F.gelu(x)


class ModuleList(Module):
    """A list of modules registered as ``"0"``, ``"1"``, ... (so paths read ``blocks.0.attn``)."""

    def __init__(self, modules: list[Module] | None = None):
        super().__init__()
        self._items: list[Module] = []
        for m in modules or []:
            self.append(m)

    def append(self, module: Module) -> None:
        """Add ``module`` at the end, registered under its index."""
        setattr(self, str(len(self._items)), module)
        self._items.append(module)

    def __getitem__(self, i: int) -> Module:
        return self._items[i]

    def __setitem__(self, i: int, module: Module) -> None:
        """Replace the i-th module (negative i counts from the end, as for lists)."""
        if not -len(self._items) <= i < len(self._items):
            raise IndexError(f"ModuleList index {i} is out of range for {len(self._items)} modules")
        setattr(self, str(i % len(self._items)), module)

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._items)

    def __setattr__(self, name: str, value: Any) -> None:
        if name.isdigit() and "_items" in self.__dict__ and int(name) < len(self._items):
            self._items[int(name)] = value  # replacing a layer in place (as apply_lora does)
        super().__setattr__(name, value)


class Sequential(ModuleList):
    """Modules applied one after another: y = m_n(...m_2(m_1(x)))."""

    def __init__(self, *modules: Module):
        super().__init__(list(modules))

    def forward(self, x: Any) -> Any:
        for m in self:
            x = m(x)
        return x
