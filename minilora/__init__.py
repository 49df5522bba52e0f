"""minilora: LoRA from scratch — a NumPy/CuPy autograd engine, a tiny GPT, full fine-tuning and LoRA side by side."""

from minilora import functional
from minilora.backend import cuda_available, default_device, set_default_device
from minilora.gradcheck import gradcheck
from minilora.creation import arange, as_tensor, full, ones, rand, randn, tensor, zeros
from minilora.tensor import Function, Tensor, enable_grad, is_grad_enabled, no_grad
from minilora.zoo import pretrained

__version__ = "0.1.0"

__all__ = [
    "Tensor", "Function", "tensor", "as_tensor", "zeros", "ones", "full", "arange", "randn", "rand",
    "no_grad", "enable_grad", "is_grad_enabled", "gradcheck", "functional",
    "cuda_available", "default_device", "set_default_device", "pretrained",
]
