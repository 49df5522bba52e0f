"""The PyTorch twin of minilora's GPT, for ``minilora.bench``: same architecture, same weights, same step.

Pre-LayerNorm blocks (x + attn(ln_1(x)), x + mlp(ln_2(x))), separate q/k/v/o projections with bias,
GELU with the tanh approximation, learned positional embeddings, a head without bias, mean
cross-entropy with ``ignore_index=-1``, and ``torch.optim.AdamW`` with the benchmark's settings.
Attention is ``F.scaled_dot_product_attention(q, k, v, is_causal=True)`` (``attention="sdpa"``; on
the CPU a fused flash-attention kernel) or an explicit masked softmax like minilora's
(``attention="explicit"``: softmax(q kᵀ / sqrt(h) with -inf above the diagonal) v).

Module names match minilora's (``blocks.0.attn.q_proj.weight`` ...), so weights are copied by name.
LoRA here is the textbook wrapper: y = base(x) + (x Aᵀ) Bᵀ · α/r with the base frozen, A (r, in), B (out, r).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from minilora.experiments.measure import time_steps
from minilora.models import GPTConfig

__all__ = ["TorchGPT", "TorchLoRALinear", "apply_torch_lora", "environment", "product", "run", "set_threads"]


class TorchAttention(nn.Module):
    def __init__(self, c: int, n_head: int, attention: str):
        super().__init__()
        self.n_head, self.attention = n_head, attention
        self.q_proj, self.k_proj, self.v_proj, self.o_proj = (nn.Linear(c, c) for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        h = c // self.n_head
        q = self.q_proj(x).view(b, t, self.n_head, h).transpose(1, 2)  # (B, H, T, h)
        k = self.k_proj(x).view(b, t, self.n_head, h).transpose(1, 2)  # (B, H, T, h)
        v = self.v_proj(x).view(b, t, self.n_head, h).transpose(1, 2)  # (B, H, T, h)
        if self.attention == "sdpa":
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, H, T, h)
        else:
            att = (q @ k.transpose(-1, -2)) * (1.0 / h**0.5)                # (B, H, T, T)
            future = torch.ones(t, t, dtype=torch.bool).triu(1)
            y = att.masked_fill(future, float("-inf")).softmax(dim=-1) @ v  # (B, H, T, h)
        return self.o_proj(y.transpose(1, 2).reshape(b, t, c))             # (B, T, C)


class TorchMLP(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.fc_in, self.fc_out = nn.Linear(c, 4 * c), nn.Linear(4 * c, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc_out(F.gelu(self.fc_in(x), approximate="tanh"))  # (B, T, C)


class TorchBlock(nn.Module):
    def __init__(self, c: int, n_head: int, attention: str):
        super().__init__()
        self.ln_1, self.attn = nn.LayerNorm(c), TorchAttention(c, n_head, attention)
        self.ln_2, self.mlp = nn.LayerNorm(c), TorchMLP(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))  # (B, T, C)
        return x + self.mlp(self.ln_2(x))


class TorchGPT(nn.Module):
    """minilora's ``GPT`` in PyTorch (no dropout: the benchmark configs have none)."""

    def __init__(self, config: GPTConfig, attention: str = "sdpa"):
        super().__init__()
        if attention not in ("sdpa", "explicit"):
            raise ValueError(f"attention must be 'sdpa' or 'explicit', got {attention!r}")
        if config.dropout or not config.bias:
            raise ValueError("the PyTorch twin covers dropout=0 and bias=True only")
        c = config.n_embd
        self.tok_emb, self.pos_emb = nn.Embedding(config.vocab_size, c), nn.Embedding(config.block_size, c)
        self.blocks = nn.ModuleList(TorchBlock(c, config.n_head, attention) for _ in range(config.n_layer))
        self.ln_f, self.head = nn.LayerNorm(c), nn.Linear(c, config.vocab_size, bias=False)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        t = idx.shape[1]
        x = self.tok_emb(idx) + self.pos_emb(torch.arange(t))  # (B, T, C)
        for block in self.blocks:
            x = block(x)
        logits = self.head(self.ln_f(x))                       # (B, T, V)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-1)


class TorchLoRALinear(nn.Module):
    """y = base(x) + (x Aᵀ) Bᵀ · scaling, base frozen; A (r, in), B (out, r) = 0 at init."""

    def __init__(self, base: nn.Linear, r: int, alpha: float | None = None):
        super().__init__()
        self.base = base.requires_grad_(False)
        self.lora_A = nn.Parameter(torch.randn(r, base.in_features) / r)
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r))
        self.scaling = (alpha if alpha is not None else r) / r

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (x @ self.lora_A.T) @ self.lora_B.T * self.scaling


def apply_torch_lora(model: TorchGPT, r: int, targets: Sequence[str]) -> TorchGPT:
    """Freeze every parameter, then wrap the Linears named in ``targets`` (e.g. q_proj) with LoRA."""
    model.requires_grad_(False)
    for block in model.blocks:
        for name in targets:
            setattr(block.attn, name, TorchLoRALinear(getattr(block.attn, name), r))
    return model


def load_minilora_state(model: nn.Module, state: dict[str, np.ndarray]) -> None:
    """Copy minilora's weights (name → host array) into the twin; the two must have the same names."""
    own = dict(model.named_parameters())
    if set(own) != set(state):
        raise ValueError(f"torch twin and minilora model differ: only in torch {sorted(set(own) - set(state))}, "
                         f"only in minilora {sorted(set(state) - set(own))}")
    with torch.no_grad():
        for name, p in own.items():
            p.copy_(torch.from_numpy(np.ascontiguousarray(state[name])))


def _state_bytes(model: nn.Module, optimizer: torch.optim.Optimizer) -> int:
    params = list(model.parameters())
    weights = sum(p.numel() * p.element_size() for p in params)
    grads = sum(p.grad.numel() * p.grad.element_size() for p in params if p.grad is not None)
    moments = sum(v.numel() * v.element_size() for s in optimizer.state.values() for v in s.values()
                  if torch.is_tensor(v))
    return weights + grads + moments


def run(config: GPTConfig, state: dict[str, np.ndarray], method: str, batches: list, warmup: int, steps: int,
        adamw: dict[str, Any], lora_r: int = 8, lora_targets: Sequence[str] = ("q_proj", "v_proj"),
        attention: str = "sdpa") -> dict[str, Any]:
    """Time the twin's training steps on ``batches`` from minilora's weights ``state``; same keys as minilora's run."""
    model = TorchGPT(config, attention)
    if method == "lora":
        apply_torch_lora(model, lora_r, lora_targets)
    elif method != "full":
        raise ValueError(f"the torch twin knows methods 'full' and 'lora', not {method!r}")
    load_minilora_state(model, state)
    optimizer = torch.optim.AdamW(model.parameters(), **adamw)
    data = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in batches]

    def step(i: int) -> float:
        x, y = data[i % len(data)]
        loss = model(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return float(loss.item())

    timing = time_steps(step, warmup, steps)
    return {**timing, "state_bytes": _state_bytes(model, optimizer), "attention": attention}


def set_threads(n: int) -> None:
    """Use ``n`` intra-op threads in PyTorch (its OpenMP/MKL pool)."""
    torch.set_num_threads(n)


def product(a: np.ndarray, b: np.ndarray) -> Callable[[], Any]:
    """A call that computes a @ b with ``torch.matmul`` (PyTorch's BLAS, MKL on x86) into a buffer made once."""
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    out = torch.matmul(ta, tb)  # warm-up; the output buffer
    return functools.partial(torch.matmul, ta, tb, out=out)


def environment() -> dict[str, Any]:
    """PyTorch version, threads and CPU kernel level."""
    return {"torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability()}
