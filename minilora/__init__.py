"""minilora: LoRA from scratch — a NumPy/CuPy autograd engine, a tiny GPT, full fine-tuning and LoRA side by side.

The package root is the engine's front door: importing it loads the backend, the engine and ``functional``,
nothing above them.  ``ml.pretrained`` is resolved lazily (PEP 562), so the GPT, checkpoints and the model
zoo load only when a shipped model is asked for.
"""

from typing import Any

from minilora import functional
from minilora.backend import cuda_available, default_device, set_default_device
from minilora.engine.creation import arange, as_tensor, full, ones, rand, randn, tensor, zeros
from minilora.engine.gradcheck import gradcheck
from minilora.engine.tensor import Function, Tensor, enable_grad, is_grad_enabled, no_grad

__version__ = "0.1.0"

__all__ = [
    "Tensor", "Function", "tensor", "as_tensor", "zeros", "ones", "full", "arange", "randn", "rand",
    "no_grad", "enable_grad", "is_grad_enabled", "gradcheck", "functional",
    "cuda_available", "default_device", "set_default_device", "pretrained",
]


def __getattr__(name: str) -> Any:
    """``ml.pretrained`` loads the model zoo (and with it the GPT) on first use only."""
    if name == "pretrained":
        from minilora.models.zoo import pretrained

        return pretrained
    raise AttributeError(f"module 'minilora' has no attribute {name!r}")
