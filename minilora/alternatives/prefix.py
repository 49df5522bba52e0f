"""Prefix-tuning (Li & Liang 2021, arXiv 2101.00190): learned keys and values in front of every layer's attention.

In each of the L layers, every head gets p learned key and value vectors (p = ``num_virtual_tokens``), put before
the keys and values the tokens compute, so every token also attends to them:

    y = softmax(q [P_k; k]ᵀ / √h + mask) [P_v; v]        P_k, P_v: (H, p, h) per layer;  scores (T, p + T)

The model stays frozen; only the prefixes train: p · L · 2 · C numbers (C = H · h).  Li & Liang found that
training P directly is unstable and reparameterise it through a small MLP during training (PEFT's
``prefix_projection=True``, with ``encoder_hidden_size`` = E):

    P = W_2 · tanh(W_1 · P' + b_1) + b_2        P': (p, C),  W_1: E×C,  W_2: (L·2·C)×E

which trains p·C + C·E + E + E·L·2·C + L·2·C numbers; after training only P is needed (``materialize_prefix``).
The columns of P (one row per virtual token) are laid out as PEFT's past key values: layer i's keys are columns
[2i·C, (2i+1)·C), its values the next C, each C split into H heads of h.

Unlike LoRA and adapters, a prefix changes the model at step 0 (the p extra keys take attention weight from the
tokens' own); it is drawn N(0, 0.02²), the GPT's own weight scale.

What a prefix costs (``prefix_cost``), for a sequence of T tokens:

- attention: every query scores T + p keys instead of T: H · T · (T + p) scores per layer, (T + p) / T times the
  base; the projections and the MLP (most of the forward's work at small T) are unchanged.
- memory: a key/value cache holds 2 · p · C more numbers per layer per sequence (p more positions).
- context: here the prefix keys take *no* positions (tokens keep their position embeddings 0..T−1), so the whole
  ``block_size`` stays usable.  In Hugging Face GPT-2 with PEFT prefix-tuning the prefix arrives as p past key
  values and the tokens' position ids start at p, so there the usable context is ``block_size − p``; with
  prefix-*embedding* tuning (virtual tokens at the input, the LoRA paper's PrefixEmbed) the p virtual tokens
  take p positions too.  ``prefix_cost`` reports both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from minilora import backend, nn
from minilora import functional as F
from minilora.engine.creation import zeros
from minilora.engine.tensor import Tensor, no_grad
from minilora.validation import is_int

__all__ = ["PrefixConfig", "PrefixEncoder", "apply_prefix", "materialize_prefix", "prefix_attentions",
           "prefix_cost", "prefix_param_count"]

INIT_STD = 0.02  # the prefixes' (or P''s) initial scale: the GPT's own weight scale


@dataclass(frozen=True)
class PrefixConfig:
    """Prefix length p (``num_virtual_tokens``) and the optional MLP reparameterisation (PEFT's names)."""

    num_virtual_tokens: int = 8
    prefix_projection: bool = False
    encoder_hidden_size: int = 64

    def __post_init__(self) -> None:
        for name in ("num_virtual_tokens", "encoder_hidden_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not is_int(value) or value < 1:
                raise ValueError(f"prefix: {name} must be an integer >= 1, got {value!r}")
        if not isinstance(self.prefix_projection, bool):
            raise ValueError(f"prefix: prefix_projection must be True or False, got {self.prefix_projection!r}")


class PrefixEncoder(nn.Module):
    """The learned prefixes of all L layers, P of shape (p, L · 2 · C): ``embedding`` itself, or with
    ``prefix_projection`` the MLP  P = transform_out(tanh(transform_in(embedding)))  (embedding (p, C)).

    ``layer(i, b)`` is layer i's (keys, values), each (b, H, p, h), computed from layer i's columns only.
    """

    def __init__(self, config: PrefixConfig, n_layer: int, n_head: int, n_embd: int, seed: int = 0,
                 dtype: Any = np.float32, device: str | None = None):
        super().__init__()
        self.config, self.n_layer, self.n_head, self.n_embd = config, n_layer, n_head, n_embd
        rng = np.random.default_rng(seed)
        p, width = config.num_virtual_tokens, 2 * n_layer * n_embd
        device = device or backend.default_device()
        first = n_embd if config.prefix_projection else width
        table = rng.normal(0.0, INIT_STD, (p, first)).astype(dtype)
        self.embedding = nn.Parameter(backend.to_device(table, device))                   # (p, C) or (p, L·2·C)
        self.transform_in = self.transform_out = None
        if config.prefix_projection:
            hidden = config.encoder_hidden_size
            self.transform_in = nn.Linear(n_embd, hidden, rng=rng, dtype=dtype, device=device)   # C → E
            self.transform_out = nn.Linear(hidden, width, rng=rng, dtype=dtype, device=device)   # E → L·2·C

    def layer(self, i: int, b: int) -> tuple[Tensor, Tensor]:
        """Layer ``i``'s prefix keys and values, each (b, H, p, h), broadcast over the batch of ``b``."""
        c, p, heads = self.n_embd, self.config.num_virtual_tokens, self.n_head
        cols = slice(2 * i * c, 2 * (i + 1) * c)                                   # layer i: keys, then values
        if self.transform_out is None:
            kv = self.embedding[:, cols]                                           # (p, 2C)
        else:
            hidden = F.tanh(self.transform_in(self.embedding))                     # (p, E)
            kv = F.linear(hidden, self.transform_out.weight[cols], self.transform_out.bias[cols])  # (p, 2C)
        kv = kv.reshape(p, 2, heads, c // heads).transpose(1, 2, 0, 3)             # (2, H, p, h)
        keys, values = kv[0:1], kv[1:2]                                            # (1, H, p, h) each
        if b > 1:
            batch = zeros((b, 1, 1, 1), dtype=kv.dtype, device=kv.device)
            keys, values = keys + batch, values + batch                            # (B, H, p, h) each
        return keys, values

    def forward(self) -> Tensor:
        """P: every layer's prefixes as one (p, L · 2 · C) tensor (PEFT's layout)."""
        if self.transform_out is None:
            return self.embedding
        return self.transform_out(F.tanh(self.transform_in(self.embedding)))

    def extra_repr(self) -> str:
        projection = f", projection E={self.config.encoder_hidden_size}" if self.config.prefix_projection else ""
        return f"p={self.config.num_virtual_tokens}, layers={self.n_layer}, C={self.n_embd}{projection}"


class _LayerPrefix:
    """The ``prefix`` hook of one attention module: B → layer i's (keys, values) from the shared encoder.
    A plain object, not a Module: the encoder's weights belong to the model once, as ``prefix_encoder``."""

    def __init__(self, encoder: PrefixEncoder, i: int):
        self.encoder, self.i = encoder, i

    def __call__(self, b: int) -> tuple[Tensor, Tensor]:
        return self.encoder.layer(self.i, b)


def prefix_attentions(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) of every attention module that takes a prefix (has ``prefix`` and ``n_head``), in order."""
    return [(name, m) for name, m in model.named_modules() if hasattr(m, "prefix") and hasattr(m, "n_head")]


def _width(attn: nn.Module) -> int:
    """C, the attention's width: the out_features of its last Linear (o_proj in a GPT)."""
    return [m for _, m in attn.named_modules() if isinstance(m, nn.Linear)][-1].out_features


def apply_prefix(model: nn.Module, config: PrefixConfig | None = None, seed: int = 0) -> nn.Module:
    """Freeze ``model`` and give every attention module (one with a ``prefix`` hook, as the GPT's) learned
    prefixes: one ``PrefixEncoder`` at ``model.prefix_encoder`` holds them all; only it trains.  In place."""
    config = config or PrefixConfig()
    attentions = prefix_attentions(model)
    if not attentions:
        raise ValueError("apply_prefix: the model has no attention module with a prefix hook")
    if hasattr(model, "prefix_encoder"):
        raise ValueError("apply_prefix: the model already has a prefix")
    model.requires_grad_(False)
    heads, width = attentions[0][1].n_head, _width(attentions[0][1])
    encoder = PrefixEncoder(config, len(attentions), heads, width, seed=seed,
                            dtype=next(model.parameters()).dtype, device=model.device)
    model.prefix_encoder = encoder
    for i, (_, attn) in enumerate(attentions):
        attn.prefix = _LayerPrefix(encoder, i)
    return model


@no_grad()
def materialize_prefix(model: nn.Module) -> nn.Module:
    """Drop the reparameterisation after training: the encoder keeps only P = MLP(P') as its embedding
    (p, L·2·C), what Li & Liang keep for inference.  The outputs are unchanged up to rounding.  In place."""
    encoder = model.prefix_encoder
    if encoder.transform_out is None:
        return model
    table = encoder().data                                                         # (p, L·2·C)
    encoder.transform_in = encoder.transform_out = None
    encoder.embedding = nn.Parameter(table, requires_grad=False)
    encoder.config = PrefixConfig(encoder.config.num_virtual_tokens, False, encoder.config.encoder_hidden_size)
    return model


def prefix_param_count(n_layer: int, n_embd: int, config: PrefixConfig | None = None) -> int:
    """Trainable numbers: p·L·2·C, or with the projection p·C + C·E + E + E·L·2·C + L·2·C."""
    config = config or PrefixConfig()
    p, width, hidden = config.num_virtual_tokens, 2 * n_layer * n_embd, config.encoder_hidden_size
    if not config.prefix_projection:
        return p * width
    return p * n_embd + n_embd * hidden + hidden + hidden * width + width


def prefix_cost(n_layer: int, n_head: int, n_embd: int, block_size: int, num_virtual_tokens: int,
                seq_len: int | None = None) -> dict[str, Any]:
    """What a prefix of p = ``num_virtual_tokens`` costs a GPT at sequence length T (default ``block_size``).

    attention_scores       H·T·(T + p) per layer and sequence (base H·T²); ratio (T + p) / T
    kv_cache_extra         2·p·C·L more cached numbers per sequence (keys and values of the prefix)
    positions_taken        0 here (the prefix has no position): usable_context = block_size
    positions_taken_peft   p in Hugging Face GPT-2 + PEFT (position ids start after the p past key values) and
                           in prefix-embedding tuning: usable_context_peft = block_size − p
    """
    t = block_size if seq_len is None else seq_len
    p = num_virtual_tokens
    if not (is_int(t) and 1 <= t <= block_size) or not (is_int(p) and p >= 1):
        raise ValueError(f"prefix_cost: expected 1 <= seq_len <= block_size={block_size} and num_virtual_tokens "
                         f">= 1, got seq_len={seq_len!r}, num_virtual_tokens={num_virtual_tokens!r}")
    return {"num_virtual_tokens": p, "seq_len": t, "keys_per_query": t + p,
            "attention_scores": n_head * t * (t + p), "attention_scores_base": n_head * t * t,
            "attention_ratio": (t + p) / t,
            "kv_cache": 2 * (t + p) * n_embd * n_layer, "kv_cache_base": 2 * t * n_embd * n_layer,
            "kv_cache_extra": 2 * p * n_embd * n_layer,
            "positions_taken": 0, "usable_context": block_size,
            "positions_taken_peft": p, "usable_context_peft": block_size - p}
