"""The frozen 4-bit linear layer of QLoRA, ``quantize_model``, and what merging an adapter into a 4-bit base costs.

QLoRA (Dettmers et al. 2023) stores the frozen base weight W0 in NF4 (``minilora.quant.nf4``) and trains a LoRA
adapter on top in full precision:

    y = x Ŵ0ᵀ + b + s · (x Aᵀ) Bᵀ,        Ŵ0 = dequantize(NF4(W0))

The memory lesson, in two numbers: what is *stored* per layer is the packed 4-bit codes and the block scales (about
n/2 bytes instead of 4n), but during a step the layer *dequantises* Ŵ0 into a full float32 matrix for its matmul —
transiently, one layer at a time: forward dequantises, multiplies, and drops Ŵ0; backward dequantises again for
dx = g Ŵ0 (as bitsandbytes' ``MatMul4Bit`` does), so no float32 copy of any base weight outlives its matmul.

Merging an adapter into a 4-bit base (W = Ŵ0 + s·B A) cannot be stored exactly in NF4: the merged weight must be
re-quantised, and rounding moves every weight by up to half a code step times its block's absmax.  ``merge_lora``
refuses (``MergeableLinear.merge``); ``merge_and_requantize`` does it on purpose and reports the error.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minilora import backend, nn
from minilora.engine.tensor import Function, Tensor
from minilora.quant.nf4 import NF4Tensor, dequantize_nf4, quantize_nf4

__all__ = ["Linear4bit", "Linear4bitFn", "merge_and_requantize", "quantize_model", "quantized_layers",
           "stored_bytes"]


class Linear4bitFn(Function):
    """y = x Ŵᵀ for x (..., k) with Ŵ = dequantize_nf4(quant) (d, k), a constant: only dx = g Ŵ flows back.

    Neither forward nor backward keeps Ŵ: each dequantises it when it needs it (``ctx`` holds only the 4-bit
    ``quant``), so the full-precision weight lives for one matmul.  Ŵ is cast to x's dtype (float64 for gradcheck).
    """

    @staticmethod
    def forward(ctx: Function, x: Any, *, quant: NF4Tensor) -> Any:
        ctx.quant, ctx.x_shape = quant, x.shape
        w = dequantize_nf4(quant).astype(x.dtype, copy=False)  # (d, k), transient
        y = x.reshape(-1, x.shape[-1]) @ w.T                    # (N, d)
        return y.reshape(*x.shape[:-1], w.shape[0])

    @staticmethod
    def backward(ctx: Function, g: Any) -> tuple[Any, ...]:
        w = dequantize_nf4(ctx.quant).astype(g.dtype, copy=False)  # (d, k), dequantised again
        return ((g.reshape(-1, g.shape[-1]) @ w).reshape(ctx.x_shape),)


class Linear4bit(nn.Linear):
    """A frozen ``nn.Linear`` whose weight is stored in NF4: y = x Ŵᵀ + b, Ŵ = dequantize_nf4(``quant``).

    A subclass of ``nn.Linear``, so LoRA finds it (targets are Linears) and wraps it (``LoRALinear`` calls
    ``self.base(x)``).  It has no weight Parameter: ``quant`` (an ``NF4Tensor``) holds the packed codes and scales,
    and the bias (kept in full precision, as bitsandbytes does) is a frozen Parameter.  ``weight`` is a read-only
    dequantised copy, a frozen Tensor made on each access (DoRA's norms and analyses read W0 through it); assigning
    to it is an error.  The codes follow the input's device: ``model.to(device)`` moves Parameters, and the first
    forward on the new device moves ``quant`` too.
    """

    is_quantized = True

    def __init__(self, quant: NF4Tensor, bias: Any = None):
        nn.Module.__init__(self)
        if len(quant.shape) != 2:
            raise ValueError(f"Linear4bit: expected a 2-D (out_features, in_features) weight, got shape {quant.shape}")
        self.out_features, self.in_features = quant.shape
        self.quant = quant
        self.bias = None if bias is None else nn.Parameter(getattr(bias, "data", bias), requires_grad=False)

    @classmethod
    def from_linear(cls, linear: nn.Linear, blocksize: int = 64, double_quant: bool = True) -> "Linear4bit":
        """``linear`` with its weight quantised on the host (NF4, ``blocksize``) and stored on its device."""
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"Linear4bit.from_linear expects an nn.Linear, got {type(linear).__name__}")
        device = linear.weight.device
        quant = quantize_nf4(backend.to_host(linear.weight.data), blocksize, double_quant).to(device)
        return cls(quant, linear.bias)

    @property
    def weight(self) -> Tensor:  # type: ignore[override]
        """Ŵ = dequantize_nf4(quant), a new frozen (d, k) float32 Tensor on the layer's device (read-only)."""
        return Tensor(dequantize_nf4(self.quant))

    @weight.setter
    def weight(self, value: Any) -> None:
        raise AttributeError("Linear4bit.weight is read-only (the weight is stored in NF4); "
                             "see minilora.quant.merge_and_requantize to change it")

    @property
    def device(self) -> str:
        """The device of the stored codes."""
        return self.quant.device

    @property
    def nbytes(self) -> int:
        """Bytes stored for the weight (packed codes + scales); the bias is extra."""
        return self.quant.nbytes

    def to(self, device: str) -> "Linear4bit":
        """Move the codes and the bias to ``device``; returns self."""
        self.quant = self.quant.to(device)
        return super().to(device)

    def forward(self, x: Tensor) -> Tensor:
        """y = x Ŵᵀ + b for x (..., k); y (..., d)."""
        if x.shape[-1] != self.in_features:
            raise ValueError(f"Linear4bit({self.in_features}, {self.out_features}): input has last dimension "
                             f"{x.shape[-1]}, expected {self.in_features}")
        if self.quant.device != x.device:  # the model was moved with .to(): bring the codes along, once
            self.quant = self.quant.to(x.device)
        y = Linear4bitFn.apply(x, quant=self.quant)  # (..., d)
        return y if self.bias is None else y + self.bias

    def extra_repr(self) -> str:
        q = self.quant
        return (f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, "
                f"blocksize={q.blocksize}, double_quant={q.double is not None}, "
                f"bits_per_parameter={q.bits_per_parameter:.3f}")


def _matches(name: str, target: str) -> bool:
    """PEFT's rule, as LoRA's: a target matches a module whose dotted name is the target or ends in "." + target."""
    return name == target or name.endswith("." + target)


def _set_module(model: nn.Module, path: str, module: nn.Module) -> None:
    """Put ``module`` at dotted ``path`` inside ``model`` (on its parent, keeping the parent's order)."""
    parent_path, _, attr = path.rpartition(".")
    parent = dict(model.named_modules())[parent_path] if parent_path else model
    setattr(parent, attr, module)


DEFAULT_SKIP = ("head",)
"""Linears ``quantize_model`` leaves in full precision by default: the language-model head, as bitsandbytes /
transformers do (``llm_int8_skip_modules`` defaults to the output layer): its errors land directly on the logits."""


def quantize_model(model: nn.Module, target_modules: list[str] | tuple[str, ...] | None = None, blocksize: int = 64,
                   double_quant: bool = True) -> nn.Module:
    """Replace Linear weights of ``model`` by NF4 (``Linear4bit``) in place, freeze the model, and return it.

    ``target_modules=None`` (QLoRA's choice): every ``nn.Linear`` except the language-model head (``DEFAULT_SKIP``);
    otherwise the Linears whose dotted names match a target (the rule of LoRA's ``target_modules``); a target that
    matches no Linear is a ValueError.  Embeddings, layer norms and biases stay in full precision (they are a small
    part of a transformer).  Layers already in 4 bits are left as they are.
    """
    linears = [(name, m) for name, m in model.named_modules()
               if name and isinstance(m, nn.Linear) and not isinstance(m, Linear4bit)]
    if target_modules is None:
        chosen = [(n, m) for n, m in linears if not any(_matches(n, skip) for skip in DEFAULT_SKIP)]
    else:
        targets = [target_modules] if isinstance(target_modules, str) else list(target_modules)
        for target in targets:
            if not any(_matches(n, target) for n, _ in linears):
                raise ValueError(f"quantize_model: target module {target!r} matches no Linear layer of "
                                 f"{type(model).__name__} (Linear layers: {', '.join(n for n, _ in linears)})")
        chosen = [(n, m) for n, m in linears if any(_matches(n, t) for t in targets)]
    for name, linear in chosen:
        _set_module(model, name, Linear4bit.from_linear(linear, blocksize, double_quant))
    return model.requires_grad_(False)


def quantized_layers(model: nn.Module) -> list[tuple[str, Linear4bit]]:
    """(dotted name, layer) of every ``Linear4bit`` in ``model``."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, Linear4bit)]


def stored_bytes(model: nn.Module) -> dict[str, int]:
    """What ``model`` stores, in bytes: ``parameters`` (every Parameter, at its dtype's size), ``quantized`` (the NF4
    codes and scales of its 4-bit layers) and ``total``."""
    params = sum(int(p.data.nbytes) for p in model.parameters())
    quant = sum(layer.nbytes for _, layer in quantized_layers(model))
    return {"parameters": params, "quantized": quant, "total": params + quant}


def merge_and_requantize(model: nn.Module) -> dict[str, dict[str, float]]:
    """Merge every adapter that sits on a 4-bit base and store the result in NF4 again — the lossy merge, on purpose.

    For each adapted layer (a module with a ``Linear4bit`` ``base`` and ``merged_weight()``, as LoRA's, DoRA's and
    VeRA's layers): W = Ŵ0 + ΔW (what the unmerged model computes), W' = dequantize(NF4(W)) (what is stored after the
    merge), and the layer is replaced by a ``Linear4bit`` holding NF4(W) (the adapter is gone).  Returns, per layer,
    ``max_abs_change`` = max |W' − W| and ``mean_abs_change`` = mean |W' − W|: how far the merged model moved from
    the model that was trained.  A LoRA update smaller than half an NF4 step is mostly rounded away.
    """
    report: dict[str, dict[str, float]] = {}
    adapted = [(name, m) for name, m in model.named_modules()
               if isinstance(getattr(m, "base", None), Linear4bit) and hasattr(m, "merged_weight")]
    for name, layer in adapted:
        base: Linear4bit = layer.base
        effective = backend.to_host(layer.merged_weight()).astype(np.float32)   # (d, k)  Ŵ0 + ΔW
        quant = quantize_nf4(effective, base.quant.blocksize, base.quant.double is not None)
        stored = backend.to_host(dequantize_nf4(quant))                           # (d, k)  W'
        change = np.abs(stored - effective)
        report[name] = {"max_abs_change": float(change.max()), "mean_abs_change": float(change.mean())}
        _set_module(model, name, Linear4bit(quant.to(base.device), base.bias))
    return report
