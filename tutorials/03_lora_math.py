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
# # 03 · LoRA's mathematics
#
# LoRA (Hu et al. 2021, [arXiv 2106.09685](https://arxiv.org/abs/2106.09685)) freezes a pretrained weight
# $W_0 \in \mathbb{R}^{d \times k}$ and learns a low-rank update:
#
# $$h = W_0 x + b + \frac{\alpha}{r}\, B A x, \qquad A \in \mathbb{R}^{r \times k} \text{ (random)},\quad
# B \in \mathbb{R}^{d \times r} \text{ (zeros at init)},\quad r \ll \min(d, k).$$
#
# **What you will learn**
# - the LoRA layer's shapes, and why it computes $B(Ax)$ and never the $d \times k$ product $BA$ while training;
# - why $B = 0$ makes step 0 a no-op, and why then only B gets a gradient at first;
# - that $\Delta W = \frac{\alpha}{r} BA$ has rank $\le r$, seen in its singular values (and the rank of two
#   updates added, predicted then measured);
# - the count $d k$ vs $r(d + k)$, per layer of our GPT and for GPT-3 175B (the paper's 4.7M and 37.7M);
# - what the scaling $\alpha/r$ does to the size of the update as $r$ grows, and why rsLoRA uses $\alpha/\sqrt{r}$
#   (a simulation);
# - merging $W_0 + \frac{\alpha}{r}BA$ for free inference, and unmerging bit for bit (and why
#   $W + \Delta W - \Delta W$ would not be);
# - the adapter file: opened and read with `safetensors`, loaded back into the base model;
# - LoRA's backward pass, written by hand and checked with `gradcheck`.
#
# **Read first:** [01 · autograd](01_autograd_from_scratch.ipynb), [02 · the tiny GPT](02_tiny_gpt.ipynb).
# Next: [04 · LoRA side by side](04_lora_side_by_side.ipynb).
#
# **Run time:** about 10 seconds with one BLAS thread (`OMP_NUM_THREADS=1 jupyter lab`); the same with
# `MINILORA_FAST=1`, since nothing here depends on it.

# %%
import json
import os
import tempfile

import course
import numpy as np
from checks import check
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator
from safetensors import safe_open
from safetensors.numpy import load_file

import minilora as ml
from minilora import nn, optim
from minilora.data import SKILL_TOKENIZER, get_task
from minilora.lora import (
    LoraConfig,
    LoRALinear,
    apply_lora,
    count_parameters,
    load_adapter,
    lora_layers,
    lora_param_count,
    lora_report,
    lora_scaling,
    merge_lora,
    save_adapter,
    unmerge_lora,
)
from minilora.models.zoo import weights_path

# %% [markdown]
# ## 1. One LoRA layer
# Take a Linear from 64 inputs to 256 outputs (the shape of our GPT's `fc_in`): $W_0$ is $d \times k = 256 \times 64$.
# `LoRALinear` freezes it and adds A ($r \times k$) and B ($d \times r$): B starts at zero, A at random, here
# `init_lora_weights="gaussian"` ($A_{ij} \sim \mathcal{N}(0, 1/r^2)$, the init of minilora's experiments; PEFT's
# default, `True`, is kaiming-uniform, $A_{ij} \sim \mathcal{U}(-1/\sqrt{k}, 1/\sqrt{k})$).

# %%
base = nn.Linear(64, 256, rng=0)                  # W0: (d, k) = (256, 64)
layer = LoRALinear(base, r=4, lora_alpha=8, init_lora_weights="gaussian", rng=0)  # scaling s = α / r = 2
print("W0", layer.base.weight.shape, " A", layer.lora_A.shape, " B", layer.lora_B.shape, " s =", layer.scaling)
print("trainable:", [name for name, p in layer.named_parameters() if p.requires_grad])

# %% [markdown]
# The forward pass, written out in NumPy, next to the layer's own. B is set to random values first, as if trained
# (at init B = 0 and the LoRA path adds nothing):

# %%
rng = np.random.default_rng(0)
layer.lora_B.data = rng.normal(0, 0.1, layer.lora_B.shape).astype(np.float32)
x = rng.normal(size=(3, 64)).astype(np.float32)                     # 3 tokens, k = 64 features
W0, b, A, B = (p.numpy() for p in (layer.base.weight, layer.base.bias, layer.lora_A, layer.lora_B))
by_hand = x @ W0.T + b + layer.scaling * (x @ A.T) @ B.T            # (3, 64)·(64, 256) + (3, 4)·(4, 256)
with ml.no_grad():
    print(by_hand.shape, "max |by hand − layer| =", float(np.abs(by_hand - layer(ml.tensor(x)).numpy()).max()))

# %% [markdown]
# $(x A^\top) B^\top$ costs $r(k + d) = 1{,}280$ multiply-adds per token; forming $BA$ first would cost
# $d k r = 65{,}536$ once and then $d k = 16{,}384$ per token. LoRA's forward goes through the $r$-wide bottleneck
# and never builds $BA$.
#
# ## 2. B = 0: the adapted model starts as the base model
# Apply LoRA to the pretrained skills GPT. Before any training its outputs are *bit for bit* the base model's:

# %%
pretrained = ml.pretrained("skills")
model = apply_lora(ml.pretrained("skills"), LoraConfig(r=4, target_modules=("q_proj", "v_proj", "fc_in", "fc_out"),
                                                     init_lora_weights="gaussian"))
ids = np.array([SKILL_TOKENIZER.encode("Rhello=olleh.")])
with ml.no_grad():
    print("identical logits:", np.array_equal(pretrained(ids)[0].numpy(), model.eval()(ids)[0].numpy()))

# %% [markdown]
# One backward pass on a batch shows the other half of the story. Write $u = Ax$ for the $r$ numbers in the
# bottleneck and $g = \partial L/\partial h$. Then $\partial L/\partial A = s\,B^\top g\,x^\top$, which is 0 while
# $B = 0$: at step 0 **only B moves**, and A starts moving once B is no longer zero.

# %%
x_batch, y_batch = get_task("reverse-shift").sample_batch(np.random.default_rng(0), 32)   # (32, T) each
model.train()
_, loss = model(x_batch, ml.tensor(y_batch))
loss.backward()
for name, lora in lora_layers(model)[:4]:
    print(f"{name:22s} |∂L/∂A| = {np.linalg.norm(lora.lora_A.grad):.3g}   |∂L/∂B| = "
          f"{np.linalg.norm(lora.lora_B.grad):.3g}")
print("frozen W0 has a gradient?", lora_layers(model)[0][1].base.weight.grad is not None)

# %% [markdown]
# **What these numbers say:** $\partial L/\partial A$ is exactly 0 in every adapted layer and
# $\partial L/\partial B$ is not, and the frozen $W_0$ gets no gradient at all (not even a zero one). Were A zero
# too, neither would ever get a gradient: B's gradient is $s\,g\,u^\top$ with $u = Ax$.
#
# ## 3. ΔW = (α/r)·BA has rank at most r
# Every column of $BA$ is a combination of B's $r$ columns, so $\Delta W$ lives in an $r$-dimensional subspace,
# whatever $d$ and $k$. Its singular values beyond the $r$-th are zero (up to rounding), where a full
# $d \times k$ update has $\min(d, k)$:

# %%
q_proj = model.blocks[0].attn.q_proj            # a LoRALinear around the pretrained 64 × 64 W_q
fig = Figure(figsize=(7.5, 3.4), layout="constrained")
ax = fig.add_subplot()
index = np.arange(1, 65)
ax.semilogy(index, np.linalg.svd(q_proj.base.weight.numpy(), compute_uv=False), "k.-", label="W0 (pretrained W_q)")
for r in (1, 2, 4, 8):
    demo = LoRALinear(nn.Linear(64, 64, rng=0), r=r, init_lora_weights="gaussian", rng=r)
    demo.lora_B.data = np.random.default_rng(r).normal(0, 0.1, demo.lora_B.shape).astype(np.float32)
    sv = np.linalg.svd(demo.delta_weight(), compute_uv=False)
    ax.semilogy(index, sv + 1e-12, ".-", label=f"ΔW, r = {r}")
    print(f"r = {r}: σ_{r} / σ_1 = {sv[r - 1] / sv[0]:.2g},  σ_{r + 1} / σ_1 = {sv[r] / sv[0]:.1g}")
ax.set_xlabel("index of the singular value")
ax.set_ylabel("singular value")
ax.set_xticks([1, 8, 16, 24, 32, 40, 48, 56, 64])
ax.set_xlim(0, 65)
ax.set_ylim(1e-11, 30)
ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5))
course.show(fig)

# %% [markdown]
# **What the figure says:** each $\Delta W$ curve falls off a cliff right after its $r$-th value — the printed
# ratios put $\sigma_{r+1}$ below $10^{-7}\,\sigma_1$, float32's rounding level, not
# rank — while the pretrained $W_0$ uses all 64 directions. A rank-$r$ update can only move the layer's outputs
# within an $r$-dimensional subspace.
#
# **Exercise 1 — predict, then run: two updates added.** Two adapters of ranks $r_1$ and $r_2$, trained separately
# on the same $d \times k$ weight, are both merged into it: $W = W_0 + \Delta W_1 + \Delta W_2$. What is the rank of
# $\Delta W_1 + \Delta W_2$ for generic (random) A's and B's? Write it as a function of $r_1, r_2, d, k$, check,
# then run the cell after the check, which measures it.

# %%
def merged_rank(r1: int, r2: int, d: int, k: int) -> int:
    raise NotImplementedError  # your prediction


# %%
check("merged_rank", merged_rank)

# %%
def random_update(r, d, k, seed):
    """ΔW = s·B A of a d×k LoRALinear with rank r and a random (as if trained) B."""
    lora = LoRALinear(nn.Linear(k, d, rng=0), r=r, rng=seed)
    lora.lora_B.data = np.random.default_rng(seed).normal(0, 0.1, lora.lora_B.shape).astype(np.float32)
    return lora.delta_weight()


for r1, r2, d, k in ((2, 3, 64, 64), (4, 4, 64, 16), (12, 8, 64, 16), (8, 8, 12, 64)):
    total = random_update(r1, d, k, seed=1) + random_update(r2, d, k, seed=2)
    print(f"r1 = {r1:2d}, r2 = {r2}, W is {d} × {k}:  rank of ΔW1 + ΔW2 = {np.linalg.matrix_rank(total)}")

# %% [markdown]
# **What these numbers say:** the column spaces of two generic updates share no direction, so their ranks add —
# until the sum reaches the matrix's own limit $\min(d, k)$. Merging several adapters into one weight is exact (the
# sum is just another matrix), but the merged update is no longer of rank $r$: written as one pair A, B it would
# need rank $r_1 + r_2$.
#
# ## 4. Counting: d·k against r(d + k)
# Each adapted matrix costs $r(d + k)$ trainable numbers instead of $d k$. On our tiny GPT, per adapted matrix:

# %%
course.table([{"layer": row.name, "d": row.d, "k": row.k, "d·k": f"{row.full:,}", "r": row.r,
               "r(d+k)": f"{row.lora:,}", "ratio": f"{row.ratio:.2%}"} for row in lora_report(model).rows])
print(count_parameters(model))

# %% [markdown]
# **What these numbers say:** a square $64 \times 64$ matrix costs $4 \cdot 128 = 512$ numbers at $r = 4$, 12.5%
# of its 4,096; `fc_in` and `fc_out` ($256 \times 64$) cost 1,280 of 16,384, a smaller fraction because
# $r(d+k)/(dk) = r(1/k + 1/d)$ is set by the *smaller* side. On a square $d \times d$ matrix the fraction is
# $2r/d$: small when $d$ is large. GPT-3 175B has $d_\text{model} = 12{,}288$ and 96 layers; the paper adapts
# $W_q$ and $W_v$:

# %%
d_model, layers = 12288, 96
for r in (1, 8):
    n = lora_param_count(d_model, layers, r=r, targets=("q", "v"))
    print(f"r = {r}: {n:>11,} trainable = {n / 1e6:.1f}M,  {100 * n / 175e9:.4f}% of 175B")
print(f"one W_q: d·k = {d_model * d_model:,};  its rank-1 update: r(d + k) = {2 * d_model:,}")

# %%
ranks = np.arange(1, 33)
fig = Figure(figsize=(7.5, 3.4), layout="constrained")
ax = fig.add_subplot()
for d in (64, 768, 12288):
    ax.loglog(ranks, ranks * 2 * d / d**2, "o-", markersize=3, label=f"d = k = {d}")
ax.axhline(1, color="gray", linestyle=":", label="as many as W")
ax.set_xlabel("rank r")
ax.set_ylabel("r(d + k) / (d·k)")
ax.xaxis.set_major_locator(FixedLocator([1, 2, 4, 8, 16, 32]))
ax.xaxis.set_major_formatter("{x:.0f}")
ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5))
course.show(fig)

# %% [markdown]
# **What the figure says:** the fraction grows linearly in $r$ (slope 1 on log–log axes) and falls like $1/d$ with
# the width: at $r = 8$ a 12,288-wide matrix costs about 0.13% of its weights, a 64-wide one a quarter. LoRA saves
# the most exactly where models are big. (It stops saving at all where the line reaches 1: $r = d/2$ for a square
# matrix — far off the chart for the wide ones.)
#
# ## 5. The scaling: α/r, and rsLoRA's α/√r
# The update is multiplied by $s$. Which $s$ keeps the *size* of $\Delta W$ the same when you try another rank with
# the same $\alpha$ and learning rate? Two facts decide it, early in training:
# - **Adam moves every entry of B by about the learning rate per step**, whatever $r$ and whatever the gradient's
#   size (it divides the gradient by its own running magnitude);
# - **A's entries start at a size that does not depend on $r$** with PEFT's default init (kaiming-uniform,
#   $\mathcal{U}(-1/\sqrt{k}, 1/\sqrt{k})$).
#
# $BA = \sum_{i=1}^{r} b_i a_i^\top$ is a sum of $r$ rank-one terms ($b_i$ the $i$-th column of B, $a_i^\top$ the
# $i$-th row of A) of about equal size and unrelated directions.
#
# **Exercise 2 — predict, then run: how ‖ΔW‖ scales with r.** After a few Adam steps from the same start,
# $\|\Delta W\|_F \propto r^{p}$. Predict the exponent $p$ for $s = \alpha/r$ and for $s = \alpha/\sqrt{r}$
# (hint: how does the length of a sum of $r$ vectors of equal length and random directions grow with $r$?). Write
# the pair `(p_for_alpha_over_r, p_for_alpha_over_sqrt_r)`, check it, then run the simulation below.

# %%
update_size_exponents = None  # your prediction: (p for α/r, p for α/√r), e.g. (1.0, 2.0)

# %%
check("update_size_exponents", update_size_exponents)

# %% [markdown]
# The simulation: a $128 \times 128$ `LoRALinear` learns a random change of its weight (a regression,
# $L = \mathrm{mean}\,(h - W_\star x)^2$) for 5 AdamW steps at learning rate $10^{-3}$, with $\alpha = 8$ at every
# rank, once with $s = \alpha/r$ and once with rsLoRA's $s = \alpha/\sqrt{r}$; $\|\Delta W\|_F$ averaged over 3 seeds.

# %%
def update_norm(r, use_rslora, seed, init=True, d=128, steps=5, alpha=8):
    """‖ΔW‖_F after ``steps`` AdamW steps of a d×d LoRALinear fitting a random change of its weight."""
    lora = LoRALinear(nn.Linear(d, d, rng=0), r=r, lora_alpha=alpha, use_rslora=use_rslora,
                      init_lora_weights=init, rng=seed)
    change = np.random.default_rng(100).normal(0, 1 / np.sqrt(d), (d, d)).astype(np.float32)  # W⋆ − W0
    adam = optim.AdamW([lora.lora_A, lora.lora_B], lr=1e-3, weight_decay=0.0)
    batches = np.random.default_rng(seed)
    for _ in range(steps):
        xs = batches.normal(size=(32, d)).astype(np.float32)          # (32, d)
        wanted = xs @ (lora.base.weight.numpy() + change).T           # (32, d)
        loss = ((lora(ml.tensor(xs)) - ml.tensor(wanted)) ** 2).mean()
        adam.zero_grad()
        loss.backward()
        adam.step()
    return float(np.linalg.norm(lora.delta_weight()))


sim_ranks = [1, 2, 4, 8, 16, 32, 64, 128]
norms, slopes = {}, {}
for init in (True, "gaussian"):
    for use_rslora in (False, True):
        norms[init, use_rslora] = [np.mean([update_norm(r, use_rslora, seed, init) for seed in range(3)])
                                   for r in sim_ranks]
        slopes[init, use_rslora] = np.polyfit(np.log(sim_ranks), np.log(norms[init, use_rslora]), 1)[0]

fig = Figure(figsize=(6.5, 3.6), layout="constrained")
ax = fig.add_subplot()
for use_rslora, label in ((False, "s = α/r (LoRA)"), (True, "s = α/√r (rsLoRA)")):
    ax.loglog(sim_ranks, norms[True, use_rslora], "o-", label=f"{label}: slope {slopes[True, use_rslora]:+.2f}")
ax.set_xlabel("rank r")
ax.set_ylabel("‖ΔW‖_F after 5 Adam steps")
ax.xaxis.set_major_locator(FixedLocator(sim_ranks))
ax.xaxis.set_major_formatter("{x:.0f}")
ax.legend(loc="lower left")
fig.suptitle("the same α and learning rate at every rank")
course.show(fig)
for use_rslora in (False, True):
    name = "α/√r" if use_rslora else "α/r "
    print(f"{name}: ‖ΔW‖ from r = 1 to 128: {norms[True, use_rslora][0]:.3f} -> {norms[True, use_rslora][-1]:.3f}, "
          f"slope {slopes[True, use_rslora]:+.2f} (kaiming-uniform A);  "
          f"with init 'gaussian' (A ~ N(0, 1/r²)): slope {slopes['gaussian', use_rslora]:+.2f}")

# %% [markdown]
# **What these numbers say.** With $s = \alpha/r$ the update *shrinks* as the rank grows: the printed slope is close
# to $-\tfrac12$, so at $r = 128$ the first steps change the weight several times less than at $r = 1$. That is the
# sum of $r$ unrelated rank-one terms: its norm grows like $\sqrt{r}$, and dividing by $r$ over-corrects. With
# rsLoRA's $s = \alpha/\sqrt{r}$ (Kalajdzievski 2023, [arXiv 2312.03732](https://arxiv.org/abs/2312.03732)) the
# slope is close to 0: the update keeps about the same size at every rank, so a large rank learns as fast as a
# small one and its extra capacity can show — rsLoRA's argument for why large ranks help only with $\alpha/\sqrt{r}$.
#
# The LoRA paper chose $\alpha/r$ (with $\alpha$ set to the first $r$ tried) to reduce how much the learning rate must
# be retuned when $r$ changes; it does not keep the update's size fixed. With minilora's `"gaussian"` init
# ($A \sim \mathcal{N}(0, 1/r^2)$) A itself shrinks with $r$, and the printed slopes show that then *both* scalings
# shrink the update at a large rank. The scalings at $\alpha = 8$:

# %%
for r in (1, 2, 4, 8, 16, 64):
    print(f"r = {r:3d}:  α/r = {lora_scaling(r, 8):6.3f}   α/√r (rsLoRA) = {lora_scaling(r, 8, use_rslora=True):6.3f}")

# %% [markdown]
# In minilora (and PEFT) it is one switch: `LoraConfig(r=..., lora_alpha=..., use_rslora=True)`.
# [05 · rank and which weights](05_rank_and_which_weights.ipynb) trains at several ranks under both scalings.
#
# ## 6. Merge for free inference, unmerge bit for bit
# Give every adapter a non-zero B, as training would, and merge: each base weight becomes
# $W_0 + s\,BA$, so the model runs one matmul per layer again, with the same outputs (up to float32 rounding):

# %%
rng = np.random.default_rng(1)
for _, lora in lora_layers(model):
    lora.lora_B.data = rng.normal(0, 0.05, lora.lora_B.shape).astype(np.float32)
w0 = q_proj.base.weight.numpy().copy()
model.eval()
with ml.no_grad():
    before = model(ids)[0].numpy()
    merge_lora(model)
    after = model(ids)[0].numpy()
print("merged:", q_proj.merged, "  max |merged − unmerged logits| =", float(np.abs(after - before).max()))

# %% [markdown]
# Unmerging restores $W_0$ exactly — because the layer kept $W_0$, not because it subtracts. Subtracting does not
# give $W_0$ back: $(W_0 + \Delta W)$ rounds every sum to the float32 grid, and that rounding cannot be taken out
# again.

# %%
unmerge_lora(model)
print("unmerged W equals W0 bit for bit:", np.array_equal(q_proj.base.weight.numpy(), w0))
delta = q_proj.delta_weight()
subtracted = (w0 + delta) - delta
print(f"(W0 + ΔW) − ΔW differs from W0 in {np.count_nonzero(subtracted != w0)} of {w0.size} entries,"
      f" by up to {np.abs(subtracted - w0).max():.2g}")

# %% [markdown]
# ## 7. The adapter file
# `save_adapter` writes Hugging Face PEFT's two files: `adapter_config.json` (where the adapters go, r, α) and
# `adapter_model.safetensors` (A and B only), a small fraction of the base model's file:

# %%
folder = save_adapter(model, tempfile.mkdtemp(), base_model_name_or_path="skills")
for name in sorted(os.listdir(folder)):
    print(f"{name:28s} {os.path.getsize(folder / name):>8,} bytes")
print(f"{'base model (skills)':28s} {os.path.getsize(weights_path('skills')):>8,} bytes")

# %% [markdown]
# A safetensors file is a JSON header (names, dtypes, shapes, offsets) followed by the raw arrays; any safetensors
# reader opens it, no minilora needed:

# %%
arrays = load_file(folder / "adapter_model.safetensors")
for key in list(arrays)[:4]:
    print(f"{key:55s} {str(arrays[key].dtype):8s} {arrays[key].shape}")
print(f"... {len(arrays)} arrays, {sum(a.size for a in arrays.values()):,} numbers")
with safe_open(folder / "adapter_model.safetensors", "np") as f:
    print("metadata:", f.metadata())

# %%
config = json.loads((folder / "adapter_config.json").read_text())
{key: config[key] for key in ("peft_type", "r", "lora_alpha", "target_modules", "base_model_name_or_path")}

# %% [markdown]
# Loaded into a fresh copy of the base model, the adapter gives back the same model:

# %%
reloaded = load_adapter(ml.pretrained("skills"), folder)
with ml.no_grad():
    print("same logits:", np.allclose(reloaded(ids)[0].numpy(), before, atol=1e-6))

# %% [markdown]
# ## Exercises
# Each exercise cell raises `NotImplementedError` until you fill it in; the cell after it checks your answer.
# Solutions: `tutorials/solutions/03_lora_math.py` (try first!).
#
# **Exercise 3 — LoRA's backward, by hand.** For $h = x W_0^\top + b + s\,(x A^\top) B^\top$ with $s = \alpha/r$,
# NumPy arrays x (N, k), W0 (d, k), A (r, k), B (d, r), and the upstream gradient $g = \partial L/\partial h$
# (N, d), return `(grad_x, grad_A, grad_B)`. Use section 2's $u = x A^\top$ (N, r) and the chain rule of
# [01](01_autograd_from_scratch.ipynb); $x$ reaches $h$ along two paths. The check wraps your function in an
# `ml.Function` and runs `gradcheck` on it (with values of $\alpha$ and $r$ other than section 1's).

# %%
def lora_backward(x, W0, A, B, alpha, r, g):
    raise NotImplementedError  # your code: return (grad_x, grad_A, grad_B)


# %%
check("lora_backward", lora_backward)

# %% [markdown]
# **Exercise 4 — counting.** For a `GPTConfig` and LoRA with rank r on the Linears named in `targets` (any of
# `q_proj, k_proj, v_proj, o_proj, fc_in, fc_out`), return the number of trainable parameters — without building
# the model, for *any* config (the check tries several). Mind `fc_in` and `fc_out`: they are not square.

# %%
def trainable_lora_params(config, r: int, targets: tuple) -> int:
    raise NotImplementedError  # your code


# %%
check("trainable_lora_params", trainable_lora_params)

# %% [markdown]
# ## Recap
# - $h = W_0 x + b + s\,B(Ax)$, $s = \alpha/r$: $W_0$ frozen, A ($r \times k$) random, B ($d \times r$) zero, so
#   training starts from the base model exactly; at step 0 only B gets a gradient.
# - $\Delta W = s\,BA$ has rank $\le r$ and costs $r(d + k)$ numbers instead of $dk$ — a fraction $2r/d$ of a square
#   matrix, tiny for wide models.
# - With the same $\alpha$ and learning rate, $s = \alpha/r$ makes the update of a larger rank *smaller*
#   ($\|\Delta W\| \propto 1/\sqrt{r}$ early in training); rsLoRA's $s = \alpha/\sqrt{r}$ keeps it about the same.
# - Merging folds $s\,BA$ into the weight for inference at no extra cost; unmerging restores the stored $W_0$ bit for
#   bit, which subtracting could not.
# - An adapter file holds only A and B (PEFT's format), a few percent of the model.
# - [04 · LoRA side by side](04_lora_side_by_side.ipynb) trains this adapter and compares it with full fine-tuning.
#
# ## Questions
# 1. Why would initialising both A and B at zero be a mistake, while initialising only one of them at zero is fine?
# 2. At which rank does LoRA stop saving parameters on a $d \times k$ matrix? What is it for a square
#    $64 \times 64$ matrix, and for `fc_in` ($256 \times 64$)?
# 3. Two adapters trained on different tasks are both merged into one weight (Exercise 1's situation). Does the
#    merged model compute the same as the base model running both adapters side by side? What can it no longer do?
# 4. You double $r$ and keep $\alpha$ and the learning rate. With $s = \alpha/r$, should you expect the first steps
#    to change the model more or less than before? With $s = \alpha/\sqrt{r}$?
#
# <details><summary>Answers to check yourself against</summary>
#
# 1. With both zero, $\partial L/\partial A = s B^\top g x^\top = 0$ and $\partial L/\partial B = s\,g\,u^\top = 0$
#    forever: nothing moves. With one zero, the other's gradient is non-zero, and once it has moved both do.
# 2. The smallest $r$ with $r(d + k) \ge dk$, i.e. $r = \lceil dk/(d + k) \rceil$: 32 for $64 \times 64$, 52 for
#    $256 \times 64$ (51.2 rounded *up*: at 51 it still saves).
# 3. Yes, up to float32 rounding: $(W_0 + \Delta W_1 + \Delta W_2)x = W_0x + \Delta W_1 x + \Delta W_2 x$. But the two
#    updates can no longer be switched off, weighted or swapped one at a time, and the merged update is no longer
#    a cheap low-rank pair: that is why adapters are usually kept apart until deployment.
# 4. Less with $\alpha/r$ (about $1/\sqrt{2}$ times the update's size); about the same with $\alpha/\sqrt{r}$.
#
# </details>
