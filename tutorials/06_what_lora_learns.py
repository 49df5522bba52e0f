# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 · What LoRA learns
#
# A rank-r adapter learns ΔW = s · B A (B: d × r, A: r × k). Section 7 of the LoRA paper (Hu et al. 2021) asks
# what those r directions are:
#
# - **Do two adapters learn the same directions?** Trained at a small and a large rank, or from two seeds, do their
#   top directions overlap more than two random subspaces would?
# - **How does ΔW relate to W?** Does it amplify directions W already has, or ones W barely uses?
#
# **What you will learn**
# - the subspace similarity φ(A₁, A₂, i, j) = ‖U₁[:, :i]ᵀ U₂[:, :j]‖²_F / min(i, j), on matrices built so that
#   you know the answer (nested, orthogonal, partly shared, random);
# - its chance level: two random subspaces of R^k overlap by max(i, j)/k on average — the floor to compare with;
# - the amplification factor ‖ΔW‖_F / ‖Uᵀ W V‖_F, again on constructed matrices first;
# - both on real adapters trained here (a few short runs) and, when present, on the shipped full results.
#
# **Read first:** `03_lora_math` (B A, its rank), `05_rank_and_which_weights` (sweeps with seeds).
# Next: `07_intrinsic_dimension`. Runs in about a minute (seconds with `MINILORA_FAST=1`).

# %%
import json
import tempfile
from pathlib import Path

import course
import numpy as np
from checks import check
from IPython.display import Image, display
from matplotlib.figure import Figure

from minilora.experiments.adaptation import run_adaptation
from minilora.experiments.lora_paper import format_summary, lora_paper
from minilora.experiments.similarity import Similarity
from minilora.experiments.sweep import run_sweep
from minilora.lora import (
    amplification_factor,
    chance_similarity,
    projection_norm,
    singular_directions,
    subspace_similarity,
    subspace_similarity_grid,
)
from minilora.models.zoo import pretrained
from minilora.plots import plot_amplification, plot_similarity

work = Path(tempfile.mkdtemp())  # this notebook's runs and figures (a temporary folder)
FIGURES = Path("..") / "figures"  # the shipped full results, when present


def show_png(path):
    """Display a PNG that minilora.plots wrote."""
    display(Image(filename=str(path)))


# %% [markdown]
# ## 1. The directions an A reads
# A (r × k) multiplies the input first: x ↦ A x keeps only x's components along A's rows. Its right-singular
# vectors (A = U_A Σ Vᵀ, the rows of Vᵀ) are those directions, ordered by how strongly A reads them. We build A's
# in R^64 from one orthonormal basis, so we know exactly which directions each reads:

# %%
k = 64
rng = np.random.default_rng(0)
basis, _ = np.linalg.qr(rng.normal(size=(k, k)))  # (64, 64), orthonormal columns e_1 .. e_64
A_small = (basis[:, :4] * [4.0, 3.0, 2.0, 1.0]).T  # (4, 64): reads e_1..e_4, e_1 most strongly
A_big = (basis[:, :16] * np.linspace(16, 1, 16)).T  # (16, 64): reads e_1..e_16, in that order
A_orth = basis[:, 40:48].T  # (8, 64): e_41..e_48, orthogonal to both
A_partly = np.vstack([20 * basis[:, :2].T, rng.normal(size=(6, k))])  # (8, 64): e_1, e_2 strongly, then noise
A_random = rng.normal(size=(8, k))  # (8, 64)
for name, a in (("A_small", A_small), ("A_big", A_big), ("A_orth", A_orth), ("A_partly", A_partly),
                ("A_random", A_random)):
    print(f"{name:8s} {a.shape}   singular values {np.round(np.linalg.svd(a, compute_uv=False)[:4], 2)} ...")

# %% [markdown]
# ## 2. Subspace similarity φ
# Take the top i directions of one A and the top j of the other, as orthonormal columns U₁[:, :i] and U₂[:, :j].
# The i × j matrix U₁ᵀU₂ holds the cosines between them; the sum of its squares is at most min(i, j), so
#
#     φ(A₁, A₂, i, j) = ‖U₁[:, :i]ᵀ U₂[:, :j]‖²_F / min(i, j)  ∈ [0, 1]
#
# is 1 when one subspace contains the other and 0 when they are orthogonal.

# %%
print("nested   φ(A_small, A_big, 4, 16) =", round(subspace_similarity(A_small, A_big, 4, 16), 6))
print("orthog.  φ(A_small, A_orth, 4, 8) =", round(subspace_similarity(A_small, A_orth, 4, 8), 6))
print("partly   φ(A_small, A_partly, 2, 2) =", round(subspace_similarity(A_small, A_partly, 2, 2), 6),
      "  φ(.., 4, 8) =", round(subspace_similarity(A_small, A_partly, 4, 8), 3))
print("random   φ(A_small, A_random, 4, 8) =", round(subspace_similarity(A_small, A_random, 4, 8), 3))

# %% [markdown]
# `subspace_similarity_grid` computes φ for every i and j at once, an (r₁, r₂) array. As heatmaps:

# %%
pairs = {"A_small vs A_big (nested)": (A_small, A_big), "A_small vs A_orth (orthogonal)": (A_small, A_orth),
         "A_big vs A_partly (top 2 shared)": (A_big, A_partly), "A_big vs A_random": (A_big, A_random)}
fig = Figure(figsize=(14, 3.2))
for ax, (title, (a1, a2)) in zip(fig.subplots(1, 4), pairs.items()):
    grid = subspace_similarity_grid(a1, a2)  # (r1, r2)
    image = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto",
                      extent=(0.5, grid.shape[1] + 0.5, grid.shape[0] + 0.5, 0.5))
    ax.set_title(f"{title}\ngrid {grid.shape}", fontsize=9)
    ax.set_xlabel("j")
    ax.set_ylabel("i")
fig.colorbar(image, ax=fig.axes, fraction=0.02)
course.show(fig)

# %% [markdown]
# ## 3. The chance level
# How much do two *unrelated* subspaces overlap? For a uniformly random j-dimensional subspace, the projection onto
# it is (j/k)·I on average, so E‖U₁ᵀU₂‖²_F = i·j/k and
#
#     E[φ] = i·j / (k · min(i, j)) = max(i, j) / k.
#
# Not zero: in R^64, two random 8-dimensional subspaces have φ ≈ 8/64 = 0.125. Checked by drawing many:

# %%
draws = np.stack([subspace_similarity_grid(rng.normal(size=(8, k)), rng.normal(size=(8, k))) for _ in range(300)])
chance = np.array([[chance_similarity(i, j, k) for j in range(1, 9)] for i in range(1, 9)])
print("draws", draws.shape, "  mean φ over 300 random pairs, first row:", np.round(draws.mean(axis=0)[0], 3))
print("chance max(i, j)/k, first row:                         ", np.round(chance[0], 3))
print("largest |mean − chance| over the grid:", round(float(np.abs(draws.mean(axis=0) - chance).max()), 4))

# %% [markdown]
# So a measured φ means something only above max(i, j)/k: the A_big vs A_random heatmap above is at chance level,
# not "a little similar".
#
# ## 4. Amplification: ΔW against W
# With U (d × r) and Vᵀ (r × k) the top-r singular directions of ΔW, ‖Uᵀ W V‖_F is how much of W lies in ΔW's
# directions. The paper's amplification factor is
#
#     ‖ΔW‖_F / ‖Uᵀ W V‖_F.
#
# Build W with known singular values and three updates of the same size (‖ΔW‖_F = 1), rank 2 each:

# %%
d = 64
U_w, _ = np.linalg.qr(rng.normal(size=(d, d)))
V_w, _ = np.linalg.qr(rng.normal(size=(k, k)))
sigma = 10 * 0.9 ** np.arange(k)  # W's singular values, 10 down to 0.01
W = (U_w * sigma) @ V_w.T  # (64, 64)


def rank2(u, v):
    """A rank-2 update u vᵀ (u: d × 2, v: k × 2) scaled to Frobenius norm 1."""
    m = u @ v.T
    return m / np.linalg.norm(m)


updates = {"W's top 2 directions": rank2(U_w[:, :2] * sigma[:2], V_w[:, :2]),
           "W's weakest 2 directions": rank2(U_w[:, -2:], V_w[:, -2:]),
           "random rank 2": rank2(rng.normal(size=(d, 2)), rng.normal(size=(k, 2)))}
for name, dW in updates.items():
    u, vt = singular_directions(dW, 2)  # U (64, 2), Vᵀ (2, 64)
    print(f"{name:26s} ‖ΔW‖ = {np.linalg.norm(dW):.2f}   ‖UᵀWV‖ = {projection_norm(W, u, vt):7.4f}   "
          f"factor = {amplification_factor(dW, W, r=2):8.2f}")

# %% [markdown]
# An update along W's strongest directions has a small factor (W is already large there); one along directions W
# barely uses has a large factor. The paper finds ≈ 21.5 for r = 4 on GPT-3's W_q: ΔW amplifies directions that
# were important for the new task but not emphasised by the pretrained W.
#
# ## 5. Real adapters
# Now train LoRA adapters on reverse-shift (notebook 04's skill), at a small and a large rank, with two or three
# seeds, keeping A and B of W_q and W_v in the last block. `Similarity` lists the runs and `run_sweep` runs them;
# then `lora_paper` (the same sweep, loaded, then `Similarity.summarize`) computes the grids above, with their
# chance levels, across ranks and across seeds.

# %%
if course.FAST:
    settings = Similarity(small_rank=4, large_rank=16, amplification_ranks=(4,), seeds=(0, 1), steps=30,
                          skill_task_kwargs=(("n_eval", 20),))
else:  # as the shipped figure: ranks 4 and 16 (and 8), three seeds (200 steps here, 400 there)
    settings = Similarity(small_rank=4, large_rank=16, amplification_ranks=(4, 8), seeds=(0, 1, 2), steps=200,
                          skill_task_kwargs=(("n_eval", 100),))
specs = settings.specs()
outcomes = run_sweep(specs, run_adaptation, runs=work / "runs", jobs=1, desc="similarity")
print(f"{len(specs)} runs: ranks {settings.ranks()} × seeds {list(settings.seeds)}, {settings.steps} steps each")

# %% [markdown]
# Each run kept its matrices. For the small rank, seed 0, W_q of block 1:

# %%
first = next(o["result"] for o in outcomes
             if o["spec"]["run"]["settings"]["r"] == settings.small_rank and o["spec"]["run"]["train"]["seed"] == 0)
kept = first["kept"]["blocks.1.attn.q_proj"]
A, B = np.array(kept["A"]), np.array(kept["B"])
delta = first["scaling"] * B @ A
print("A", A.shape, " B", B.shape, " ΔW = s·B A", delta.shape, " rank", np.linalg.matrix_rank(delta),
      f" accuracy {first['value']:.3f}")
W_q = pretrained("skills").blocks[1].attn.q_proj.weight.numpy()
print(f"‖W_q‖ = {np.linalg.norm(W_q):.3f}   ‖ΔW‖ = {np.linalg.norm(delta):.4f}   "
      f"amplification factor = {amplification_factor(delta, W_q, r=settings.small_rank):.2f}")

# %% [markdown]
# The summary over all runs: φ across ranks (small vs large, same seed) and across seeds (two seeds, small rank),
# for A (the paper's choice) and for ΔW's own right-singular directions; and the amplification table.

# %%
results = lora_paper(out=work, runs=work / "runs", only=["similarity"], settings={"similarity": settings}, jobs=1)
print(format_summary(results))  # the same runs, loaded from the sweep's folder, not trained again
summary = results["similarity"]
print("grid across ranks, A of q_proj:", np.array(summary["modules"]["q_proj"]["A"]["across_ranks"]["mean"]).shape)
show_png(plot_similarity(summary, work / "lora-similarity.png"))
show_png(plot_amplification(summary, work / "lora-amplification.png"))

# %% [markdown]
# The colours are the similarity *above chance*, (φ − c)/(1 − c) with c = max(i, j)/k: 0 where two random subspaces
# would land, 1 for the same subspace (white dots: φ not above chance). In the paper, the top direction of r = 8 and
# r = 64 overlap far above chance (φ > 0.5) while the rest drops towards chance: the update needs few directions.
# With the fast settings, the runs are too short for a finding; the full ones follow.
#
# Why r = 16 and not the paper's 64? There k = 12,288 and r = 64 is 0.5% of it; here k = 64. **Predict** φ(i, 64)
# between any 4 directions and any 64 directions of R^64, then check:

# %%
any_4, any_64 = rng.normal(size=(4, k)), rng.normal(size=(64, k))  # nothing learned, nothing shared
print("φ(i, 64) for i = 1..4:", [round(subspace_similarity(any_4, any_64, i, 64), 6) for i in range(1, 5)])
print("chance max(i, 64)/64:", [chance_similarity(i, 64, k) for i in range(1, 5)])

# %% [markdown]
# 64 directions span all of R^64, so they contain every subspace: φ(i, k) = 1 for any matrices, and its chance level
# is 1 too. A heatmap of r = 8 against r = 64 on these 64-wide matrices is bright on its right side whatever was
# learned. So the large rank here stays at k/4 = 16, where chance is at most 1/4 and φ has room to show learning.
#
# ## 6. The full results
# `minilora lora-paper --out figures` trains ranks 4 and 16 (and 8) with three seeds for 400 steps. When its JSON is
# in `figures/`:

# %%
path = FIGURES / "lora-similarity.json"
if path.is_file():
    shipped = json.loads(path.read_text())
    print(f"{path}: the full run")
    show_png(plot_similarity(shipped, work / "shipped-similarity.png"))
    show_png(plot_amplification(shipped, work / "shipped-amplification.png"))
else:
    print(f"{path} is not there yet: `minilora lora-paper --only similarity --out figures` computes it")

# %% [markdown]
# ## Exercises
# Each exercise cell raises `NotImplementedError` until you fill it in; the cell after it checks your answer.
# Solutions: `tutorials/solutions/06_what_lora_learns.py` (try first!).
#
# **Exercise 1 — φ by hand.** Write `phi(a1, a2, i, j)` with `np.linalg.svd` (no `minilora.lora` helpers).

# %%
def phi(a1, a2, i, j):
    raise NotImplementedError  # your code


# %%
check("phi", phi)

# %% [markdown]
# **Exercise 2 — the chance level.** Return the expected φ of a random i-dimensional and a random j-dimensional
# subspace of R^k.

# %%
def chance_phi(i, j, k):
    raise NotImplementedError  # your code


# %%
check("chance_phi", chance_phi)

# %% [markdown]
# **Exercise 3 — the amplification factor.** Write `amplification(delta_w, w, r)` with `np.linalg.svd`.

# %%
def amplification(delta_w, w, r):
    raise NotImplementedError  # your code


# %%
check("amplification", amplification)
