"""Solutions to the exercises of 03_lora_math (try them yourself first)."""

# (d, k) of each Linear of a GPT block, as multiples of C = n_embd: d = out_features, k = in_features
_SHAPES = {"q_proj": (1, 1), "k_proj": (1, 1), "v_proj": (1, 1), "o_proj": (1, 1), "fc_in": (4, 1), "fc_out": (1, 4)}


def merged_rank(r1: int, r2: int, d: int, k: int) -> int:
    """The columns of B1 A1 + B2 A2 lie in the span of B1's and B2's r1 + r2 columns (generically independent), and
    no d×k matrix has rank above min(d, k)."""
    return min(r1 + r2, d, k)


update_size_exponents = (-0.5, 0.0)
"""BA = Σ_i b_i a_iᵀ: r terms of equal size (Adam moves B's entries by about lr; A's init ignores r) in unrelated
directions, so ‖BA‖_F ∝ √r. Times α/r: r^(−1/2). Times α/√r: r^0."""


def lora_backward(x, W0, A, B, alpha, r, g):
    """u = x Aᵀ (N, r), ∂L/∂u = s g B;  ∂L/∂x = g W0 + (∂L/∂u) A,  ∂L/∂A = (∂L/∂u)ᵀ x,  ∂L/∂B = s gᵀ u."""
    s = alpha / r
    u = x @ A.T                    # (N, r)
    grad_u = s * (g @ B)           # (N, r)
    return g @ W0 + grad_u @ A, grad_u.T @ x, s * g.T @ u


def trainable_lora_params(config, r: int, targets: tuple) -> int:
    """Σ over layers and targets of r(d + k)."""
    c = config.n_embd
    return config.n_layer * sum(r * (dm + km) * c for dm, km in (_SHAPES[t] for t in targets))


# Common mistakes: tests/test_tutorials.py checks that each one fails its check.
def _backward_integer_scaling(x, W0, A, B, alpha, r, g):
    s = alpha // r  # integer division: 8 // 3 = 2, 1 // 4 = 0
    grad_u = s * (g @ B)
    return g @ W0 + grad_u @ A, grad_u.T @ x, s * g.T @ (x @ A.T)


def _backward_without_base_path(x, W0, A, B, alpha, r, g):
    grad_x, grad_A, grad_B = lora_backward(x, W0, A, B, alpha, r, g)
    return grad_x - g @ W0, grad_A, grad_B  # x's path through W0 forgotten


def _backward_scaling_once(x, W0, A, B, alpha, r, g):
    grad_x, grad_A, grad_B = lora_backward(x, W0, A, B, alpha, r, g)
    return grad_x, grad_A / (alpha / r), grad_B  # s applied to B's gradient but not to A's


def _backward_lora_only(x, W0, A, B, alpha, r, g):
    grad_x, grad_A, grad_B = lora_backward(x, W0, A, B, alpha, r, g)
    return g @ W0, grad_A, grad_B  # x's path through A and B forgotten


MISTAKES = {
    "merged_rank": [
        lambda r1, r2, d, k: max(r1, r2),  # the larger rank wins
        lambda r1, r2, d, k: r1 + r2,  # ranks add without limit
        lambda r1, r2, d, k: min(r1, r2),  # the smaller rank
        lambda r1, r2, d, k: min(r1 * r2, d, k),  # ranks multiply
    ],
    "update_size_exponents": [
        (0.0, 0.5),  # "dividing by r keeps the size of the update the same"
        (-1.0, -0.5),  # ‖BA‖ taken not to grow with r
        (-0.5, -0.5),  # the two scalings not told apart
        (0.5, 1.0),  # ‖BA‖ taken to grow like r^1.5
    ],
    "lora_backward": [_backward_integer_scaling, _backward_without_base_path, _backward_scaling_once,
                      _backward_lora_only],
    "trainable_lora_params": [
        # all square: fc_in and fc_out counted as C×C
        lambda config, r, targets: config.n_layer * len(targets) * 2 * r * config.n_embd,
        # hard-coded to the skills model: 2 layers of width 64
        lambda config, r, targets: 2 * sum(r * (dm + km) * 64 for dm, km in (_SHAPES[t] for t in targets)),
        # one layer only
        lambda config, r, targets: sum(r * (dm + km) * config.n_embd for dm, km in (_SHAPES[t] for t in targets)),
        # B only (d·r), A forgotten
        lambda config, r, targets: config.n_layer * r * config.n_embd * sum(_SHAPES[t][0] for t in targets),
    ],
}
