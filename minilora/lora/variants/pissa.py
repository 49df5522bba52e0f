"""PiSSA and OLoRA: start LoRA from the principal part of W0 instead of from zero.

Plain LoRA starts at B = 0, so the first steps move along random directions A.  PiSSA (Meng et al. 2024,
arXiv 2404.02948) puts the r principal singular directions of W0 itself into the adapter and freezes
the rest; OLoRA (Büyükakyüz 2024, arXiv 2406.01775) does the same with an orthonormal QR basis:

    PiSSA   W0 = U S Vᵀ (SVD),  B = U_r sqrt(S_r / s),  A = sqrt(S_r / s) V_rᵀ   (so s·B A = U_r S_r V_rᵀ)
    OLoRA   W0 = Q R (QR),      B = Q[:, :r],          A = R[:r]
    both    W_res = W0 − s·B A  replaces the base weight, so at step 0  W_res + s·B A = W0:
            the adapted model computes what the base model computes.

(s = lora_alpha / r is divided out of PiSSA's singular values, as PEFT does, so that s·B A is exactly the
top-r part of W0 whatever α is; OLoRA does not, as PEFT's ``olora_init``.)

Because the base weight changed, the trained (A, B) only make sense on W_res.  For a file that works on the
*original* W0, the update is rewritten as a plain LoRA of rank 2r (PEFT's ``subtract_mutated_init``):

    W_res + s·B A = W0 + s·(B A − B0 A0) = W0 + s·[B, −B0] [A; A0]

with (A0, B0) the adapter at initialisation.  The scale s is kept by doubling lora_alpha with r
(2α / 2r = α / r; α·√2 / √(2r) = α / √r with rsLoRA).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["BASE_CHANGING_INITS", "pissa_init", "olora_init", "mutated_init", "lora_from_mutated_init",
           "converted_alpha"]

BASE_CHANGING_INITS = ("pissa", "olora")
"""The ``init_lora_weights`` values minilora implements that replace the base weight by a residual."""


def pissa_init(w0: np.ndarray, r: int, scaling: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(A (r, k), B (d, r), W_res (d, k)) for W0 (d, k), in float64:  W0 = U S Vᵀ,  S_r ← S_r / s,
    A = sqrt(S_r) V_rᵀ,  B = U_r sqrt(S_r),  W_res = W0 − s·B A (the part of W0 below its top r directions)."""
    w0 = np.asarray(w0, dtype=np.float64)
    u, sigma, vt = np.linalg.svd(w0, full_matrices=False)  # (d, m), (m,), (m, k) with m = min(d, k)
    root = np.sqrt(sigma[:r] / scaling)                     # (r,)
    a = root[:, None] * vt[:r]                               # (r, k)
    b = u[:, :r] * root                                      # (d, r)
    return a, b, w0 - scaling * (b @ a)


def olora_init(w0: np.ndarray, r: int, scaling: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(A (r, k), B (d, r), W_res (d, k)) for W0 (d, k), in float64:  W0 = Q R (reduced QR),
    B = Q[:, :r] (orthonormal columns),  A = R[:r],  W_res = W0 − s·B A."""
    w0 = np.asarray(w0, dtype=np.float64)
    q, rr = np.linalg.qr(w0)                                 # (d, m), (m, k)
    b, a = q[:, :r], rr[:r]
    return a, b, w0 - scaling * (b @ a)


def mutated_init(init_lora_weights: str, w0: np.ndarray, r: int,
                 scaling: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``pissa_init`` or ``olora_init`` by PEFT's name of the init."""
    return (pissa_init if init_lora_weights == "pissa" else olora_init)(w0, r, scaling)


def lora_from_mutated_init(a: np.ndarray, b: np.ndarray, a0: np.ndarray,
                           b0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rank-2r plain LoRA (A', B') with B' A' = B A − B0 A0:  A' = [A; A0] (2r, k),  B' = [B, −B0] (d, 2r)."""
    return np.concatenate([a, a0], axis=0), np.concatenate([b, -b0], axis=1)


def converted_alpha(lora_alpha: float, use_rslora: bool) -> float:
    """lora_alpha of the rank-2r converted adapter, keeping s:  2α  (α·√2 with rsLoRA, since s = α/√r)."""
    return lora_alpha * (math.sqrt(2) if use_rslora else 2)
