"""Subspace training of any ``nn.Module``:  θ = θ0 + P z,  with z ∈ R^d the only trainable tensor.

Li et al. (2018, arXiv 1804.08838) train a network not in its own D-dimensional parameter space but in a
random d-dimensional affine subspace of it: the D parameters of all layers together form one vector θ, and

    θ = θ0 + P z,        θ0 ∈ R^D the frozen initial weights,  P ∈ R^{D×d} fixed and random (unit-norm columns),
                         z ∈ R^d trained, starting at 0 (so training starts exactly at θ0).

The smallest d that reaches 90% of full training's metric is the *intrinsic dimension* d90 of the task
for that model.  Aghajanyan et al. (2020, arXiv 2012.13255) add one learned scale per parameter tensor,
SAID ("structure-aware intrinsic dimension"):

    θ_i = θ0_i + λ_i · (P z)_i     for each parameter tensor i,   λ_i = 1 at the start,

so d + (number of tensors) numbers are trained.  Gradients: dL/dz = Pᵀ (λ ⊙ dL/dθ), dL/dλ_i = ⟨dL/dθ_i, (P z)_i⟩.

How θ is put in place.  ``SubspaceModel`` keeps the wrapped model (frozen) as its submodule ``model``; its
Parameters hold θ0.  Each call computes δ = P z once (``function.Project``), builds for every projected
parameter the graph tensor θ_i = θ0_i + δ-slice (``function.OffsetSlice``; with ``fused=False`` both are
ordinary engine ops instead, ``composed.py``: the same numbers, a longer graph), sets it as the owning module's
attribute in place of the Parameter (every module that shares the Parameter gets the same θ_i), calls the
wrapped model, and puts the Parameters back — also when the call raises.  The modules' registries
(``_parameters``) are never touched, so ``state_dict``, ``to(device)`` and ``named_parameters`` still see the
Parameters.  This works for any module that reads its weights as attributes (``self.weight``), as every
minilora layer does.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, NamedTuple, Sequence

import numpy as np

from minilora import backend, nn
from minilora.engine.tensor import Tensor
from minilora.subspace.composed import project_composed
from minilora.subspace.function import GradientBuffer, OffsetSlice, Project
from minilora.subspace.projections import PROJECTIONS, Projection, make_projection

__all__ = ["SubspaceModel", "SubspaceCount"]


class SubspaceCount(NamedTuple):
    """What a subspace run trains: d (subspace dimension), D (projected weights), trainable (d, plus one SAID
    scale per projected tensor), total (the wrapped model's weights); percent = 100 · trainable / total."""

    d: int
    D: int
    trainable: int
    total: int
    percent: float

    def __str__(self) -> str:
        return (f"subspace d: {self.d:,} || projected params D: {self.D:,} || trainable params: {self.trainable:,} "
                f"|| all params: {self.total:,} || trainable%: {self.percent:.4f}")


class _Slot(NamedTuple):
    """One projected parameter: its name, the Parameter (θ0_i), its offset in θ and its owners (module, attribute)."""

    name: str
    param: nn.Parameter
    start: int
    owners: tuple[tuple[nn.Module, str], ...]


def _select(model: nn.Module, params: Sequence[str] | None) -> list[tuple[str, nn.Parameter]]:
    """The floating-point parameters to project: all, or those named in ``params`` (a name or a module prefix)."""
    named = [(n, p) for n, p in model.named_parameters() if p.dtype.kind == "f"]
    if params is None:
        return named
    if isinstance(params, str):
        raise TypeError(f"SubspaceModel: params must be a sequence of names, got the string {params!r}; "
                        f"write params=[{params!r}]")
    matches = {pattern: [n for n, _ in named if n == pattern or n.startswith(pattern + ".")] for pattern in params}
    unknown = [pattern for pattern, found in matches.items() if not found]
    if unknown:
        raise ValueError(f"SubspaceModel: params {unknown} match no parameter of {type(model).__name__}; "
                         f"expected parameter names or module prefixes such as {[n for n, _ in named[:3]]}")
    chosen = {n for found in matches.values() for n in found}
    return [(n, p) for n, p in named if n in chosen]


class SubspaceModel(nn.Module):
    """Wrap ``model`` so that only z ∈ R^d trains:  θ = θ0 + P z  (with ``said=True``: θ_i = θ0_i + λ_i (P z)_i).

    ``projection``: "fastfood" (default, O(D) memory), "dense", "sparse", or a ``Projection`` of shape (D, d).
    ``params``: names (or module prefixes, e.g. "blocks.1") of the parameters to project; default all, D in total.
    The wrapped model is frozen (``requires_grad=False``) and kept as the submodule ``model``; ``z`` (zeros) and,
    with SAID, ``said_scales`` (ones, one per projected tensor) are the trainable parameters.  Calling the
    SubspaceModel calls the wrapped model with θ in place: ``logits, loss = sm(idx, targets)`` for a GPT.
    Public: ``sm.projection``, ``sm.D``, ``sm.d``, ``sm.param_names``, ``sm.count_parameters()``.

    ``fused=True`` (default): δ = P z and the θ_i are two custom Functions with hand-written backward passes
    (``function.py``); ``fused=False``: the same θ from ordinary engine ops (``composed.py``), the engine
    deriving the gradients.  Both give the same outputs and gradients to float rounding (a dense, sparse or
    Fastfood projection; a custom ``Projection`` needs the fused path).
    """

    def __init__(self, model: nn.Module, d: int, projection: str | Projection = "fastfood", seed: int = 0,
                 said: bool = False, params: Sequence[str] | None = None, fused: bool = True) -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"SubspaceModel wraps an nn.Module, got {type(model).__name__}")
        chosen = _select(model, params)
        if not chosen:
            raise ValueError(f"SubspaceModel: {type(model).__name__} has no floating-point parameters to project")
        owners: dict[int, list[tuple[nn.Module, str]]] = {id(p): [] for _, p in chosen}
        for module in model.modules():
            for attr, p in module.named_parameters(recurse=False):
                if id(p) in owners and (module, attr) not in owners[id(p)]:
                    owners[id(p)].append((module, attr))
        slots, start = [], 0
        for name, p in chosen:
            slots.append(_Slot(name, p, start, tuple(owners[id(p)])))
            start += p.size
        self.D = start
        if isinstance(projection, Projection):
            if projection.shape != (self.D, d):
                raise ValueError(f"SubspaceModel: the projection has shape {projection.shape}, expected (D, d) = "
                                 f"({self.D}, {d})")
            self.projection = projection
        elif projection in PROJECTIONS:
            self.projection = make_projection(projection, self.D, d, seed)
        else:
            raise ValueError(f"SubspaceModel: unknown projection {projection!r}; expected one of "
                             f"{sorted(PROJECTIONS)} or a Projection instance")
        self.d = self.projection.d
        self.said = bool(said)
        self.fused = bool(fused)
        self._slots = slots
        self.param_names = [s.name for s in slots]
        self.model = model.requires_grad_(False)
        dtype, device = chosen[0][1].dtype, chosen[0][1].device
        self.z = nn.Parameter(backend.to_device(np.zeros(self.d, dtype=dtype), device))  # (d,)
        self.said_scales = None
        if self.said:
            self.said_scales = nn.Parameter(backend.to_device(np.ones(len(slots), dtype=dtype), device))  # (T,)

    @contextlib.contextmanager
    def weights_in_place(self) -> Iterator[None]:
        """Inside the block the wrapped model computes with θ = θ0 + P z (graph tensors when grad is on).

        δ = P z is computed once; each projected Parameter is replaced, on every module that owns it, by
        θ_i = θ0_i + λ_i δ-slice and restored on exit (also after an exception; nested blocks restore the
        outer block's θ).
        """
        swapped: list[tuple[nn.Module, str, Any]] = []  # (module, attribute, what it held before)
        try:
            for slot, theta in zip(self._slots, self._thetas()):
                for module, attr in slot.owners:
                    swapped.append((module, attr, module.__dict__[attr]))
                    object.__setattr__(module, attr, theta)  # not Module.__setattr__: the registry keeps the Parameter
            yield
        finally:
            for module, attr, previous in reversed(swapped):
                object.__setattr__(module, attr, previous)

    def _thetas(self) -> list[Tensor]:
        """θ_i = θ0_i + λ_i · (P z)[start_i : start_i + n_i] for every projected parameter, as graph tensors."""
        if not self.fused:  # the definition, op by op
            delta = project_composed(self.projection, self.z)  # (D,)
            pieces = [delta[s.start : s.start + s.param.size].reshape(*s.param.shape) for s in self._slots]
            if self.said_scales is not None:
                pieces = [self.said_scales[i] * piece for i, piece in enumerate(pieces)]
            return [slot.param + piece for slot, piece in zip(self._slots, pieces)]  # (shape_i) each
        delta = Project.apply(self.z, projection=self.projection)  # (D,)
        scales = () if self.said_scales is None else (self.said_scales,)
        buffer = GradientBuffer(self.D, delta.dtype)
        return [OffsetSlice.apply(delta, slot.param, *scales, start=slot.start, index=index, buffer=buffer)
                for index, slot in enumerate(self._slots)]  # (shape_i) each

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The wrapped model's output at θ = θ0 + P z: ``self.model(*args, **kwargs)`` with θ in place."""
        with self.weights_in_place():
            return self.model(*args, **kwargs)

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        """The wrapped model's ``generate`` at θ = θ0 + P z (for a GPT: sampled token ids, see ``GPT.generate``)."""
        with self.weights_in_place():
            return self.model.generate(*args, **kwargs)

    @property
    def config(self) -> Any:
        """The wrapped model's ``config`` (a GPT's GPTConfig), so task evaluation sees its block size."""
        return self.model.config

    def theta(self) -> dict[str, np.ndarray]:
        """Projected parameter name → host array of θ_i = θ0_i + λ_i (P z)_i (the weights the subspace reached)."""
        host: dict[str, np.ndarray] = {}
        delta = backend.to_host(self.projection.matvec(self.z.data))  # (D,)
        scales = None if self.said_scales is None else backend.to_host(self.said_scales.data)
        for index, slot in enumerate(self._slots):
            piece = delta[slot.start : slot.start + slot.param.size].reshape(slot.param.shape)
            host[slot.name] = backend.to_host(slot.param.data) + (piece if scales is None else scales[index] * piece)
        return host

    def count_parameters(self) -> SubspaceCount:
        """d, D, trainable = d (+ one SAID scale per projected tensor), total = the wrapped model's weights."""
        trainable = self.d + (len(self._slots) if self.said else 0)
        total = self.model.num_parameters()
        return SubspaceCount(self.d, self.D, trainable, total, 100.0 * trainable / total)

    def extra_repr(self) -> str:
        return (f"d={self.d}, D={self.D}, projection={type(self.projection).__name__}, said={self.said}, "
                f"fused={self.fused}")
