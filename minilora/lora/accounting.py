"""Parameter accounting: what LoRA saves.

A d×k weight costs d·k numbers to fine-tune; its LoRA update B A costs r(d + k).  For a square
d_model × d_model projection that is 2·d_model·r, a fraction 2r / d_model of the full matrix.
"""

from __future__ import annotations

from typing import Iterable, NamedTuple

from minilora import nn
from minilora.lora.inject import require_lora_layers

__all__ = [
    "ParameterCount", "count_parameters", "stored_weights", "LoraRow", "LoraReport", "lora_report", "lora_param_count",
    "TransformerDims", "GPT3_175B", "gpt3_lora_param_count",
]


class ParameterCount(NamedTuple):
    """Trainable and total scalar parameters of a model; percent = 100 · trainable / total."""

    trainable: int
    total: int
    percent: float

    def __str__(self) -> str:
        """PEFT's ``print_trainable_parameters`` wording."""
        return f"trainable params: {self.trainable:,} || all params: {self.total:,} || trainable%: {self.percent:.4f}"


def stored_weights(model: nn.Module) -> int:
    """Frozen weights a model holds outside its Parameters: Σ ``m.quant.numel`` over modules with ``is_quantized``.

    A 4-bit layer (``minilora.quant.Linear4bit``, QLoRA's base) keeps its d×k weight as packed codes, not as a
    Parameter, so ``parameters()`` misses it.  It is found by duck typing (an ``is_quantized`` flag and a ``quant``
    with ``numel`` = d·k, the number of weights it represents, not its bytes), because ``lora`` may not import
    ``quant`` (both sit on layer 4).
    """
    return sum(int(m.quant.numel) for m in model.modules() if getattr(m, "is_quantized", False))


def count_parameters(model: nn.Module) -> ParameterCount:
    """Count scalar weights: trainable (``requires_grad``) and total; LoRA's A and B are included in both.

    total = Σ p.size over Parameters + ``stored_weights(model)`` (the frozen 4-bit weights of a QLoRA base, which
    are not Parameters), so a QLoRA model and its LoRA twin report the same total.
    """
    trainable = total = 0
    for p in model.parameters():
        total += p.size
        trainable += p.size if p.requires_grad else 0
    total += stored_weights(model)
    return ParameterCount(trainable, total, 100.0 * trainable / total if total else 0.0)


class LoraRow(NamedTuple):
    """One adapted layer: W (d, k) has ``full`` = d·k weights; its LoRA update has ``lora`` = r(d + k)."""

    name: str
    d: int
    k: int
    full: int
    r: int
    lora: int

    @property
    def ratio(self) -> float:
        """lora / full = r(d + k) / (d·k)."""
        return self.lora / self.full


class LoraReport(NamedTuple):
    """``rows`` (one LoraRow per LoRA layer) and ``table``, the same as aligned text with a total line."""

    rows: list[LoraRow]
    table: str

    def __str__(self) -> str:
        """The aligned text table."""
        return self.table


def lora_report(model: nn.Module) -> LoraReport:
    """Per-layer accounting of ``model``'s LoRA layers: d, k, d·k, r, r(d + k), and their ratio.

    ``rows, table = lora_report(model)``;  ``print(table)``.
    """
    layers = require_lora_layers(model, "lora_report")
    rows = [LoraRow(name or "<model>", layer.out_features, layer.in_features,
                    layer.out_features * layer.in_features, layer.r,
                    layer.r * (layer.out_features + layer.in_features)) for name, layer in layers]
    full, lora = sum(r.full for r in rows), sum(r.lora for r in rows)
    cells = [("layer", "d", "k", "d·k", "r", "r(d+k)", "ratio")]
    cells += [(r.name, f"{r.d:,}", f"{r.k:,}", f"{r.full:,}", str(r.r), f"{r.lora:,}", f"{100 * r.ratio:.2f}%")
              for r in rows]
    cells.append(("total", "", "", f"{full:,}", "", f"{lora:,}", f"{100 * lora / full:.2f}%"))
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
             for row in cells]
    lines.insert(1, "-" * len(lines[0]))
    lines.insert(len(lines) - 1, "-" * len(lines[0]))
    return LoraReport(rows, "\n".join(lines))


def lora_param_count(d_model: int, n_layers: int, r: int, targets: Iterable[str] = ("q", "v")) -> int:
    """Trainable LoRA parameters of a standard transformer:  |Θ| = 2 · d_model · r · |targets| · n_layers.

    Each adapted d_model × d_model projection (targets among "q", "k", "v", "o": W_q, W_k, W_v,
    W_o) costs r(d + k) = 2·d_model·r.  The LoRA paper's GPT-3 175B (d_model = 12288, 96 layers,
    ``GPT3_175B``):

    >>> lora_param_count(12288, 96, r=1)            # W_q, W_v at r = 1 (paper: 4.7M)
    4718592
    >>> lora_param_count(12288, 96, r=8)            # W_q, W_v at r = 8 (paper: 37.7M)
    37748736
    >>> lora_param_count(12288, 96, r=2, targets="qkvo")   # Table 5's 18M budget
    18874368
    """
    targets = tuple(targets)
    for name, value in (("d_model", d_model), ("n_layers", n_layers), ("r", r)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"lora_param_count: {name} must be a positive integer, got {value!r}")
    unknown = [t for t in targets if t not in ("q", "k", "v", "o")]
    if unknown or not targets or len(set(targets)) != len(targets):
        raise ValueError("lora_param_count: targets must be distinct letters among 'q', 'k', 'v', "
                         f"'o', got {targets!r}")
    return 2 * d_model * r * len(targets) * n_layers


class TransformerDims(NamedTuple):
    """The two numbers of a standard transformer that LoRA's parameter count needs: width and depth."""

    name: str
    d_model: int
    n_layers: int


GPT3_175B = TransformerDims("GPT-3 175B", d_model=12288, n_layers=96)
"""GPT-3 175B (Brown et al. 2020, Table 2.1): d_model = 12288, 96 layers; the model of the LoRA paper's tables."""


def gpt3_lora_param_count(r: int, targets: Iterable[str] = ("q", "v")) -> int:
    """LoRA's trainable parameters on GPT-3 175B: ``lora_param_count(12288, 96, r, targets)`` = 2·12288·r·|targets|·96.

    >>> gpt3_lora_param_count(1), gpt3_lora_param_count(8)    # the paper's 4.7M and 37.7M (W_q, W_v)
    (4718592, 37748736)
    """
    return lora_param_count(GPT3_175B.d_model, GPT3_175B.n_layers, r, targets)
