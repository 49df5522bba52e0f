"""A tiny GPT (decoder-only transformer), readable top to bottom.

Shapes: B batch, T sequence length, C = n_embd channels, H heads of size h = C / H, V vocab.
Pre-LayerNorm blocks (GPT-2 style):  x = x + attn(ln_1(x));  x = x + mlp(ln_2(x)).
Attention uses separate ``q_proj``, ``k_proj``, ``v_proj``, ``o_proj`` so LoRA can target each
by name (``blocks.{i}.attn.q_proj`` ...), as in the LoRA paper's W_q, W_k, W_v, W_o.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from minilora import backend, nn
from minilora import functional as F
from minilora.engine.tensor import Tensor, no_grad
from minilora.validation import RngLike, as_rng, is_int, is_real

__all__ = ["GPTConfig", "GPT"]


@dataclass(frozen=True)
class GPTConfig:
    """Architecture of a GPT: vocabulary, context length, depth, heads, width, dropout, biases."""

    vocab_size: int
    block_size: int
    n_layer: int
    n_head: int
    n_embd: int
    dropout: float = 0.0
    bias: bool = True

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            value = getattr(self, name)
            if not is_int(value) or value < 1:
                raise ValueError(f"GPTConfig: {name} must be a positive integer, got {value!r}")
        if self.n_embd % self.n_head:
            raise ValueError(f"GPTConfig: n_embd={self.n_embd} must be divisible by n_head={self.n_head}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"GPTConfig: dropout must be in [0, 1), got {self.dropout}")

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (what checkpoints store as JSON)."""
        return asdict(self)


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where token t attends only to tokens 0..t.

    Each head computes  y = softmax(q kᵀ / √h + mask) v,  with mask = -inf where the key comes after the query.
    ``forward`` shows it step by step (the ``else`` branch).  By default (``fused = True``) it runs instead as
    one fused Function, an optimisation: ``fused.Attention`` in engine/fused.py has a closed-form backward
    and stores the scores transposed for faster sums.  Set ``attn.fused = False`` on every block to run the
    textbook path; both give the same logits and gradients (tests/test_gpt.py).

    ``prefix`` (None by default, then nothing changes) is prefix-tuning's hook (``minilora.alternatives.prefix``):
    a callable ``prefix(B)`` returning learned keys and values (B, H, p, h) that are put before the sequence's
    own, so every query also attends to p extra keys:  y = softmax(q [P_k; k]ᵀ / √h + mask) [P_v; v], the
    scores (B, H, T, p + T).  The prefix takes no positions: tokens keep their position embeddings 0..T−1.
    """

    def __init__(self, config: GPTConfig, rng: np.random.Generator):
        super().__init__()
        c, bias = config.n_embd, config.bias
        self.n_head = config.n_head
        self.fused = True  # a plain flag, not a parameter: the fused kernel or the textbook path
        self.q_proj = nn.Linear(c, c, bias=bias, rng=rng)
        self.k_proj = nn.Linear(c, c, bias=bias, rng=rng)
        self.v_proj = nn.Linear(c, c, bias=bias, rng=rng)
        self.o_proj = nn.Linear(c, c, bias=bias, rng=rng)
        self.resid_drop = nn.Dropout(config.dropout, rng=rng)
        self.prefix: Any = None  # prefix-tuning: a callable B → (keys, values) of shape (B, H, p, h), or None

    def forward(self, x: Tensor) -> Tensor:
        b, t, c = x.shape
        h = c // self.n_head
        q = self.q_proj(x).reshape(b, t, self.n_head, h).transpose(0, 2, 1, 3)  # (B, H, T, h)
        k = self.k_proj(x).reshape(b, t, self.n_head, h).transpose(0, 2, 1, 3)  # (B, H, T, h)
        v = self.v_proj(x).reshape(b, t, self.n_head, h).transpose(0, 2, 1, 3)  # (B, H, T, h)
        p = 0
        if self.prefix is not None:  # prefix-tuning: p learned keys and values before the sequence's own
            prefix_k, prefix_v = self.prefix(b)                                 # (B, H, p, h) each
            p = prefix_k.shape[2]
            k = F.concat([prefix_k, k], axis=2)                                 # (B, H, p + T, h)
            v = F.concat([prefix_v, v], axis=2)                                 # (B, H, p + T, h)
        if self.fused:
            # an optimisation: the four steps below as one Function with a hand-written backward
            y = F.scaled_dot_product_attention(q, k, v, causal=True)            # (B, H, T, h)
        else:
            # the textbook computation, one step per line
            att = (q @ k.transpose(0, 1, 3, 2)) * (1.0 / math.sqrt(h))          # (B, H, T, p + T)  scores q·kᵀ/√h
            future = np.triu(np.ones((t, p + t), dtype=bool), k=p + 1)          # (T, p + T)  key after query i
            att = F.masked_fill(att, future, -np.inf)                           # (B, H, T, p + T)  no looking ahead
            att = F.softmax(att, axis=-1)                                       # (B, H, T, p + T)  rows sum to 1
            y = att @ v                                                         # (B, H, T, h)  weighted sum of values
        y = y.transpose(0, 2, 1, 3).reshape(b, t, c)                            # (B, T, C)
        return self.resid_drop(self.o_proj(y))                                  # (B, T, C)


class MLP(nn.Module):
    """Position-wise feed-forward: fc_out(gelu(fc_in(x))), hidden width 4C."""

    def __init__(self, config: GPTConfig, rng: np.random.Generator):
        super().__init__()
        c = config.n_embd
        self.fc_in = nn.Linear(c, 4 * c, bias=config.bias, rng=rng)
        self.fc_out = nn.Linear(4 * c, c, bias=config.bias, rng=rng)
        self.drop = nn.Dropout(config.dropout, rng=rng)

    def forward(self, x: Tensor) -> Tensor:
        hidden = F.gelu(self.fc_in(x))           # (B, T, 4C)
        return self.drop(self.fc_out(hidden))    # (B, T, C)


class Block(nn.Module):
    """One transformer block: x + attn(ln_1(x)), then + mlp(ln_2(x))."""

    def __init__(self, config: GPTConfig, rng: np.random.Generator):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config, rng)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config, rng)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln_1(x))  # (B, T, C)
        x = x + self.mlp(self.ln_2(x))   # (B, T, C)
        return x


class GPT(nn.Module):
    """Decoder-only transformer language model.

    ``logits, loss = model(idx, targets)``: idx (B, T) token ids, logits (B, T, V); loss is the
    mean cross-entropy of ``targets`` (B, T) (positions with target -1 are ignored), or None.
    Weights ~ N(0, 0.02²) (residual output projections scaled by 1/sqrt(2·n_layer), as in GPT-2),
    biases 0, drawn on the host from ``seed`` so every device starts from the same model.
    """

    def __init__(self, config: GPTConfig, seed: int = 0, device: str | None = None):
        super().__init__()
        self.config = config
        rng = np.random.default_rng(seed)
        self.tok_emb = nn.Embedding(config.vocab_size, config.n_embd, rng=rng)
        self.pos_emb = nn.Embedding(config.block_size, config.n_embd, rng=rng)
        self.drop = nn.Dropout(config.dropout, rng=rng)
        self.blocks = nn.ModuleList([Block(config, rng) for _ in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.head = nn.Linear(config.n_embd, config.vocab_size, bias=False, rng=rng)
        self._init_weights(rng)
        self.to(device or backend.default_device())

    def _init_weights(self, rng: np.random.Generator) -> None:
        residual_std = 0.02 / np.sqrt(2 * self.config.n_layer)
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                p.data[...] = 0
            elif name.startswith("ln") or ".ln_" in name:
                continue  # LayerNorm weight stays 1
            else:
                std = residual_std if name.endswith(("o_proj.weight", "fc_out.weight")) else 0.02
                p.data = rng.normal(0.0, std, p.shape).astype(p.dtype)

    def forward(self, idx: Any, targets: Any = None) -> tuple[Tensor, Tensor | None]:
        ids = idx.data if isinstance(idx, Tensor) else idx
        if not hasattr(ids, "ndim"):
            ids = np.asarray(ids)  # nested lists of ids
        if ids.ndim != 2:
            raise ValueError(f"GPT expects token ids of shape (B, T), got shape {tuple(ids.shape)}")
        b, t = ids.shape
        if t == 0 or b == 0:
            raise ValueError(f"GPT expects at least one sequence of at least one token, got shape {tuple(ids.shape)}")
        if t > self.config.block_size:
            raise ValueError(f"sequence length {t} exceeds block_size {self.config.block_size}")
        positions = backend.to_device(np.arange(t), self.device)
        x = self.tok_emb(ids) + self.pos_emb(positions)   # (B, T, C)
        x = self.drop(x)                                  # (B, T, C)
        for block in self.blocks:
            x = block(x)                                  # (B, T, C)
        logits = self.head(self.ln_f(x))                  # (B, T, V)
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits, targets, ignore_index=-1)  # scalar
        return logits, loss

    @no_grad()
    def generate(self, idx: Any, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
                 rng: RngLike = None, stop_token: int | None = None) -> np.ndarray:
        """Extend each row of ``idx`` (B, T) by up to ``max_new_tokens`` sampled tokens; returns host ids (B, T + n).

        Next-token distribution: softmax(logits_last / temperature), restricted to the ``top_k`` largest;
        temperature 0 means greedy (argmax).  The context is cropped to the last ``block_size`` tokens.

        ``stop_token`` (e.g. a task's end-of-sample id): once a row has produced it, every later position
        of that row is ``stop_token`` too (padding, nothing more is sampled for it), and generation ends
        as soon as every row has produced it, so n ≤ ``max_new_tokens``.  Without it, n = ``max_new_tokens``.
        """
        if not (is_int(max_new_tokens) and max_new_tokens >= 0):
            raise ValueError(f"generate: max_new_tokens must be an integer >= 0, got {max_new_tokens!r}")
        if not (is_real(temperature) and math.isfinite(temperature) and temperature >= 0):
            raise ValueError("generate: temperature must be a finite number >= 0 (0 means "
                             f"greedy), got {temperature!r}")
        if top_k is not None and not (is_int(top_k) and top_k >= 1):
            raise ValueError(f"generate: top_k must be a positive integer or None, got {top_k!r}")
        vocab = self.config.vocab_size
        if stop_token is not None and not (is_int(stop_token) and 0 <= stop_token < vocab):
            raise ValueError(f"generate: stop_token must be a token id in [0, {vocab}) or None, got {stop_token!r}")
        rng = as_rng(rng)
        out = np.array(backend.to_host(idx.data if isinstance(idx, Tensor) else idx), dtype=np.int64)
        if out.ndim != 2:
            raise ValueError(f"generate expects token ids of shape (B, T), got shape {out.shape}")
        stopped = np.zeros(out.shape[0], dtype=bool)                          # (B,): row has produced stop_token
        was_training = self.training
        self.eval()
        try:
            for _ in range(max_new_tokens):
                context = out[:, -self.config.block_size:]                     # (B, <= block_size)
                logits, _ = self(backend.to_device(context, self.device))      # (B, T, V)
                # (B, V): only this row leaves the device
                last = backend.to_host(logits.data[:, -1, :]).astype(np.float64)
                token = self._pick(last, temperature, top_k, rng)              # (B,)
                if stop_token is not None:
                    token = np.where(stopped, stop_token, token)              # a stopped row is padded
                    stopped |= token == stop_token
                out = np.concatenate([out, token[:, None]], axis=1)
                if stopped.all():
                    break
        finally:
            self.train(was_training)
        return out

    @staticmethod
    def _pick(logits: np.ndarray, temperature: float, top_k: int | None, rng: np.random.Generator) -> np.ndarray:
        """One next token per row (B,) from host logits (B, V): argmax at temperature 0, else a sample of
        softmax(logits / temperature) over the ``top_k`` largest logits."""
        if temperature == 0:
            return logits.argmax(axis=-1)
        logits = logits / temperature
        if top_k is not None:
            kth = np.sort(logits, axis=-1)[:, -min(top_k, logits.shape[-1])][:, None]
            logits = np.where(logits < kth, -np.inf, logits)
        probs = np.exp(logits - logits.max(axis=-1, keepdims=True))
        probs /= probs.sum(axis=-1, keepdims=True)
        return np.array([rng.choice(probs.shape[-1], p=row) for row in probs])
