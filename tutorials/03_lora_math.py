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
# LoRA (Hu et al. 2021, arXiv 2106.09685) freezes a pretrained weight W0 ∈ ℝ^{d×k} and learns a low-rank update:
#
#     h = W0 x + b + (α/r) · B A x,      A ∈ ℝ^{r×k} (random),  B ∈ ℝ^{d×r} (zeros at init),  r ≪ min(d, k)
#
# **What you will learn**
# - the LoRA layer's shapes, and why it computes B(Ax) and never the d×k product BA while training;
# - why B = 0 makes step 0 a no-op, and why then only B gets a gradient at first;
# - that ΔW = (α/r)·BA has rank ≤ r, seen in its singular values;
# - the count d·k vs r(d + k), per layer of our GPT and for GPT-3 175B (the paper's 4.7M and 37.7M);
# - what the scaling α/r is for;
# - merging W0 + (α/r)BA for free inference, and unmerging bit for bit (and why W + ΔW − ΔW would not be);
# - the adapter file: opened and read with `safetensors`, loaded back into the base model.
#
# **Read first:** `01_autograd_from_scratch`, `02_tiny_gpt`. Next: `04_lora_side_by_side`. Runs in seconds.

# %%
import json
import os
import tempfile

import course
import numpy as np
from checks import check
from matplotlib.figure import Figure
from safetensors import safe_open
from safetensors.numpy import load_file

import minilora as ml
from minilora import nn
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
# Take a Linear from 64 inputs to 256 outputs (the shape of our GPT's `fc_in`): W0 is d × k = 256 × 64.
# `LoRALinear` freezes it and adds A (r × k) and B (d × r): B starts at zero, A at random, here
# `init_lora_weights="gaussian"` (A ~ N(0, 1/r²), the init of minilora's experiments; PEFT's default, `True`, is
# kaiming-uniform).

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
# `(x Aᵀ) Bᵀ` costs r(k + d) = 1,280 multiply-adds per token; forming BA first would cost d·k·r = 65,536 once
# and then d·k = 16,384 per token. LoRA's forward goes through the r-wide bottleneck and never builds BA.
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
# One backward pass on a batch shows the other half of the story: with B = 0, ∂L/∂A = s·Bᵀ(∂L/∂h)xᵀ = 0, so at step 0
# **only B moves**; A starts moving once B is no longer zero. (Were A zero too, neither would ever get a gradient.)

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
# ## 3. ΔW = (α/r)·BA has rank at most r
# Every column of BA is a combination of B's r columns, so ΔW lives in an r-dimensional subspace, whatever d and k.
# Its singular values beyond the r-th are zero (up to rounding), where a full d × k update has min(d, k):

# %%
q_proj = model.blocks[0].attn.q_proj            # a LoRALinear around the pretrained 64 × 64 W_q
fig = Figure(figsize=(7, 3.2))
ax = fig.add_subplot()
ax.semilogy(np.linalg.svd(q_proj.base.weight.numpy(), compute_uv=False), "k.-", label="W0 (pretrained W_q)")
for r in (1, 2, 4, 8):
    demo = LoRALinear(nn.Linear(64, 64, rng=0), r=r, init_lora_weights="gaussian", rng=r)
    demo.lora_B.data = np.random.default_rng(r).normal(0, 0.1, demo.lora_B.shape).astype(np.float32)
    ax.semilogy(np.linalg.svd(demo.delta_weight(), compute_uv=False) + 1e-12, ".-", label=f"ΔW, r = {r}")
ax.set_xlabel("index of singular value")
ax.set_ylabel("singular value")
ax.set_ylim(1e-9, 10)
ax.legend(ncol=2, fontsize=8, loc="upper right")
course.show(fig)

# %% [markdown]
# ## 4. Counting: d·k against r(d + k)
# Each adapted matrix costs r(d + k) trainable numbers instead of d·k. On our tiny GPT, per adapted matrix:

# %%
print(lora_report(model).table)
print(count_parameters(model))

# %% [markdown]
# On a square d × d matrix the fraction is 2r/d: small when d is large. GPT-3 175B has d_model = 12,288 and 96
# layers; the paper adapts W_q and W_v:

# %%
d_model, layers = 12288, 96
for r in (1, 8):
    n = lora_param_count(d_model, layers, r=r, targets=("q", "v"))
    print(f"r = {r}: {n:>11,} trainable = {n / 1e6:.1f}M,  {100 * n / 175e9:.4f}% of 175B")
print(f"one W_q: d·k = {d_model * d_model:,};  its rank-1 update: r(d + k) = {2 * d_model:,}")

# %%
ranks = np.arange(1, 33)
fig = Figure(figsize=(7, 3.2))
ax = fig.add_subplot()
for d in (64, 768, 12288):
    ax.loglog(ranks, ranks * 2 * d / d**2, "o-", markersize=3, label=f"d = k = {d}")
ax.axhline(1, color="gray", linestyle=":")
ax.set_xlabel("rank r")
ax.set_ylabel("r(d + k) / (d·k)")
ax.legend()
course.show(fig)

# %% [markdown]
# ## 5. The scaling α/r
# The update is multiplied by s = α/r. Adam moves each entry of B by about the learning rate per step whatever
# the gradient's size, so the change in BA grows with r; dividing by r keeps the size of the update about the same
# when you try another rank, and the learning rate need not be retuned. rsLoRA (Kalajdzievski 2023) divides by √r
# instead, which learns better at large ranks. With α = 8:

# %%
for r in (1, 2, 4, 8, 16, 64):
    print(f"r = {r:3d}:  α/r = {lora_scaling(r, 8):6.3f}   α/√r (rsLoRA) = {lora_scaling(r, 8, use_rslora=True):6.3f}")

# %% [markdown]
# ## 6. Merge for free inference, unmerge bit for bit
# Give every adapter a non-zero B, as training would, and merge: each base weight becomes W0 + s·BA, so the model
# runs one matmul per layer again, with the same outputs (up to float32 rounding):

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
# Unmerging restores W0 exactly — because the layer kept W0, not because it subtracts. Subtracting does not give
# W0 back: (W0 + ΔW) rounds every sum to the float32 grid, and that rounding cannot be taken out again.

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
# **Exercise 1 — the forward pass.** With NumPy arrays x (N, k), W0 (d, k), b (d,), A (r, k), B (d, r), return
# the LoRA layer's output h (N, d).

# %%
def lora_forward(x, W0, b, A, B, alpha, r):
    raise NotImplementedError  # your code


# %%
check("lora_forward", lora_forward)

# %% [markdown]
# **Exercise 2 — counting.** For a `GPTConfig` and LoRA with rank r on the Linears named in `targets` (any of
# `q_proj, k_proj, v_proj, o_proj, fc_in, fc_out`), return the number of trainable parameters — without building
# the model. Mind `fc_in` and `fc_out`: they are not square.

# %%
def trainable_lora_params(config, r: int, targets: tuple) -> int:
    raise NotImplementedError  # your code


# %%
check("trainable_lora_params", trainable_lora_params)

# %% [markdown]
# **Exercise 3 — where LoRA stops saving.** Return the smallest rank r at which r(d + k) ≥ d·k.

# %%
def break_even_rank(d: int, k: int) -> int:
    raise NotImplementedError  # your code


# %%
check("break_even_rank", break_even_rank)
