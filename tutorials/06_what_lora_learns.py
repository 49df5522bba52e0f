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
# A rank-r adapter learns $\Delta W = s \, B A$ ($B$: $d \times r$, $A$: $r \times k$). Section 7 of the LoRA paper
# (Hu et al. 2021, [arXiv 2106.09685](https://arxiv.org/abs/2106.09685)) asks what those r directions are:
#
# - **Do two adapters learn the same directions?** Trained at a small and a large rank, or from two seeds, do their
#   top directions overlap more than two random subspaces would?
# - **How does ΔW relate to W?** Does it amplify directions W already has, or ones W barely uses?
#
# **What you will learn**
# - the subspace similarity $\phi(A_1, A_2, i, j)$, on matrices built so that you know the answer (nested,
#   orthogonal, partly shared, random), and written by hand;
# - its chance level: two random subspaces of $\mathbb{R}^k$ overlap by $\max(i, j)/k$ on average — the floor to
#   compare with — and why a rank as large as k shows nothing;
# - the amplification factor $\lVert \Delta W \rVert_F / \lVert U^\top W V \rVert_F$, again on constructed matrices
#   first;
# - both on real adapters trained here (a few short runs) and on the shipped full results.
#
# **Read first:** [03 LoRA's mathematics](03_lora_math.ipynb) ($BA$, its rank),
# [05 which rank, which weights](05_rank_and_which_weights.ipynb) (sweeps with seeds). Next:
# [07 intrinsic dimension](07_intrinsic_dimension.ipynb).
#
# **Run time:** about a minute on one core with `OMP_NUM_THREADS=1` (how `tutorials/render.py` runs it); about
# 10 seconds with `MINILORA_FAST=1 OMP_NUM_THREADS=1` (four runs of 30 steps: the pipeline, not a finding; the shipped
# results in section 6 are the real ones).

# %%
import json
import tempfile
from pathlib import Path

import course
import numpy as np
from checks import check
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

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

work = Path(tempfile.mkdtemp())  # this notebook's runs (a temporary folder)
FIGURES = Path("..") / "figures"  # the shipped full results, when present


def integer_ticks(ax, n_i, n_j):
    """Whole-number ticks from 1 to n_j across and 1 to n_i down (i and j count directions)."""
    for axis, n in ((ax.xaxis, n_j), (ax.yaxis, n_i)):
        axis.set_ticks([t for t in MaxNLocator(integer=True, nbins=8).tick_values(1, n) if 1 <= t <= n])


# %% [markdown]
# ## 1. The directions an A reads
# $A$ ($r \times k$) multiplies the input first: $x \mapsto A x$ keeps only x's components along A's rows. Write its
# singular value decomposition $A = U \Sigma V^\top$: $U$ ($r \times r$) mixes the r outputs, $\Sigma$ holds the
# singular values, and the rows of $V^\top$ — the columns of $V$, the **right-singular vectors** — are the directions
# of $\mathbb{R}^k$ that A reads, ordered by how strongly it reads them. (The paper calls this matrix $U_A$; here it
# is $V$, as in $A = U \Sigma V^\top$. NumPy: `U, S, Vt = np.linalg.svd(A, full_matrices=False)`.)
#
# We build A's in $\mathbb{R}^{64}$ from one orthonormal basis $e_1, \dots, e_{64}$, so we know exactly which
# directions each reads:

# %%
k = 64
rng = np.random.default_rng(0)
basis, _ = np.linalg.qr(rng.normal(size=(k, k)))  # (64, 64), orthonormal columns e_1 .. e_64
A_small = (basis[:, :4] * [4.0, 3.0, 2.0, 1.0]).T  # (4, 64): reads e_1..e_4, e_1 most strongly
A_big = (basis[:, :16] * np.linspace(16, 1, 16)).T  # (16, 64): reads e_1..e_16, in that order
A_orth = basis[:, 40:48].T  # (8, 64): e_41..e_48, orthogonal to both
A_partly = np.vstack([20 * basis[:, 0], 14 * basis[:, 1], rng.normal(size=(6, k))])  # (8, 64): e_1, e_2, then noise
A_random = rng.normal(size=(8, k))  # (8, 64)
course.table([{"A": name, "shape": f"{a.shape[0]} × {a.shape[1]}", "reads": reads,
               "top singular values": ", ".join(f"{v:.1f}" for v in np.linalg.svd(a, compute_uv=False)[:4])}
              for name, a, reads in (("A_small", A_small, "e_1..e_4"), ("A_big", A_big, "e_1..e_16"),
                                     ("A_orth", A_orth, "e_41..e_48"),
                                     ("A_partly", A_partly, "e_1, e_2 strongly, 6 random directions"),
                                     ("A_random", A_random, "8 random directions"))])

# %% [markdown]
# **What these numbers say:** each A's singular values are the strengths it was built with (4, 3, 2, 1 for A_small;
# 16 down to 1 for A_big; 1 for the orthonormal A_orth), and A_partly's top two, about 20 and 14, are its two shared
# directions, above the random rows' singular values: the SVD recovers which directions each A reads, strongest first.
#
# ## 2. Subspace similarity φ
# Take the top i directions of one A and the top j of the other, as orthonormal columns $V_1[:, :i]$ and
# $V_2[:, :j]$. The $i \times j$ matrix $V_1[:, :i]^\top V_2[:, :j]$ holds the cosines between them; the sum of
# its squares is at most $\min(i, j)$, so
#
# $$\phi(A_1, A_2, i, j) = \frac{\lVert V_1[:, :i]^\top V_2[:, :j] \rVert_F^2}{\min(i, j)} \in [0, 1]$$
#
# is 1 when one subspace contains the other and 0 when they are orthogonal.
#
# **Exercise 1 — φ by hand.** Write `phi(a1, a2, i, j)` with `np.linalg.svd` (no `minilora.lora` helpers). Check it;
# the cell after the check compares it with the library on the matrices above.

# %%
def phi(a1, a2, i, j):
    raise NotImplementedError  # your code


# %%
check("phi", phi)

# %%
cases = [("A_small vs A_big (nested)", A_small, A_big, 4, 16),
         ("A_small vs A_orth (orthogonal)", A_small, A_orth, 4, 8),
         ("A_small vs A_partly (2 shared)", A_small, A_partly, 2, 2),
         ("A_small vs A_partly (2 shared)", A_small, A_partly, 4, 8),
         ("A_small vs A_random", A_small, A_random, 4, 8)]
rows = []
for name, a1, a2, i, j in cases:
    try:
        yours = f"{phi(a1, a2, i, j):.3f}"
    except NotImplementedError:
        yours = "(write phi)"
    rows.append({"pair": name, "i": i, "j": j, "φ": subspace_similarity(a1, a2, i, j), "your phi": yours,
                 "chance max(i, j)/k": chance_similarity(i, j, k)})
course.table(rows)

# %% [markdown]
# **What these numbers say:** nested gives 1 and orthogonal 0, as built; the two shared directions give about 1 at
# i = j = 2 and less at (4, 8), where unshared directions join. The random pair is not 0: it sits near its chance
# level, the subject of section 3.
#
# `subspace_similarity_grid` computes φ for every i and j at once, an $(r_1, r_2)$ array. As a heatmap, A_big
# (16 directions) against A_partly (2 shared, then 6 random):

# %%
grid = subspace_similarity_grid(A_big, A_partly)  # (16, 8)
fig = Figure(figsize=(6, 3.6), layout="constrained")
ax = fig.add_subplot()
image = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto",
                  extent=(0.5, grid.shape[1] + 0.5, grid.shape[0] + 0.5, 0.5))
fig.colorbar(image, ax=ax, label="φ(i, j)")
ax.set_xlabel("j: top directions of A_partly")
ax.set_ylabel("i: top directions of A_big")
ax.set_title("A_big vs A_partly: the top 2 are shared")
integer_ticks(ax, *grid.shape)
course.show(fig)

# %% [markdown]
# **What this figure says:**

# %%
print(f"φ(i, j) for i, j ≤ 2 (the shared directions e_1, e_2): {grid[:2, :2].min():.3f} to {grid[:2, :2].max():.3f}. "
      f"At (i, j) = (16, 8) it is {grid[-1, -1]:.3f}: the 6 random directions of A_partly mostly lie outside "
      f"A_big's 16, and dilute φ as j grows.")

# %% [markdown]
# ## 3. The chance level
# How much do two *unrelated* subspaces overlap? For a uniformly random j-dimensional subspace, the projection onto
# it is $(j/k) I$ on average, so $\mathbb{E} \lVert V_1^\top V_2 \rVert_F^2 = ij/k$ and
#
# $$\mathbb{E}[\phi] = \frac{ij}{k \min(i, j)} = \frac{\max(i, j)}{k}.$$
#
# Not zero: in $\mathbb{R}^{64}$, two random 8-dimensional subspaces have $\phi \approx 8/64 = 0.125$. Checked by
# drawing many pairs of random 8 × 64 matrices:

# %%
draws = np.stack([subspace_similarity_grid(rng.normal(size=(8, k)), rng.normal(size=(8, k))) for _ in range(300)])
chance = np.array([[chance_similarity(i, j, k) for j in range(1, 9)] for i in range(1, 9)])
fig = Figure(figsize=(6, 3.4), layout="constrained")
ax = fig.add_subplot()
n = np.arange(1, 9)
ax.plot(n, np.diag(chance), "k--", label="chance max(i, j)/k")
ax.plot(n, np.diag(draws.mean(axis=0)), "o", color="C0", label="mean of 300 random pairs")
ax.plot(n, np.diag(draws[0]), ".", color="C1", label="one random pair")
ax.set_xlabel("i = j: top directions compared")
ax.set_ylabel("φ(i, i)")
ax.set_ylim(0, None)
ax.set_title("Random subspaces of R^64 overlap by max(i, j)/k")
ax.set_xticks(n)
ax.legend(loc="upper left")
course.show(fig)

# %% [markdown]
# **What this figure says:**

# %%
print(f"Over the whole 8 × 8 grid, the mean of 300 random pairs is within "
      f"{float(np.abs(draws.mean(axis=0) - chance).max()):.4f} of max(i, j)/k; a single pair scatters around it "
      f"(here by up to {float(np.abs(draws[0] - chance).max()):.3f}).")

# %% [markdown]
# So a measured φ means something only above $\max(i, j)/k$: A_small against A_random in section 2 is at its chance
# level, not "a little similar". The heatmaps of real adapters below show the similarity *above* chance,
# $(\phi - c)/(1 - c)$ with $c = \max(i, j)/k$: 0 where random subspaces land, 1 for the same subspace.
#
# ## 4. Amplification: ΔW against W
# With $U$ ($d \times r$) and $V^\top$ ($r \times k$) the top-r singular directions of $\Delta W$ (r its rank),
# $\lVert U^\top W V \rVert_F$ is how much of W lies in ΔW's directions. The paper's amplification factor is
#
# $$\frac{\lVert \Delta W \rVert_F}{\lVert U^\top W V \rVert_F}.$$
#
# **Exercise 2 — the amplification factor.** Write `amplification(delta_w, w)` with `np.linalg.svd`. Nobody tells
# you r: find it from ΔW itself (a LoRA update of rank 4 is a 64 × 64 matrix with 64 rows). Check it, then run the
# cell after the check, which builds W with known singular values and three updates of the same size
# ($\lVert \Delta W \rVert_F = 1$, rank 2 each) and compares yours with the library.

# %%
def amplification(delta_w, w):
    raise NotImplementedError  # your code


# %%
check("amplification", amplification)

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


updates = {"along W's top 2 directions": rank2(U_w[:, :2] * sigma[:2], V_w[:, :2]),
           "along W's weakest 2 directions": rank2(U_w[:, -2:], V_w[:, -2:]),
           "random rank 2": rank2(rng.normal(size=(d, 2)), rng.normal(size=(k, 2)))}
rows = []
for name, dW in updates.items():
    u, vt = singular_directions(dW, 2)  # U (64, 2), Vᵀ (2, 64)
    try:
        yours = f"{amplification(dW, W):.2f}"
    except NotImplementedError:
        yours = "(write amplification)"
    rows.append({"ΔW": name, "‖ΔW‖_F": float(np.linalg.norm(dW)), "‖UᵀWV‖_F": projection_norm(W, u, vt),
                 "factor": amplification_factor(dW, W), "yours": yours})
course.table(rows, digits=3)

# %% [markdown]
# **What these numbers say:**

# %%
factors = {r["ΔW"]: r["factor"] for r in rows}
print(" < ".join(f"{name} ({f:.2f})" for name, f in sorted(factors.items(), key=lambda x: x[1]))
      + ": an update along W's strongest directions has a small factor (W is already large there); one along "
      "directions W barely uses has a large factor.")

# %% [markdown]
# The paper finds a factor of about 21.5 for r = 4 on GPT-3's $W_q$: $\Delta W$ amplifies directions that were
# important for the new task but not emphasised by the pretrained W.
#
# ## 5. Real adapters
# Now train LoRA adapters on reverse-shift (notebook 04's skill), at a small rank (4) and a large one (16), with two
# or three seeds, keeping A and B of $W_q$ and $W_v$ in the last block. `Similarity` lists the runs and `run_sweep`
# runs them; then `lora_paper` (the same sweep, loaded, then `Similarity.summarize`) computes the φ grids with their
# chance levels, across ranks and across seeds, and the amplification table.

# %%
if course.FAST:
    settings = Similarity(small_rank=4, large_rank=16, amplification_ranks=(4,), seeds=(0, 1), steps=30,
                          skill_task_kwargs=(("n_eval", 20),))
else:  # as the shipped results: ranks 4 and 16 (and 8), three seeds (200 steps here, 400 there)
    settings = Similarity(small_rank=4, large_rank=16, amplification_ranks=(4, 8), seeds=(0, 1, 2), steps=200,
                          skill_task_kwargs=(("n_eval", 100),))
specs = settings.specs()
outcomes = run_sweep(specs, run_adaptation, runs=work / "runs", jobs=1, desc="similarity")
print(f"{len(specs)} runs: ranks {settings.ranks()} × seeds {list(settings.seeds)}, {settings.steps} steps each")

# %% [markdown]
# Each run kept its matrices. For the small rank, seed 0, $W_q$ of block 1:

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
      f"amplification factor = {amplification_factor(delta, W_q):.2f}")

# %% [markdown]
# The summary over all runs: φ across ranks (r = 4 vs r = 16, same seed) and across seeds (two seeds, r = 4), for
# A (the paper's choice) and for ΔW's own right-singular directions (the directions the update actually uses,
# ordered by how much it uses them).

# %%
results = lora_paper(out=work, runs=work / "runs", only=["similarity"], settings={"similarity": settings}, jobs=1)
print(format_summary(results))  # the same runs, loaded from the sweep's folder, not trained again
summary = results["similarity"]

# %% [markdown]
# As heatmaps of the similarity above chance (white dots: mean φ not above chance). First across ranks, A of $W_q$:

# %%
LABELS = {"A": "A", "delta_w": "ΔW"}


def runs_of(kind, n):
    """What a φ grid averages over, counted: seeds (across ranks) or seed pairs (across seeds)."""
    return ("seed pair" if kind == "across_seeds" else "seed") + ("" if n == 1 else "s")


def draw_phi(summary, module, which, kind):
    """The seed-mean similarity above chance, (φ − c)/(1 − c), of one module, matrix and comparison."""
    block = summary["modules"][module][which][kind]
    s = summary["settings"]
    phi_mean, chance, excess = (np.asarray(block[key]) for key in ("mean", "chance", "above_chance"))
    n_i, n_j = phi_mean.shape
    fig = Figure(figsize=(7.5 if n_j > n_i else 5, 3.2), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(excess, vmin=0, vmax=1, cmap="viridis", aspect="auto",
                      extent=(0.5, n_j + 0.5, n_i + 0.5, 0.5))
    below = np.argwhere(phi_mean <= chance)
    ax.plot(below[:, 1] + 1, below[:, 0] + 1, "w.", ms=5)
    fig.colorbar(image, ax=ax, label="(φ − c)/(1 − c)")
    small = s["small_rank"]
    if kind == "across_ranks":
        ax.set_xlabel(f"j: top directions at r = {s['large_rank']}")
        ax.set_ylabel(f"i: at r = {small}")
        title = f"{module}, {LABELS[which]}: r = {small} vs r = {s['large_rank']}"
    else:
        ax.set_xlabel("j: top directions, seed b")
        ax.set_ylabel("i: top directions, seed a")
        title = f"{module}, {LABELS[which]}, r = {small}: two seeds"
    ax.set_title(f"{title} (mean of {len(block['pairs'])} {runs_of(kind, len(block['pairs']))})")
    integer_ticks(ax, n_i, n_j)
    return fig


def say_phi(summary, module, which, kind):
    """φ(1, 1) and φ(n, n) of one heatmap in a sentence: their mean, chance, and in how many pairs they beat chance."""
    block = summary["modules"][module][which][kind]
    parts = []
    for key, where in (("top1", "(1, 1)"), ("top_n", f"({block['top_n']['size']}, {block['top_n']['size']})")):
        top = block[key]
        above = sum(v > top["chance"] for v in top["values"])
        parts.append(f"φ{where} = {top['mean']:.2f} ± {top['std']:.2f} against chance {top['chance']:.3f}, above it "
                     f"in {above} of {top['n']} {runs_of(kind, top['n'])}")
    return f"{module}, {LABELS[which]}, {kind.replace('_', ' ')}: " + "; ".join(parts) + "."


course.show(draw_phi(summary, "q_proj", "A", "across_ranks"))
print(say_phi(summary, "q_proj", "A", "across_ranks"))

# %% [markdown]
# Then across seeds, the same matrix at r = 4:

# %%
course.show(draw_phi(summary, "q_proj", "A", "across_seeds"))
print(say_phi(summary, "q_proj", "A", "across_seeds"))

# %% [markdown]
# **What these numbers say**, for every analysed module and matrix (the sentences above, for all four):

# %%
for module in summary["modules"]:
    for which in ("A", "delta_w"):
        for kind in ("across_ranks", "across_seeds"):
            print(say_phi(summary, module, which, kind))
if course.FAST:
    print(f"(MINILORA_FAST=1: {settings.steps} steps and {len(settings.seeds)} seeds — too short for a finding; "
          "section 6 shows the full runs.)")

# %% [markdown]
# The amplification table: for each module and rank, $\lVert U^\top W V \rVert_F$ with U, V the top-r directions of
# ΔW, of W itself and of a random matrix; $\lVert W \rVert_F$, $\lVert \Delta W \rVert_F$ and the factor (mean ± std
# over seeds).

# %%
def amplification_table(summary):
    def pm(v):
        return f"{v['mean']:.3g} ± {v['std']:.2g}"
    course.table([{"module": r["module"], "r": r["rank"], "‖UᵀWV‖ (ΔW's)": pm(r["proj_delta"]),
                   "‖UᵀWV‖ (W's own)": f"{r['proj_w_top']:.3g}", "‖UᵀWV‖ (random)": pm(r["proj_random"]),
                   "‖W‖": f"{r['w_norm']:.3g}", "‖ΔW‖": pm(r["delta_norm"]), "factor": pm(r["factor"])}
                  for r in summary["amplification"]])


def say_amplification(summary):
    for r in summary["amplification"]:
        ratio = r["proj_delta"]["mean"] / r["proj_w_top"]
        print(f"{r['module']} r = {r['rank']}: factor {r['factor']['mean']:.2f} ± {r['factor']['std']:.2f}; ΔW's "
              f"directions hold {ratio:.0%} of what W's own top-{r['rank']} directions hold of W, and "
              f"{r['proj_delta']['mean'] / r['proj_random']['mean']:.1f}× what random directions hold.")


amplification_table(summary)
say_amplification(summary)

# %% [markdown]
# A factor above 1 means that in its own directions the update is larger than what W has there. Compare with the
# paper's ≈ 21.5 on GPT-3's $W_q$, where $\lVert W \rVert$ is spread over 12,288 dimensions rather than 64.
#
# **Why r = 16 and not the paper's 64?** There $k = 12{,}288$ and r = 64 is 0.5% of it; here $k = 64$.
#
# **Exercise 3 — φ against a full-rank A (predict, then run).** Take any 4 × 64 matrix $A_4$ of rank 4 and any
# 64 × 64 matrix $A_{64}$ of full rank, unrelated to it. Predict $\phi(A_4, A_{64}, i, 64)$ for i = 1..4 as one
# number, check it, then run the cell below.

# %%
phi_full_rank = None  # your prediction: one number

# %%
check("phi_full_rank", phi_full_rank)

# %%
any_4, any_64 = rng.normal(size=(4, k)), rng.normal(size=(64, k))  # nothing learned, nothing shared
print("φ(i, 64) for i = 1..4:", [round(subspace_similarity(any_4, any_64, i, 64), 6) for i in range(1, 5)])
print("chance max(i, 64)/64:", [chance_similarity(i, 64, k) for i in range(1, 5)])

# %% [markdown]
# 64 directions span all of $\mathbb{R}^{64}$, so they contain every subspace: $\phi(i, k) = 1$ for any matrices,
# and its chance level is 1 too. A heatmap of r = 8 against r = 64 on these 64-wide matrices is bright on its right
# side whatever was learned. So the large rank here stays at $k/4 = 16$, where chance is at most 1/4 and φ has room
# to show learning.
#
# ## 6. The full results
# `minilora lora-paper --out figures` trains ranks 4 and 16 (and 8) with three seeds for 400 steps. When its JSON is
# in `figures/`:

# %%
path = FIGURES / "lora-similarity.json"
shipped = json.loads(path.read_text()) if path.is_file() else None
if shipped is None:
    print(f"{path} is not there yet: `minilora lora-paper --only similarity --out figures` computes it")
else:
    s = shipped["settings"]
    print(f"{path}: ranks {s['small_rank']} and {s['large_rank']}, seeds {s['seeds']}, {s['steps']} steps")
    course.show(draw_phi(shipped, "q_proj", "A", "across_ranks"))
    print(say_phi(shipped, "q_proj", "A", "across_ranks"))

# %%
if shipped is not None:
    course.show(draw_phi(shipped, "q_proj", "A", "across_seeds"))
    print(say_phi(shipped, "q_proj", "A", "across_seeds"))

# %% [markdown]
# **What these numbers say**, every module and matrix of the full runs, then their amplification table:

# %%
if shipped is not None:
    for module in shipped["modules"]:
        for which in ("A", "delta_w"):
            for kind in ("across_ranks", "across_seeds"):
                print(say_phi(shipped, module, which, kind))
    blocks = [shipped["modules"][m][w]["across_ranks"] for m in shipped["modules"] for w in ("A", "delta_w")]
    top1 = [b["top1"]["mean"] for b in blocks]
    excess1 = [b["top1"]["above_chance"]["mean"] for b in blocks]
    excess_n = [b["top_n"]["above_chance"]["mean"] for b in blocks]
    print(f"\nAcross ranks the top direction overlaps by φ(1, 1) = {min(top1):.2f} to {max(top1):.2f} (chance "
          f"{blocks[0]['top1']['chance']:.3f}), "
          + ("like the paper's φ > 0.5." if min(top1) > 0.5 else "above chance but below the paper's φ > 0.5 on "
             "GPT-3.") + f" Above chance, (φ − c)/(1 − c), the top direction scores {min(excess1):.2f} to "
          f"{max(excess1):.2f} and all {blocks[0]['top_n']['size']} directions together {min(excess_n):.2f} to "
          f"{max(excess_n):.2f}: "
          + ("the further directions are closer to chance than the top one." if np.mean(excess_n) < np.mean(excess1)
             else "the further directions are as far above chance as the top one."))

# %%
if shipped is not None:
    amplification_table(shipped)
    say_amplification(shipped)

# %% [markdown]
# ## Recap
# - A's right-singular vectors (rows of $V^\top$ in $A = U \Sigma V^\top$) are the directions it reads; φ compares
#   the top-i of one A with the top-j of another, $\lVert V_1[:, :i]^\top V_2[:, :j] \rVert_F^2 / \min(i, j)$.
# - Random subspaces have $\mathbb{E}[\phi] = \max(i, j)/k$, not 0; at $j = k$ that is 1 for any matrices. Read φ
#   against chance, and keep the large rank well below k.
# - In the full runs, the top directions of two adapters overlap above chance, across ranks and across seeds, though
#   far less than the paper's GPT-3 adapters; across ranks, taking in further directions brings φ closer to chance:
#   the update leans on few directions.
# - The amplification factor $\lVert \Delta W \rVert_F / \lVert U^\top W V \rVert_F$ is small for an update along
#   W's strong directions and large along its weak ones.
#
# ## Questions
# 1. Why is φ divided by $\min(i, j)$ and not by $i \cdot j$ or $\max(i, j)$?
# 2. Two adapters of rank 4 on a 64-wide matrix have $\phi(4, 4) = 0.12$. Is that evidence that they learned the
#    same thing? What would you compare it with?
# 3. Why does the paper's r = 64 make sense on GPT-3 but not on this model?
# 4. A's directions and ΔW's right-singular directions can differ. Which one says what the update *does* to an
#    input, and why?
#
# <details><summary>Answers, briefly</summary>
#
# 1. $\lVert V_1[:, :i]^\top V_2[:, :j] \rVert_F^2 \le \min(i, j)$ (the smaller subspace can lie wholly inside the
#    larger), so dividing by it maps "nested" to 1.
# 2. Not by itself: chance is $\max(4, 4)/64 = 0.0625$, so 0.12 is above chance but far from 1; compare with the
#    spread over seed pairs, and with the grid's other cells.
# 3. There k = 12,288 and 64 directions are 0.5% of the space, so chance stays near 0; here 64 directions are all
#    of $\mathbb{R}^{64}$ and $\phi(i, 64) = 1$ whatever was learned.
# 4. ΔW's: $\Delta W x = s B (A x)$, and B can weight or cancel A's rows; the right-singular vectors of $BA$ are the
#    input directions the product actually responds to, ordered by how strongly.
#
# </details>
