"""Solutions to the exercises of 09_lora_family (try them yourself first)."""

import numpy as np

from minilora import nn

TARGETS = ("q_proj", "v_proj", "fc_in", "fc_out")


def pissa_residual_fraction(W0, r):
    """‖W_res‖_F / ‖W0‖_F = sqrt(Σ_{i>r} σ_i² / Σ_i σ_i²): PiSSA leaves the base everything but the top r
    singular values (s·B A = U_r S_r V_rᵀ, whatever the scaling)."""
    sigma = np.linalg.svd(np.asarray(W0, dtype=np.float64), compute_uv=False)
    return float(np.sqrt((sigma[r:] ** 2).sum() / (sigma ** 2).sum()))


def svd_merge_error(deltas, weights, k):
    """The best rank-k approximation keeps the k largest singular values of ΔW = Σ w_i ΔW_i (Eckart–Young), so
    ‖ΔW − ΔW_k‖_F / ‖ΔW‖_F = sqrt(Σ_{j≥k} σ_j² / Σ_j σ_j²)."""
    target = sum(w * np.asarray(d, dtype=np.float64) for w, d in zip(weights, deltas))
    sigma = np.linalg.svd(target, compute_uv=False)
    return float(np.sqrt((sigma[k:] ** 2).sum() / (sigma ** 2).sum()))


def _target_shapes(model):
    return [(m.out_features, m.in_features) for name, m in model.named_modules()
            if isinstance(m, nn.Linear) and name.rsplit(".", 1)[-1] in TARGETS]


def _nearest(per_unit, fixed, budget):
    """The size s ≥ 1 with per_unit·s + fixed closest to the budget."""
    low = max(1, int((budget - fixed) // per_unit))
    return min((low, low + 1), key=lambda s: abs(per_unit * s + fixed - budget))


def equal_budget_sizes(model, budget):
    """LoRA: r·Σ(d + k); VeRA: Σ(r + d) = n·r + Σd (λ_d has r numbers, λ_b has d, per adapted matrix); subspace: d."""
    shapes = _target_shapes(model)
    return {"lora": _nearest(sum(d + k for d, k in shapes), 0, budget),
            "vera": _nearest(len(shapes), sum(d for d, _ in shapes), budget),
            "subspace": int(budget)}


def _no_tail_square(W0, r):
    """Singular values summed without squaring."""
    sigma = np.linalg.svd(np.asarray(W0, dtype=np.float64), compute_uv=False)
    return float(sigma[r:].sum() / sigma.sum())


def _off_by_one(W0, r):
    """The r-th singular value left in the residual (σ[r-1:] instead of σ[r:])."""
    sigma = np.linalg.svd(np.asarray(W0, dtype=np.float64), compute_uv=False)
    return float(np.sqrt((sigma[r - 1:] ** 2).sum() / (sigma ** 2).sum()))


def _energy_not_norm(W0, r):
    """The fraction of Σσ² (no square root): the squared answer."""
    sigma = np.linalg.svd(np.asarray(W0, dtype=np.float64), compute_uv=False)
    return float((sigma[r:] ** 2).sum() / (sigma ** 2).sum())


def _largest_left(W0, r):
    """σ_{r+1} / σ_1: the residual's largest singular value, relative to W0's (a spectral, not Frobenius, ratio)."""
    sigma = np.linalg.svd(np.asarray(W0, dtype=np.float64), compute_uv=False)
    return float(sigma[r] / sigma[0])


def _unweighted(deltas, weights, k):
    """The weights forgotten: the SVD of the plain sum."""
    return svd_merge_error(deltas, [1.0] * len(deltas), k)


def _each_truncated(deltas, weights, k):
    """Each update truncated to rank k on its own, then summed: not the best rank-k approximation of the sum."""
    target = sum(w * np.asarray(d, dtype=np.float64) for w, d in zip(weights, deltas))
    approx = 0.0
    for w, d in zip(weights, deltas):
        u, s, vt = np.linalg.svd(w * np.asarray(d, dtype=np.float64), full_matrices=False)
        approx = approx + (u[:, :k] * s[:k]) @ vt[:k]
    return float(np.linalg.norm(target - approx) / np.linalg.norm(target))


def _relative_to_top(deltas, weights, k):
    """σ_{k+1} / σ_1: the first dropped singular value instead of the norm of all of them."""
    target = sum(w * np.asarray(d, dtype=np.float64) for w, d in zip(weights, deltas))
    sigma = np.linalg.svd(target, compute_uv=False)
    return float(sigma[k] / sigma[0])


def _square_lora(model, budget):
    """Every target taken as C × C: r = budget / (n · 2C), and VeRA's λ_b forgotten."""
    shapes = _target_shapes(model)
    c = model.config.n_embd
    return {"lora": max(1, round(budget / (len(shapes) * 2 * c))), "vera": max(1, round(budget / len(shapes))),
            "subspace": int(budget)}


def _rounded_down(model, budget):
    """The largest size that fits under the budget, not the closest."""
    shapes = _target_shapes(model)
    return {"lora": max(1, budget // sum(d + k for d, k in shapes)),
            "vera": max(1, (budget - sum(d for d, _ in shapes)) // len(shapes)), "subspace": int(budget)}


def _no_lambda_b(model, budget):
    """VeRA counted as r numbers per matrix (λ_d only)."""
    return {**equal_budget_sizes(model, budget), "vera": max(1, round(budget / len(_target_shapes(model))))}


# Common mistakes: tests/test_tutorials.py checks that each one fails its check.
MISTAKES = {
    "pissa_residual_fraction": [_no_tail_square, _off_by_one, _energy_not_norm, _largest_left],
    "svd_merge_error": [_unweighted, _each_truncated, _relative_to_top,
                        lambda deltas, weights, k: svd_merge_error(deltas, weights, k + 1)],  # one value too many kept
    "equal_budget_sizes": [lambda model, budget: {"lora": 4, "vera": 784, "subspace": 7168},  # hard-coded to one model
                           _square_lora, _rounded_down, _no_lambda_b],
}
