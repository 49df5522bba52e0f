"""LoRA-FA: LoRA with A frozen, only B trained (Zhang et al. 2023, arXiv 2308.03303).

The forward is LoRA's, h = W0 x + s·B (A x); what changes is what trains.  A stays the random
projection it was drawn as (a fixed down-projection to r dimensions) and only B (d × r) learns, so
ΔW = s·B A lives in the row space of that A.  The saving is in training memory: A gets no gradient and
no optimizer state.  With AdamW (two moments per trained number), per adapted d × k layer in float32:

    LoRA     (2 + 1) · 4 · r (d + k)  bytes     (m, v and the gradient of A and B)
    LoRA-FA  (2 + 1) · 4 · r d        bytes     (of B only):  saved 2·4·|A| (optimizer) + 4·|A| (gradient)

(the paper's larger saving, the activations: with A frozen the input x need not be kept for A's gradient,
only the r numbers A x per token.)

How minilora's B update differs from PEFT's.  PEFT has no LoRA-FA config field: its ``create_lorafa_optimizer``
sets ``requires_grad=False`` on every lora_A and returns its own ``LoraFAOptimizer``.  Write G = ∂L/∂W for the
gradient a full fine-tune would take on W (d × k).  Since ΔW = s·B A, the plain gradient of B is

    g_B = ∂L/∂B = s · G Aᵀ                                     (d × r)

minilora feeds exactly this g_B to the ordinary AdamW every method uses (``optim.AdamW``, weight decay as
configured there).  PEFT's optimizer first *projects* it, per layer, before its AdamW moments see it:

    g̃_B = (1/s²) · g_B (A Aᵀ + δ I)⁺,   δ = 1e-8, ⁺ = pseudo-inverse  (under bfloat16 autocast where available)

Why: a step ΔB changes the weight by s·ΔB A, and the ΔB that makes it closest to the full gradient,
argmin ‖s·ΔB A − G‖_F, is ΔB = (1/s) G Aᵀ (A Aᵀ)⁻¹ = g̃_B, giving s·g̃_B A = G Aᵀ (A Aᵀ)⁻¹ A, G projected onto
A's row space (the paper's "gradient approximation").  The rest of PEFT's step is Hugging Face's old AdamW: eps
1e-6 added to sqrt(v) before bias correction, which is folded into the step size, and weight decay applied after
the Adam step, B ← B − lr·wd·B.

How much the projection matters: with kaiming-uniform A (A_ij ~ U(±1/sqrt(k))), A Aᵀ ≈ I/3 up to off-diagonal
terms of relative size ~1/sqrt(k) (with "gaussian", ≈ (k/r²)·I), so g̃_B ≈ (3/s²)·g_B, and Adam's per-coordinate
normalisation m/sqrt(v) cancels a constant factor (up to eps): the two updates differ mainly through the
off-diagonal part of A Aᵀ, small for wide layers (k in the thousands), about 1/8 of the diagonal at k = 64.
minilora implements the defining part — A frozen at prepare time — and not the projection; an adapter trained
either way is a plain LoRA adapter (PEFT reads it as one).
"""

from __future__ import annotations

from dataclasses import dataclass

from minilora import nn
from minilora.lora.inject import require_lora_layers

__all__ = ["freeze_lora_A", "LoraFAMemory", "lorafa_memory"]

_ADAMW_BUFFERS = 2  # exp_avg and exp_avg_sq per trained number


def freeze_lora_A(model: nn.Module) -> nn.Module:
    """LoRA-FA: every LoRA layer's A stops training (``requires_grad = False``); B (and DoRA's m) still train.
    Returns ``model``."""
    for _, layer in require_lora_layers(model, "freeze_lora_A"):
        layer.lora_A.requires_grad_(False)
    return model


@dataclass(frozen=True)
class LoraFAMemory:
    """Training memory of a model's adapter in bytes: AdamW's state and the gradients, with A trained (LoRA)
    and with A frozen (LoRA-FA).  ``saved`` = lora − lorafa = 3 · itemsize · |A| summed over layers."""

    lora_optimizer_bytes: int
    lora_gradient_bytes: int
    lorafa_optimizer_bytes: int
    lorafa_gradient_bytes: int

    @property
    def lora_bytes(self) -> int:
        return self.lora_optimizer_bytes + self.lora_gradient_bytes

    @property
    def lorafa_bytes(self) -> int:
        return self.lorafa_optimizer_bytes + self.lorafa_gradient_bytes

    @property
    def saved(self) -> int:
        return self.lora_bytes - self.lorafa_bytes


def lorafa_memory(model: nn.Module) -> LoraFAMemory:
    """The AdamW-state and gradient bytes of ``model``'s adapter parameters (A, B, DoRA's m), counting A as
    trained (LoRA) and as frozen (LoRA-FA), whatever A's ``requires_grad`` is now.

    optimizer = 2 · nbytes (AdamW's m and v), gradient = nbytes, per trained parameter.
    """
    a_bytes = others = 0
    for _, layer in require_lora_layers(model, "lorafa_memory"):
        a_bytes += layer.lora_A.data.nbytes
        others += sum(p.data.nbytes for name, p in layer.named_parameters()
                      if p.requires_grad and not name.startswith(("base.", "lora_A")))
    return LoraFAMemory(_ADAMW_BUFFERS * (a_bytes + others), a_bytes + others, _ADAMW_BUFFERS * others, others)
