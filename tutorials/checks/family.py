"""Checks for notebook 09, the LoRA family: PiSSA's residual, the error of an SVD merge, sizes at an equal budget."""

from __future__ import annotations

from typing import Any

import numpy as np

import minilora as ml
from checks import NotYet, exercise, expect_equal
from minilora import nn
from minilora.experiments.methods import DEFAULT_TARGETS, get_method
from minilora.lora.multi import combine_svd
from minilora.lora.variants.pissa import pissa_init
from minilora.models import GPT, GPTConfig


def _number(what: str, got: Any) -> float:
    """``got`` as a float, or NotYet saying what came back instead."""
    try:
        value = float(np.asarray(got, dtype=np.float64))
    except (TypeError, ValueError):
        raise NotYet(f"{what} returned {got!r}; expected one number") from None
    if not np.isfinite(value):
        raise NotYet(f"{what} returned {value}; expected a finite number")
    return value


@exercise("09")
def pissa_residual_fraction(answer: Any) -> str:
    """pissa_residual_fraction(W0, r) = ‖W_res‖_F / ‖W0‖_F with W_res = W0 − s·B A from PiSSA's init at rank r:
    sqrt(Σ_{i>r} σ_i²) / sqrt(Σ_i σ_i²)."""
    rng = np.random.default_rng(3)
    pretrained = ml.pretrained("skills")
    cases = [(rng.standard_normal((12, 8)), 3), (rng.standard_normal((20, 20)) @ np.diag(np.linspace(3, 0.1, 20)), 1),
             (pretrained.blocks[0].attn.q_proj.weight.numpy().astype(np.float64), 4),
             (pretrained.blocks[1].mlp.fc_in.weight.numpy().astype(np.float64), 16)]
    for w0, r in cases:
        _, _, residual = pissa_init(w0, r, scaling=2.0)
        want = np.linalg.norm(residual) / np.linalg.norm(w0)
        got = _number(f"pissa_residual_fraction(W0 {w0.shape}, r={r})", answer(w0.copy(), r))
        if not np.isclose(got, want, rtol=1e-4, atol=1e-6):
            raise NotYet(f"pissa_residual_fraction(W0 of shape {w0.shape}, r={r}) = {got:.5g}, which is not right; "
                         "hint: write ‖W‖_F through W's singular values; which of them does PiSSA leave in the base?")
    return ("‖W_res‖ / ‖W0‖ = sqrt(Σ_{i>r} σ_i² / Σ_i σ_i²): the base keeps the tail of the spectrum, the adapter "
            "starts with its head")


@exercise("09")
def svd_merge_error(answer: Any) -> str:
    """svd_merge_error(deltas, weights, k) = ‖ΔW − ΔW_k‖_F / ‖ΔW‖_F for ΔW = Σ w_i ΔW_i and ΔW_k its best rank-k
    approximation (what add_weighted_adapter(..., combination_type="svd", svd_rank=k) stores)."""
    rng = np.random.default_rng(5)
    for d, kk, ranks, weights, k in ((16, 12, (2, 3), (0.7, 0.3), 3), (10, 10, (4, 4), (1.0, -0.5), 4),
                                     (20, 8, (1, 2, 2), (0.2, 0.5, 0.3), 2), (9, 9, (3, 3), (1.0, 1.0), 5)):
        factors = [(rng.standard_normal((r, kk)), rng.standard_normal((d, r)), 1.0) for r in ranks]  # (A, B, s)
        deltas = [b @ a for a, b, _ in factors]
        a_new, b_new = combine_svd(factors, list(weights), k)
        target = sum(w * delta for w, delta in zip(weights, deltas))
        want = np.linalg.norm(target - b_new @ a_new) / np.linalg.norm(target)
        got = _number(f"svd_merge_error(..., k={k})", answer([x.copy() for x in deltas], list(weights), k))
        if not np.isclose(got, want, rtol=1e-4, atol=1e-7):
            raise NotYet(f"svd_merge_error({len(deltas)} updates of shape {target.shape}, weights {weights}, k={k}) = "
                         f"{got:.5g}, which is not right; hint: what does the best rank-k approximation keep of a "
                         "matrix, and what does it leave out? The error is relative to the norm of the weighted sum")
    return ("the SVD merge keeps the k largest singular values of Σ w_i ΔW_i; its error is the norm of the rest: "
            "sqrt(Σ_{j≥k} σ_j² / Σ_j σ_j²)")


def _shapes(model: nn.Module) -> list[tuple[int, int]]:
    """(d, k) = (out, in) of every Linear of ``model`` whose last name is a default target."""
    return [(int(m.out_features), int(m.in_features)) for name, m in model.named_modules()
            if isinstance(m, nn.Linear) and name.rsplit(".", 1)[-1] in DEFAULT_TARGETS]


def _closest(count_of_one: int, count_of_two: int, budget: int) -> int:
    """The size s ≥ 1 of an affine count a·s + b closest to ``budget`` (the checks' budgets have no ties)."""
    a, b = count_of_two - count_of_one, 2 * count_of_one - count_of_two
    return min((max(1, int(np.floor((budget - b) / a))), max(1, int(np.ceil((budget - b) / a)))),
               key=lambda s: abs(a * s + b - budget))


@exercise("09")
def equal_budget_sizes(answer: Any) -> str:
    """equal_budget_sizes(model, budget) = {"lora": r, "vera": r, "subspace": d}: the sizes whose trainable counts
    on ``model`` (LoRA and VeRA on the default targets) are closest to ``budget``."""
    small = GPT(GPTConfig(vocab_size=30, block_size=16, n_layer=3, n_head=2, n_embd=32), seed=0)
    for make, budget in ((lambda: ml.pretrained("names"), 7168), (lambda: ml.pretrained("skills"), 5000),
                         (lambda: ml.pretrained("skills"), 7175), (lambda: small, 2000), (lambda: small, 7168)):
        model = make()
        shapes = _shapes(model)
        lora_one = sum(d + k for d, k in shapes)                  # LoRA: r · Σ (d + k)
        vera_one, vera_two = len(shapes) + sum(d for d, _ in shapes), 2 * len(shapes) + sum(d for d, _ in shapes)
        want = {"lora": _closest(lora_one, 2 * lora_one, budget), "vera": _closest(vera_one, vera_two, budget),
                "subspace": budget}
        got = answer(model, budget)
        if not isinstance(got, dict) or set(got) != set(want):
            raise NotYet(f"equal_budget_sizes returned {got!r}; expected a dict with the keys 'lora', 'vera', "
                         "'subspace' (the LoRA rank, the VeRA rank, the subspace dimension d)")
        where = f"{model.config.n_layer} layers of width {model.config.n_embd}, budget {budget:,}"
        expect_equal(f"the LoRA rank ({where})", got["lora"], want["lora"],
                     "LoRA trains r(d + k) numbers per adapted matrix, and fc_in, fc_out are not square; take the "
                     "rank whose count is closest to the budget, which is not always the one below it")
        expect_equal(f"the VeRA rank ({where})", got["vera"], want["vera"],
                     "VeRA's shared A and B are frozen: count what each adapted matrix itself trains (section 4), "
                     "then take the rank whose count is closest to the budget")
        expect_equal(f"the subspace dimension ({where})", got["subspace"], want["subspace"],
                     "θ = θ0 + P z trains z alone")
    sizes = answer(ml.pretrained("names"), 7168)
    arms = (("lora", "r"), ("vera", "r"), ("subspace", "d"))
    measured = [get_method(method).prepare(ml.pretrained("names"), {key: sizes[method]}, seed=0)
                .num_parameters(trainable_only=True) for method, key in arms]
    return (f"on the names model at 7,168: LoRA r = {sizes['lora']}, VeRA r = {sizes['vera']}, subspace d = "
            f"{sizes['subspace']:,}, which train {', '.join(f'{n:,}' for n in measured)} numbers (counted on the "
            "prepared models)")
