"""Checks for notebook 03, LoRA's mathematics: the rank of two merged updates and how ‖ΔW‖ scales with r (two
predictions), LoRA's backward by hand (gradchecked), the trainable-parameter count of any GPT."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

import minilora as ml
from checks import NotYet, exercise, expect_equal
from minilora.lora import LoraConfig, apply_lora, count_parameters
from minilora.models import GPT, GPTConfig


@exercise("03")
def merged_rank(answer: Any) -> str:
    """A prediction: merged_rank(r1, r2, d, k) is the rank of ΔW1 + ΔW2 for generic rank-r1 and rank-r2 updates of a
    d×k weight, min(r1 + r2, d, k); checked against the measured rank of random updates."""
    rng = np.random.default_rng(5)
    for r1, r2, d, k in ((2, 3, 64, 64), (1, 1, 8, 8), (4, 4, 64, 16), (12, 8, 64, 16), (8, 8, 12, 64), (3, 5, 9, 40),
                         (6, 2, 7, 7)):
        first, second = (rng.normal(size=(d, r_)) @ rng.normal(size=(r_, k)) for r_ in (r1, r2))  # B A, (d, k)
        total = first + second
        expect_equal(f"merged_rank({r1}, {r2}, {d}, {k})", answer(r1, r2, d, k), int(np.linalg.matrix_rank(total)),
                     "the columns of ΔW1 + ΔW2 are combinations of the columns of B1 and of B2; how many independent "
                     "directions is that at most, and what else limits the rank of a d×k matrix?")
    return "ranks add, min(r1 + r2, d, k): two generic updates share no direction until the matrix is full"


EXPONENTS = (-0.5, 0.0)  # ‖ΔW‖_F ∝ r^p early in training: the sum of r unrelated rank-one terms grows like √r
TOLERANCE = 0.15  # on each exponent


@exercise("03")
def update_size_exponents(answer: Any) -> str:
    """A prediction: (p for s = α/r, p for s = α/√r) in ‖ΔW‖_F ∝ r^p after a few Adam steps with an r-independent
    init of A; within 0.15 of (−1/2, 0)."""
    if (not isinstance(answer, (tuple, list)) or len(answer) != 2
            or not all(isinstance(p, numbers.Real) and not isinstance(p, bool) for p in answer)):
        raise NotYet(f"update_size_exponents should be a pair of numbers (p for α/r, p for α/√r), got {answer!r}")
    p_lora, p_rslora = (float(p) for p in answer)
    grows_lora, grows_rslora = p_lora + 1.0, p_rslora + 0.5  # the growth of ‖BA‖ itself that each answer implies
    if abs(grows_lora - grows_rslora) > 2 * TOLERANCE:
        raise NotYet(f"your two exponents imply different growths of ‖BA‖ (r^{grows_lora:g} and r^{grows_rslora:g}); "
                     "with Adam, B moves by about the learning rate whatever s is, so BA grows the same way under "
                     "both scalings: only the factor s = α/r or α/√r differs")
    if abs(grows_lora - 0.5) > TOLERANCE or abs(grows_rslora - 0.5) > TOLERANCE:
        raise NotYet(f"your answer says ‖BA‖_F grows like r^{grows_rslora:g} before the scaling; hint: BA is a sum of "
                     "r rank-one terms of about equal size in unrelated directions — how does the length of a sum of r "
                     "random vectors of equal length grow?")
    return ("(−1/2, 0): ‖BA‖ grows like √r, so α/r shrinks the update like 1/√r and α/√r keeps it; the simulation "
            "below measures it")


def _lora_grads(x, W0, A, B, scaling, g):
    """(∂L/∂x, ∂L/∂A, ∂L/∂B) of h = x W0ᵀ + b + s (x Aᵀ) Bᵀ for the upstream gradient g = ∂L/∂h."""
    u, gu = x @ A.T, scaling * (g @ B)  # (N, r): the bottleneck and its gradient
    return g @ W0 + gu @ A, gu.T @ x, scaling * g.T @ u


@exercise("03")
def lora_backward(answer: Any) -> str:
    """lora_backward(x, W0, A, B, alpha, r, g) = (∂L/∂x, ∂L/∂A, ∂L/∂B) for h = x W0ᵀ + b + (α/r)(x Aᵀ) Bᵀ and
    g = ∂L/∂h; wrapped in an ml.Function whose backward calls it, it must pass gradcheck."""
    rng = np.random.default_rng(4)
    for alpha, r, (n, k, d) in ((8, 3, (3, 5, 4)), (1, 4, (2, 6, 5)), (16, 5, (4, 5, 7))):
        scaling = alpha / r
        x, W0, A, B, g = (rng.normal(size=shape) for shape in ((n, k), (d, k), (r, k), (d, r), (n, d)))
        b = rng.normal(size=d)
        grads = answer(x.copy(), W0.copy(), A.copy(), B.copy(), alpha, r, g.copy())
        if not (isinstance(grads, (tuple, list)) and len(grads) == 3):
            raise NotYet(f"lora_backward should return a triple (grad_x, grad_A, grad_B), got {type(grads).__name__}")
        for name, grad, value in zip(("grad_x", "grad_A", "grad_B"), grads, (x, A, B), strict=True):
            if np.shape(grad) != value.shape:
                raise NotYet(f"{name} has shape {np.shape(grad)}, expected {value.shape} (the shape of what it is "
                             "the gradient of)")
        floor = _lora_grads(x, W0, A, B, alpha // r, g)
        if not np.allclose(floor[1], _lora_grads(x, W0, A, B, scaling, g)[1]) and all(
                np.allclose(got, want) for got, want in zip(grads, floor, strict=True)):
            raise NotYet(f"with alpha={alpha}, r={r} your gradients use s = {alpha // r}: s = α/r is a real number "
                         "(alpha // r is integer division)")

        class _LoRAPath(ml.Function):
            @staticmethod
            def forward(ctx, x_, A_, B_):
                ctx.save_for_backward(x_, A_, B_)
                return x_ @ W0.T + b + ((x_ @ A_.T) * scaling) @ B_.T

            @staticmethod
            def backward(ctx, g_):
                x_, A_, B_ = ctx.saved_tensors
                return tuple(np.asarray(v, dtype=np.float64) for v in answer(x_, W0, A_, B_, alpha, r, g_))

        try:
            ml.gradcheck(_LoRAPath.apply, *(ml.tensor(v, requires_grad=True) for v in (x, A, B)))
        except AssertionError as err:
            name = {"input 0": "grad_x", "input 1": "grad_A", "input 2": "grad_B"}.get(str(err).split(" (")[0][-7:],
                                                                                        "a gradient")
            hint = {"grad_x": "x reaches h along two paths, through W0 and through A then B; each adds its term",
                    "grad_A": "A sits between x and B in the LoRA path: what multiplies it on each side, and where "
                              "does s go?",
                    "grad_B": "B's input is u = x Aᵀ, and the path is scaled by s"}.get(name, "compare shapes")
            raise NotYet(f"with alpha={alpha}, r={r}, {name} disagrees with finite differences ({err}); "
                         f"hint: {hint}") from None
    return "your backward passes gradcheck: ∂L/∂x = g W0 + s (g B) A,  ∂L/∂A = s (g B)ᵀ x,  ∂L/∂B = s gᵀ (x Aᵀ)"


def _lora_trainable(config: GPTConfig, r: int, targets: tuple) -> int:
    return count_parameters(apply_lora(GPT(config), LoraConfig(r=r, target_modules=targets))).trainable


@exercise("03")
def trainable_lora_params(answer: Any) -> str:
    """trainable_lora_params(config, r, targets): Σ r(d + k) over the GPT's Linears named in ``targets``."""
    cases = [(GPTConfig(vocab_size=67, block_size=32, n_layer=2, n_head=4, n_embd=64), 4, ("q_proj", "v_proj")),
             (GPTConfig(vocab_size=67, block_size=32, n_layer=2, n_head=4, n_embd=64), 2,
              ("q_proj", "k_proj", "v_proj", "o_proj", "fc_in", "fc_out")),
             (GPTConfig(vocab_size=28, block_size=16, n_layer=3, n_head=2, n_embd=32), 1, ("fc_in",)),
             (GPTConfig(vocab_size=28, block_size=16, n_layer=1, n_head=2, n_embd=48), 3, ("o_proj", "fc_out")),
             (GPTConfig(vocab_size=11, block_size=8, n_layer=4, n_head=1, n_embd=16), 8, ("k_proj", "fc_in"))]
    for config, r, targets in cases:
        expect_equal(f"trainable_lora_params(config with n_layer={config.n_layer}, n_embd={config.n_embd}; r={r}, "
                     f"targets={targets})", answer(config, r, targets), _lora_trainable(config, r, targets),
                     "count one adapted matrix at a time, in every layer; d and k of each target are in the shapes "
                     "that section 1 of notebook 02 lists (d = out_features, k = in_features)")
    return "Σ r(d + k) over every adapted matrix: what count_parameters reports after apply_lora, for any config"
