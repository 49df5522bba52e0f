"""LoRA+: B learns λ times faster than A (Hayou et al. 2024, arXiv 2402.12354).

In h = W0 x + s·B A x, A (r × k) and B (d × r) play different roles: A reads the k-dimensional input,
B writes the d-dimensional output, and with B = 0 at the start one learning rate is not efficient for
both as the width grows.  LoRA+ uses

    η_B = λ · η_A,     λ = ``loraplus_lr_ratio`` (≥ 1; the paper suggests about 2⁴ = 16)

built as PEFT's ``create_loraplus_optimizer`` builds AdamW's parameter groups, over the trainable parameters:

    group A         every trainable matrix that is not a lora_B           lr = η,     weight_decay = wd
    group B         lora_B, and every 1-D parameter (DoRA's m, biases)    lr = λ·η,   weight_decay = wd
    group B (no wd) those of group B that are biases or LayerNorm weights lr = λ·η,   weight_decay = 0

(PEFT's fourth group, LoRA on embedding tables at ``loraplus_lr_embedding``, does not arise: minilora adapts
Linear layers only.)  PEFT's ``loraplus_weight_decay`` defaults to 0; here it is ``weight_decay``.

Each B group carries ``lr_ratio`` = λ, so a schedule that sets ``optimizer.lr = η`` gives it λ·η and keeps the
ratio at every step (``optim.Optimizer.lr``).  ``train`` builds these groups when the model brings them
(``model.optimizer_groups``, which the "lora-plus" method sets).
"""

from __future__ import annotations

import math
from typing import Any

from minilora import nn
from minilora.lora.inject import require_lora_layers
from minilora.validation import is_real

__all__ = ["loraplus_param_groups"]


def _no_decay_ids(model: nn.Module) -> set[int]:
    """Parameters PEFT's grouping keeps out of weight decay: biases and LayerNorm weights."""
    ids = {id(p) for name, p in model.named_parameters() if "bias" in name}
    for _, module in model.named_modules():
        if isinstance(module, nn.LayerNorm):
            ids |= {id(p) for p in module.parameters()}
    return ids


def loraplus_param_groups(model: nn.Module, lr: float, loraplus_lr_ratio: float,
                          weight_decay: float = 0.0) -> list[dict[str, Any]]:
    """AdamW parameter groups for LoRA+ (see the module docstring): [group A at ``lr``, group B at
    ``lr · loraplus_lr_ratio``, group B without weight decay], each a dict with "params", "lr", "weight_decay"
    (and "lr_ratio" for the B groups; empty groups left out).  Only trainable parameters are placed; ``model``
    must have LoRA layers.

    ``optim.AdamW(loraplus_param_groups(model, lr, 16.0))`` trains B at 16× A's learning rate.
    """
    require_lora_layers(model, "loraplus_param_groups")
    if not is_real(loraplus_lr_ratio) or not math.isfinite(loraplus_lr_ratio) or loraplus_lr_ratio <= 0:
        raise ValueError("loraplus_param_groups: loraplus_lr_ratio must be a positive number, got "
                         f"{loraplus_lr_ratio!r}")
    no_decay = _no_decay_ids(model)
    group_a, group_b, group_b_no_decay = [], [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if name.rsplit(".", 1)[-1] == "lora_B" or p.ndim == 1:
            (group_b_no_decay if id(p) in no_decay else group_b).append(p)
        else:
            group_a.append(p)
    ratio = float(loraplus_lr_ratio)
    groups = [{"params": group_a, "lr": lr, "weight_decay": weight_decay},
              {"params": group_b, "lr": lr * ratio, "lr_ratio": ratio, "weight_decay": weight_decay},
              {"params": group_b_no_decay, "lr": lr * ratio, "lr_ratio": ratio, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]
