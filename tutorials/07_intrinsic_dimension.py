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
# # 07 · Intrinsic dimension
#
# LoRA bets that fine-tuning needs few directions. Li et al. (2018, arXiv 1804.08838) measured how few, without
# choosing *which* weights: freeze all D weights θ0 and train only z ∈ R^d in
#
#     θ = θ0 + P z,        P ∈ R^{D×d} a fixed random projection,  z = 0 at the start.
#
# The smallest d that reaches 90% of full fine-tuning's metric is the *intrinsic dimension* d90. Aghajanyan et
# al. (2020, arXiv 2012.13255) found it small for pretrained language models — and smaller the longer they were
# pretrained — which is the LoRA paper's motivation.
#
# **What you will learn**
# - on a toy problem whose answer is known (d_int = 10), why subspace training finds it: first;
# - the three projections (dense, sparse, Fastfood): shapes, memory, and that they agree;
# - subspace training of our GPT with `SubspaceModel`, and d90 measured by a search over d;
# - pretrained vs random initialisation, and d90 along pretraining;
# - metric against the number of trainable parameters: subspace, LoRA and full fine-tuning on one chart.
#
# **Read first:** `03_lora_math`, `04_lora_side_by_side`, `05_rank_and_which_weights` (sweeps of run specs).
# Runs in about 1–2 minutes (well under a minute with `MINILORA_FAST=1`: 20-step runs, the pipeline and not a finding).

# %%
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import course
import numpy as np
from checks import check
from IPython.display import Image, display
from matplotlib.figure import Figure

import minilora as ml
from minilora.data import get_task
from minilora.experiments import intrinsic
from minilora.experiments.d90 import crossing, target_of
from minilora.experiments.intrinsic import format_table, run_intrinsic
from minilora.experiments.toy_intrinsic import ToyLoss, toy_intrinsic_dimension, toy_problem, toy_subspace_fit
from minilora.plots import plot_budget, plot_intrinsic_curves, plot_intrinsic_trend
from minilora.subspace import DenseProjection, FastfoodProjection, SparseProjection, SubspaceModel
from minilora.train import TrainConfig, train

work = Path(tempfile.mkdtemp())  # this notebook's runs and figures (a temporary folder)
FIGURES = Path("..") / "figures"  # the shipped full results, when present


def show_png(path):
    """Display a PNG that minilora.plots wrote."""
    display(Image(filename=str(path)))


# %% [markdown]
# ## 1. A problem whose intrinsic dimension is 10
# Li et al. open with θ ∈ R^1000 and a loss that asks the first 100 entries to sum to 1, the next 100 to 2, ...,
# the last 100 to 10:
#
#     L(θ) = ‖A θ − b‖²,   A ∈ R^{10×1000} (row i sums group i),  b = (1, 2, ..., 10).

# %%
problem = toy_problem()
print("A", problem.A.shape, " b", problem.b.shape, " θ0", problem.theta0.shape,
      "  rank A =", np.linalg.matrix_rank(problem.A))
print("row 0 of A is 1 on entries", np.flatnonzero(problem.A[0])[[0, -1]],
      "; L(θ0) =", round(problem.residual(problem.theta0) ** 2, 2))

# %% [markdown]
# The solutions form a 990-dimensional affine set: each of the 10 independent constraints removes one direction.
# In the subspace the loss is L(z) = ‖M z − c‖² with M = A P (10 × d) and c = b − A θ0; it can reach 0 exactly when
# M has rank 10, which a random P gives as soon as d ≥ 10 and never before. `toy_subspace_fit` finds the best z of
# a d-dimensional subspace (least squares, the point gradient descent converges to) for each projection:

# %%
dims = list(range(1, 21))
residuals = {kind: [toy_subspace_fit(d, kind, problem=problem).relative_residual for d in dims]
             for kind in ("dense", "sparse", "fastfood")}
for kind in residuals:
    print(f"{kind:8s} d_int = {toy_intrinsic_dimension(kind, problem=problem, max_d=20)}")
fig = Figure(figsize=(6, 3.5))
ax = fig.subplots()
for kind, values in residuals.items():
    ax.semilogy(dims, np.maximum(values, 1e-17), "o-", ms=3, label=kind)
ax.axvline(10, color="gray", linestyle=":", label="d = 10 constraints")
ax.set_xlabel("subspace dimension d")
ax.set_ylabel("best ‖Aθ − b‖ / ‖Aθ0 − b‖")
ax.set_title("the toy problem: solved exactly from d = 10", fontsize=10)
ax.legend(fontsize=8)
course.show(fig)

# %% [markdown]
# Below d = 10 the residual shrinks with every dimension but stays far from 0; at d = 10 it drops to rounding
# error, for every projection. The same loss through the engine: wrap the problem as a module and `SubspaceModel`
# trains only z. With the least-squares z, d = 10 solves it and d = 9 does not:

# %%
for d in (9, 10):
    fit = toy_subspace_fit(d, "dense", problem=problem)
    sm = SubspaceModel(ToyLoss(problem), d, projection="dense")
    sm.z.data = fit.z  # (d,)
    print(f"d = {d:2d}: z {sm.z.shape}, trainable {sm.count_parameters().trainable}, loss through the engine "
          f"{float(sm().item()):.2e}")

# %% [markdown]
# ## 2. Three projections
# P has unit-norm columns (one step along z_j moves θ by the same distance whatever D is). Dense P stores D·d
# numbers; sparse P (Li, Hastie & Church 2006) about d·√D; Fastfood computes P z with two fast Walsh–Hadamard
# transforms in O(D log D) time and O(D) memory. Our GPT has D = 110,720 weights:

# %%
base = ml.pretrained("skills")
D = base.num_parameters()
rng = np.random.default_rng(0)
for P in (DenseProjection(D, 64), SparseProjection(D, 1024), FastfoodProjection(D, 1024)):
    z = rng.standard_normal(P.d)  # (d,)
    g = rng.standard_normal(P.D)  # (D,)
    start = time.perf_counter()
    Pz = P.matvec(z)  # (D,)
    ms = 1e3 * (time.perf_counter() - start)
    column = P.matvec(np.eye(P.d)[0])  # P e_1, the first column
    print(f"{type(P).__name__:19s} P {P.shape}  P z {Pz.shape}  ‖P e_1‖ = {np.linalg.norm(column):.4f}  "
          f"⟨Pz, g⟩ − ⟨z, Pᵀg⟩ = {float(Pz @ g - z @ P.rmatvec(g)):+.1e}  matvec {ms:.1f} ms")
print(f"dense P at d = 1,024 would hold {D * 1024 * 4 / 2**20:,.0f} MiB; the sparse one has "
      f"{SparseProjection(D, 1024).nnz:,} nonzeros")

# %% [markdown]
# ## 3. Subspace training of the GPT
# `SubspaceModel(model, d)` freezes the GPT and makes z (d numbers) its only trainable parameter; calling it runs
# the GPT with θ0 + P z in place of its weights, so the training loop of notebook 04 trains it unchanged. At z = 0
# it computes exactly what the base model computes:

# %%
task = get_task("reverse-shift", n_eval=course.fast_or_full(100, 500))
sm = SubspaceModel(ml.pretrained("skills"), d=1024)  # Fastfood P by default
print(sm.count_parameters())
ids = np.array([task.tokenizer.encode("Tminilora=")])
with ml.no_grad():
    print("max |subspace − base| at z = 0:", float(np.abs(sm(ids)[0].numpy() - base(ids)[0].numpy()).max()))
steps = course.fast_or_full(20, 100)
result = train(sm, task, TrainConfig(steps=steps, lr=0.03, warmup_steps=max(1, steps // 20), weight_decay=0.0))
print(f"d = 1,024 after {steps} steps: accuracy {result.final_metrics['accuracy']:.3f} "
      f"(the base model: {task.evaluate(base)['accuracy']:.3f})")

# %% [markdown]
# ## 4. d90: the search over d
# One number per d is not enough: the curve metric(d) has to cross 90% of full fine-tuning's metric (same task,
# steps, batch and schedule). `run_intrinsic` measures *curves*: the full fine-tuning baseline, then d on powers of
# two, moving up from a miss and down from a hit until a miss sits right below the first hit; the learning rate of z
# is chosen per d from a small grid. d90 interpolates between the last miss and the first hit on log d:

# %%
curve_dims, curve_values, baseline = [256, 512, 1024, 2048], [0.30, 0.62, 0.81, 0.89], 0.92
target = target_of(baseline)  # 0.9 × baseline
print(f"target {target:.3f}; d90 = {crossing(curve_dims, curve_values, target):,.0f}  (an example curve, not a run)")

# %% [markdown]
# The runs here (every run is a spec, cached in one folder, so experiments that need the same run share it):

# %%
if course.FAST:  # 20-step runs, one seed, one lr: every experiment runs, none says much
    settings = replace(intrinsic.FAST, steps=20, dense_dims=(256,), start=(1024, 2048), d_max=16384,
                       snapshots=(1000, 9000), snapshot_starts=((1024, 2048), (1024, 2048)), toy_max_d=12)
else:  # `minilora intrinsic --fast`: 100 steps, one seed (the shipped figures: 300 steps, 3 to 5 seeds)
    settings = intrinsic.FAST
runs = work / "intrinsic"
print({k: v for k, v in settings.as_dict().items() if k in ("task", "steps", "lrs", "seeds", "start", "snapshots")})

# %% [markdown]
# ### 4a. The pretrained model, three projections
# Fastfood searched for d90; sparse and dense measured at the dense grid (where a dense P fits in memory).

# %%
results = run_intrinsic(only=["projections"], runs=runs, out=work, jobs=1, settings=settings)
print(format_table(results))
show_png(plot_intrinsic_curves(results["projections"], work / "intrinsic-projections.png",
                               "the skills model on reverse-shift: three projections"))

# %% [markdown]
# ### 4b. Pretrained vs random initialisation
# The same architecture from random weights: its baseline is full training from scratch for the same steps. The
# paper's claim is that pretraining makes the intrinsic dimension small; a random model needs a far larger d (or,
# in a short run, learns too little for a target at all: then no curve is measured and the table says so).

# %%
results = run_intrinsic(only=["pretrained-vs-random"], runs=runs, out=work, jobs=1, settings=settings)
print(format_table(results))
print("d90 random / d90 pretrained:", results["pretrained-vs-random"]["random_over_pretrained"])
show_png(plot_intrinsic_curves(results["pretrained-vs-random"], work / "intrinsic-pretrained-vs-random.png",
                               "reverse-shift: the skills model vs the same GPT from random initialisation"))

# %% [markdown]
# ### 4c. Along pretraining
# The skills recipe's own run saved its weights at a few steps (the zoo: `ml.pretrained("skills", step=S)`, the
# last step being the shipped model); d90 is measured from each snapshot.

# %%
results = run_intrinsic(only=["pretraining"], runs=runs, out=work, jobs=1, settings=settings)
print(format_table(results))
for row in results["pretraining"]["rows"]:
    d90 = "not reached" if row["d90"] is None else f"{row['d90']:,.0f}"
    print(f"step {row['step']:5d}: pretraining accuracy {row['pretrain_metric']:.3f}, baseline "
          f"{row['baseline']:.3f}, d90 {d90}")
show_png(plot_intrinsic_trend(results["pretraining"], work / "intrinsic-pretraining.png", "step",
                              "pretraining step", "d90 on reverse-shift along pretraining"))

# %% [markdown]
# ### 4d. Metric against trainable parameters
# Subspace training at every d, LoRA at a few ranks and full fine-tuning, on one axis: how many numbers does each
# method train to reach a given accuracy?

# %%
results = run_intrinsic(only=["budget"], runs=runs, out=work, jobs=1, settings=settings)
budget = results["budget"]
for r in budget["lora"]:
    print(f"LoRA r={r['rank']}: {r['trainable']:,} trainable, accuracy {r['mean']:.3f}")
d90 = budget["subspace"]["d90"]
print(f"full fine-tuning: {budget['full']['D']:,} trainable, accuracy {budget['full']['metric']:.3f};  "
      f"subspace d90 = {'not reached' if d90 is None else f'{d90:,.0f}'}")
show_png(plot_budget(budget, work / "intrinsic-budget.png"))

# %% [markdown]
# ## 5. The full results
# `minilora intrinsic --out figures` runs every experiment with 300-step runs, a learning rate per d, 3 seeds (5 for
# the random model) and a refined search (about 23 minutes with `--jobs 2`). When its JSON is in `figures/`:

# %%
drawers = {"projections":
               lambda r, p: plot_intrinsic_curves(r, p, "the skills model on reverse-shift: three projections"),
           "pretrained-vs-random":
               lambda r, p: plot_intrinsic_curves(r, p, "the skills model vs random initialisation"),
           "pretraining": lambda r, p: plot_intrinsic_trend(r, p, "step", "pretraining step", "d90 along pretraining"),
           "budget": plot_budget}
shipped = {name: FIGURES / f"intrinsic-{name}.json" for name in drawers}
found = {name: json.loads(path.read_text()) for name, path in shipped.items() if path.is_file()}
if found:
    print(format_table(found))
for name, path in shipped.items():
    if name in found:
        print(f"{path}: the full run")
        show_png(drawers[name](found[name], work / f"shipped-{name}.png"))
    else:
        print(f"{path} is not there yet: `minilora intrinsic --only {name} --out figures` computes it")

# %% [markdown]
# What the papers report, to check against the full results above: the toy problem's d_int is exactly its number
# of constraints (section 1 showed it); the kind of P should not matter, only d; a pretrained model reaches 90%
# with a d that is a small share of D while a random one needs far more (Aghajanyan et al.); d90 falls as
# pretraining goes on; and LoRA, which also trains a few thousand numbers, is a structured bet on the same few
# directions. The runs in this notebook (100 steps, one seed; 20 steps with `MINILORA_FAST=1`) are a quick look:
# read the full results for the findings.
#
# ## Exercises
# Each exercise cell raises `NotImplementedError` until you fill it in; the cell after it checks your answer.
# Solutions: `tutorials/solutions/07_intrinsic_dimension.py` (try first!).
#
# **Exercise 1 — d90 from a curve.** Given increasing `dims`, the seed-mean metric `values` at each, and the
# `target`, return d90 as `run_intrinsic` does (the first point itself when it already reaches the target; `None`
# when no point does).

# %%
def d90_from_curve(dims, values, target):
    raise NotImplementedError  # your code


# %%
check("d90_from_curve", d90_from_curve)

# %% [markdown]
# **Exercise 2 — the toy's intrinsic dimension without training.** For L(θ) = ‖A θ − b‖² (with a b that can be
# reached), return the smallest d at which a random subspace solves it, from A alone. Careful: some rows may repeat.

# %%
def toy_intrinsic(A):
    raise NotImplementedError  # your code


# %%
check("toy_intrinsic", toy_intrinsic)

# %% [markdown]
# **Exercise 3 — why not a dense P.** Return the bytes a `DenseProjection(D, d)` stores.

# %%
def dense_projection_bytes(D, d):
    raise NotImplementedError  # your code


# %%
check("dense_projection_bytes", dense_projection_bytes)
