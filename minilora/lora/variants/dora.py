"""DoRA: weight-decomposed low-rank adaptation (Liu et al. 2024, arXiv 2402.09353), as PEFT's ``use_dora=True``.

A weight is a magnitude times a direction.  DoRA lets LoRA change the direction and learns the magnitude
separately, one number per output feature (row i of the (d, k) weight):

    W' = m ⊙ (W0 + s·B A) / ‖W0 + s·B A‖,      ‖V‖_i = sqrt(Σ_j V_ij²)   (the L2 norm of row i, over the inputs)
    y  = x W'ᵀ + b = (m / ‖W0 + s·B A‖) ⊙ (x W0ᵀ + s·(x Aᵀ) Bᵀ) + b

m (``lora_magnitude_vector``, shape (d,)) starts at ‖W0‖ (B = 0), so step 0 computes the base model exactly.
The bias is not rescaled (PEFT's ``DoraLinearLayer.forward`` adds back the base output with its bias).

The norm is *detached* (the paper's §4.3, and PEFT): it is recomputed from the current A and B at every
forward, but backward treats it as a constant, which saves the memory of differentiating through a d×k
norm.  So the gradients are those of the formula with ‖W0 + s·B A‖ frozen at its current value: the exact
gradient with respect to m, and not quite the full gradient with respect to A and B.

Unlike plain LoRA, the forward forms B A (d × k) once per call, to take the norm; the matmuls with x still
run in the cheap order.
"""

from __future__ import annotations

from typing import Any

from minilora import backend, nn
from minilora import functional as F
from minilora.engine.tensor import Tensor, is_grad_enabled
from minilora.lora.layer import LoRALinear
from minilora.lora.variants.pissa import BASE_CHANGING_INITS
from minilora.validation import RngLike

__all__ = ["DoraLinear"]


class DoraLinear(LoRALinear):
    """A LoRALinear with DoRA's magnitude: y = (m / ‖W0 + s·B A‖) ⊙ (x W0ᵀ + s·(x Aᵀ) Bᵀ) + b.

    ``lora_magnitude_vector`` m (d,) trains with A and B; it starts at the row norms of W0 + s·B A (= ‖W0‖,
    since B = 0).  ``merge()`` writes W' = (m / ‖W0 + s·B A‖) ⊙ (W0 + s·B A) into ``base.weight`` and
    ``unmerge()`` restores W0 bit for bit (the original array is kept, as in LoRALinear).
    """

    def __init__(self, base: nn.Linear, r: int = 4, lora_alpha: float | None = None, lora_dropout: float = 0.0,
                 init_lora_weights: bool | str = True, use_rslora: bool = False, rng: RngLike = None):
        if init_lora_weights in BASE_CHANGING_INITS:
            raise ValueError(f"DoraLinear: init_lora_weights={init_lora_weights!r} is not supported with DoRA by "
                             "minilora; use True or 'gaussian'")
        super().__init__(base, r, lora_alpha, lora_dropout, init_lora_weights, use_rslora, rng=rng)
        self.lora_magnitude_vector = nn.Parameter(self.weight_norm())  # (d,)  m = ‖W0 + s·B A‖ = ‖W0‖

    def weight_norm(self) -> Any:
        """‖W0 + s·B A‖ per output feature: (d,) row norms, a raw array (no graph: the norm is detached)."""
        w = self.w0 + self.delta_weight().astype(self.w0.dtype)  # (d, k)
        return backend.get_xp(w).sqrt((w * w).sum(axis=1))     # (d,)

    def merged_weight(self) -> Any:
        """The weight ``merge()`` writes: (m / ‖W0 + s·B A‖)[:, None] ⊙ (W0 + s·B A) (W0 is kept aside by merge)."""
        weight = self.base.weight
        scale = self.lora_magnitude_vector.data / self.weight_norm()  # (d,)
        return (scale[:, None] * (weight.data + self.delta_weight().astype(weight.dtype))).astype(weight.dtype)

    def forward(self, x: Tensor) -> Tensor:
        """y = (m / ‖W0 + s·B A‖) ⊙ (x W0ᵀ + s·(x Aᵀ) Bᵀ) + b for x (..., k); y (..., d).

        With dropout active (training, p > 0), PEFT's form: the base path sees x, the adapter sees dropout(x),
        y = x W0ᵀ + b + (m/‖·‖ − 1) ⊙ (dropout(x) W0ᵀ) + (m/‖·‖) ⊙ s·(dropout(x) Aᵀ) Bᵀ (the same y when p = 0).
        """
        if self.disable_adapters and self.merged:                       # inside disable_adapter(model)
            self.unmerge()
        if self.merged:
            if self.training and is_grad_enabled() and any(
                    p.requires_grad for p in (self.lora_A, self.lora_B, self.lora_magnitude_vector)):
                raise RuntimeError(
                    "DoraLinear: forward in training mode with gradients enabled while the adapter is merged "
                    "into the base weight; A, B and m would silently get no gradient. Call unmerge() "
                    "(minilora.lora.unmerge_lora(model)) before training, or use model.eval() / no_grad() for inference"
                )
            return self.base(x)                                         # (..., d)   x W'ᵀ + b: one matmul
        if self.disable_adapters:                                        # inside disable_adapter(model)
            return self.base(x)                                          # (..., d)   x W0ᵀ + b
        scale = self.lora_magnitude_vector / Tensor(self.weight_norm())  # (d,)      m / ‖W0 + s·B A‖ (detached)
        h = self.lora_dropout(x)                                         # (..., k)
        lora = F.linear(F.linear(h, self.lora_A) * self.scaling, self.lora_B)  # (..., d)   s·B (A h)
        if h is x:                                                       # no dropout: one base matmul
            y = (F.linear(x, self.base.weight) + lora) * scale           # (..., d)
            return y if self.base.bias is None else y + self.base.bias
        return self.base(x) + F.linear(h, self.base.weight) * (scale - 1.0) + lora * scale  # (..., d)

    def extra_repr(self) -> str:
        return super().extra_repr() + ", use_dora=True"
