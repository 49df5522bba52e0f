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
# # 10 · QLoRA: LoRA on a 4-bit base
#
# LoRA ([Hu et al. 2021, arXiv 2106.09685](https://arxiv.org/abs/2106.09685)) freezes W0 and trains a small update.
# A frozen matrix is only ever *read*, so it need not be stored in float32. QLoRA
# ([Dettmers et al. 2023, arXiv 2305.14314](https://arxiv.org/abs/2305.14314)) stores W0 in 4 bits and trains the
# LoRA adapter on top in full precision:
#
# $$h = \hat W_0 x + b + \frac{\alpha}{r} B A x, \qquad \hat W_0 = \mathrm{dequantize}\big(\mathrm{NF4}(W_0)\big).$$
#
# **What you will learn**
# - the 16 values of NF4 (4-bit NormalFloat), derived from the quantiles of $\mathcal N(0, 1)$ and drawn on its
#   distribution function, and why a code of equally likely bins wastes no bit;
# - blockwise absmax scaling: one scale per 64 weights, and what a single outlier does without blocks;
# - double quantisation: the scales themselves in 8 bits, 4.5 → 4.127 bits per weight;
# - the bytes of W0 in 32 and in 4 bits, and the bytes a training step keeps for full fine-tuning, LoRA and QLoRA;
# - QLoRA against LoRA on one task (a live run) and on the shipped comparison of
#   [09 · the LoRA family](09_lora_family.ipynb);
# - the merge pitfall: why $\hat W_0 + \frac{\alpha}{r}BA$ cannot go back into 4 bits for free.
#
# **Read first:** [03 · LoRA's mathematics](03_lora_math.ipynb) (merging, the adapter file) and
# [04 · full fine-tuning and LoRA](04_lora_side_by_side.ipynb) (what training keeps in memory). The code is in
# `minilora/quant/` (`nf4.py`: the code, blocks, double quantisation; `linear4bit.py`: the frozen 4-bit layer,
# `merge_and_requantize`), the method is `qlora` in the registry, and `minilora quant-report` prints the numbers
# of sections 2–4 at full size.
#
# Runs in about half a minute with `OMP_NUM_THREADS=1` (start Jupyter as `OMP_NUM_THREADS=1 jupyter lab`: one BLAS
# thread, as the timings here assume), and in about 10 s with `MINILORA_FAST=1` (shorter training, smaller
# matrices).

# %%
import copy
import json
from pathlib import Path
from statistics import NormalDist

import course
import numpy as np
from checks import check
from matplotlib.figure import Figure

import minilora as ml
from minilora import nn
from minilora.bench.quant import resident_bytes
from minilora.data import SKILL_TOKENIZER, get_task
from minilora.experiments.methods import get_method
from minilora.lora import lora_layers, merge_lora
from minilora.quant import (
    NF4_CODE,
    dequantize_nf4,
    merge_and_requantize,
    quantize_nf4,
    stored_bytes,
)
from minilora.quant.nf4 import NF4_OFFSET, uniform4_roundtrip
from minilora.train import TrainConfig, train

FIGURES = Path("..") / "figures"  # the shipped results of `minilora lora-family`

# %% [markdown]
# ## 1. Sixteen values from the normal distribution
# Four bits give 16 values; every weight is replaced by the nearest one. Which 16? Pretrained weights are close to
# normal, and (section 2) each block is divided by its largest magnitude, so the numbers to encode lie in
# $[-1, 1]$ and pile up near 0. The code that wastes no bit gives each value the **same probability** of being
# used: the values are quantiles of $\mathcal N(0, 1)$,
#
# $$q_i = \Phi^{-1}(p_i), \qquad \Phi(x) = \tfrac12\big(1 + \mathrm{erf}(x/\sqrt 2)\big),$$
#
# at evenly spaced probabilities $p_i$. Two details make the 16: $\Phi^{-1}(1) = \infty$, so the outermost
# probability is $\delta = 0.9677$ (the mean of $1 - \frac{1}{2\cdot 15}$ and $1 - \frac{1}{2\cdot 16}$), not 1; and
# zero must be exact (padding, pruned weights), so one value is an exact 0 and the other 15 split into **8
# positive** ($p$ from $\delta$ down towards ½, 9 points with ½ dropped) and **7 negative** (8 points, ½ dropped).
# Last, divide by the largest so the code spans $[-1, 1]$. Python's `statistics.NormalDist` has $\Phi^{-1}$:

# %%
normal = NormalDist()
p_pos = np.linspace(NF4_OFFSET, 0.5, 9)[:-1]                # (8,)  δ ... just above ½
p_neg = np.linspace(NF4_OFFSET, 0.5, 8)[:-1]                # (7,)
q_pos = np.array([normal.inv_cdf(p) for p in p_pos])        # Φ⁻¹(p): 1.848 ... 0.147
q_neg = -np.array([normal.inv_cdf(p) for p in p_neg])       # mirrored: −1.848 ... −0.168
quantiles = np.sort(np.concatenate([q_neg, [0.0], q_pos]))  # (16,)
derived = quantiles / quantiles.max()                       # (16,) in [−1, 1]
print("p (positive side):", np.round(p_pos, 4))
print(f"derived code, shape {derived.shape}; largest |derived − NF4_CODE| = {np.abs(derived - NF4_CODE).max():.1e}")
course.table([{"index": i, "quantile q_i": float(q), "NF4 value q_i / max q": float(c),
               "NF4_CODE (bitsandbytes' table)": float(n)}
              for i, (q, c, n) in enumerate(zip(quantiles, derived, NF4_CODE))], digits=4)

# %% [markdown]
# **What these numbers say:** 16 quantiles, divided by the largest ($\Phi^{-1}(\delta) = 1.848$), are the table
# bitsandbytes hard-codes — equal up to float32 rounding (minilora's `create_normal_map` reproduces it bit for bit
# by doing the arithmetic in float32 as bitsandbytes does). The code is **not symmetric**: 8 values above zero,
# 7 below, so the negative side's steps are a little wider. Drawn on the distribution function, each value sits
# one equal step of probability above the previous one:

# %%
xs = np.linspace(-2.6, 2.6, 300)
fig = Figure(figsize=(7, 3.6), layout="constrained")
ax = fig.add_subplot()
ax.plot(xs, [normal.cdf(x) for x in xs], color="0.6", label=r"$\Phi(x)$, the N(0, 1) distribution function")
ax.plot(quantiles, [normal.cdf(q) for q in quantiles], "o", color="C0", label="the 16 NF4 values (before ÷ max)")
for q in quantiles:
    ax.plot([q, q], [0, normal.cdf(q)], color="C0", linewidth=0.6, alpha=0.5)
ax.set_xlabel("x (standard deviations)")
ax.set_ylabel(r"$\Phi(x)$ = P(weight < x)")
ax.legend(loc="upper left")
course.show(fig)

# %% [markdown]
# **What the figure says:** the dots are evenly spaced *in height* (probability), so they crowd where the normal
# density is high (near 0) and spread out in the tails. A uniform 4-bit code would do the opposite: evenly spaced
# in value, it spends as many values on the rare large weights as on the crowded small ones.
#
# How evenly are the codes *used* on real weights? Quantise every Linear of the pretrained skills model (all but
# the head) in blocks of 64, with NF4 and with the uniform code (15 levels $-7a/7, \dots, 7a/7$), and count:

# %%
skills = ml.pretrained("skills")
weights = [m.weight.numpy() for name, m in skills.named_modules() if isinstance(m, nn.Linear) and name != "head"]
nf4_index = []
for w in weights:
    packed = quantize_nf4(w, blocksize=64).packed                                          # (n/2,) uint8
    nf4_index.append(np.stack([packed >> 4, packed & 15], axis=1).reshape(-1)[:w.size])   # two codes a byte
nf4_use = np.bincount(np.concatenate(nf4_index), minlength=16) / sum(w.size for w in weights)   # (16,)
blocks = np.concatenate([w.reshape(-1) for w in weights]).reshape(-1, 64)                       # (n/64, 64)
uniform_level = np.round(7 * blocks / np.abs(blocks).max(axis=1, keepdims=True)).astype(int)    # −7 … 7
uniform_use = np.bincount((uniform_level + 7).reshape(-1), minlength=15) / blocks.size          # (15,)


def entropy_bits(p):
    """−Σ p log₂ p: the bits of information one code carries (4.0 if all 16 are used equally)."""
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


fig = Figure(figsize=(7, 3.4), layout="constrained")
ax = fig.add_subplot()
ax.plot(NF4_CODE, nf4_use, "o-", color="C0", label=f"NF4 ({entropy_bits(nf4_use):.2f} bits used of 4)")
ax.plot(np.arange(-7, 8) / 7, uniform_use, "s-", color="C3",
        label=f"uniform 4-bit ({entropy_bits(uniform_use):.2f} bits used of 4)")
ax.set_xlim(-1.15, 1.15)
ax.set_ylim(0, 1.35 * max(nf4_use.max(), uniform_use.max()))  # room for the legend above the curves
ax.set_xticks([-1, -0.5, 0, 0.5, 1])
ax.set_xlabel("code value (× the block's absmax)")
ax.set_ylabel("fraction of weights")
ax.legend(loc="upper left")
course.show(fig)
print(f"{sum(w.size for w in weights):,} weights; most-used code: NF4 {nf4_use.max():.3f}, "
      f"uniform {uniform_use.max():.3f}; least-used: NF4 {nf4_use.min():.3f}, uniform {uniform_use.min():.3f}")

# %% [markdown]
# **What the figure says:** NF4's usage is much flatter than the uniform code's, so each 4-bit code carries more
# information (the entropies in the legend). It is not perfectly flat: a block's absmax is its *largest* of 64
# weights, about 2.6σ for normal weights, not the 1.85σ that NF4's outermost value assumes, so the normalised
# weights are a little narrower than the code and the outer values are used less.
#
# ## 2. Blockwise absmax
# Scaling happens per **block** of 64 consecutive weights (row-major, as the array is stored):
#
# $$a_b = \max_{i \in b} |w_i|, \qquad y_i = \frac{w_i}{a_b} \in [-1, 1], \qquad
# \text{index}_i = \arg\min_j |y_i - c_j|, \qquad \hat w_i = c_{\text{index}_i}\, a_b .$$
#
# The nearest value is found by comparing $y_i$ with the 15 midpoints between neighbouring code values; two
# 4-bit indices are packed into one byte. One block of the skills model's `q_proj`, step by step:

# %%
w_q = skills.blocks[0].attn.q_proj.weight.numpy()       # (64, 64): 4,096 weights = 64 blocks
block = w_q.reshape(-1)[:64]                             # the first block: row 0
a = np.abs(block).max()
y = block / a
index = np.abs(y[:, None] - NF4_CODE[None, :]).argmin(axis=1)   # (64,) nearest code value
by_hand = NF4_CODE[index] * a
library = dequantize_nf4(quantize_nf4(w_q, blocksize=64)).reshape(-1)[:64]
print(f"W_q {w_q.shape}, block {block.shape}, absmax a = {a:.4f};  by hand == library: "
      f"{np.array_equal(by_hand, library)}")
course.table([{"w": float(block[i]), "y = w / a": float(y[i]), "index": int(index[i]),
               "ŵ = code · a": float(by_hand[i]), "|w − ŵ|": float(abs(block[i] - by_hand[i]))}
              for i in range(6)], digits=4)

# %% [markdown]
# **What these numbers say:** the weight with $|w| = a$ becomes exactly ±1 times $a$ (index 0 or 15) and is stored
# without error; every other weight moves to the nearest of the 16 levels, by at most half a gap between two
# neighbouring codes times $a$ (exercise 3 asks how much that is).
#
# **Why blocks?** A single large weight sets the scale of its whole block. Take a 64 × 64 matrix of small normal
# weights (σ = 0.02), put one outlier of 1.0 in it, and quantise it once with blocks of 64 and once as one block of
# 4,096 (a single absmax for the whole matrix):

# %%
rng = np.random.default_rng(0)
small = rng.normal(0, 0.02, (64, 64)).astype(np.float32)
small[10, 10] = 1.0                                        # one outlier, 50 σ
rows = []
for blocksize in (64, 4096):
    err = np.abs(dequantize_nf4(quantize_nf4(small, blocksize=blocksize)) - small)
    in_block = err.reshape(-1)[640:704]                    # the outlier's block of 64 (row 10)
    rows.append({"blocksize": blocksize, "scales stored": small.size // blocksize,
                 "mean |w − ŵ|, all weights": float(err.mean()),
                 "mean |w − ŵ|, the outlier's block": float(in_block.mean()),
                 "weights stored as 0": int((dequantize_nf4(quantize_nf4(small, blocksize=blocksize)) == 0).sum())})
course.table(rows, digits=5)

# %% [markdown]
# **What these numbers say:** with one scale for all 4,096 weights, the outlier stretches the code so far that
# most small weights round to the exact zero and the mean error is many times larger; with blocks of 64 the
# outlier spoils only its own block. The price of small blocks is one float32 scale per block: 32/64 = 0.5 bit per
# weight (section 3).
#
# On a large normal matrix the error grows with the block size, and NF4 beats the uniform code at every size
# (`minilora quant-report` prints this at 1024 × 1024, next to bitsandbytes' own published test numbers):

# %%
size = course.fast_or_full(256, 1024)
big = np.random.default_rng(0).standard_normal((size, size)).astype(np.float32)
error_rows = []
for blocksize in (64, 256, 4096):
    nf4 = float(np.abs(dequantize_nf4(quantize_nf4(big, blocksize=blocksize)) - big).mean())
    uniform = float(np.abs(uniform4_roundtrip(big, blocksize) - big).mean())
    error_rows.append({"blocksize": blocksize, "NF4 mean |w − ŵ|": nf4, "uniform 4-bit mean |w − ŵ|": uniform,
                       "uniform / NF4": uniform / nf4})
print(f"a {size} × {size} matrix of N(0, 1) weights")
course.table(error_rows, digits=4)

# %% [markdown]
# **What these numbers say:** NF4's error is below the uniform code's at every block size (the last column is
# above 1), and larger blocks cost accuracy for both: a block's absmax is a larger multiple of σ the more weights
# it holds, so most weights use fewer of the levels.
#
# ## 3. Double quantisation
# Every block of 64 stores a float32 absmax: $32/64 = 0.5$ bit per weight on top of the 4. QLoRA quantises the
# scales too: subtract their mean (they are all positive and alike), store each in **8 bits** with a dynamic code,
# and keep one float32 scale per 256 blocks (and the one mean):
#
# $$4 + \frac{32}{64} = 4.5 \qquad\longrightarrow\qquad 4 + \frac{8}{64} + \frac{32}{64 \cdot 256} \approx 4.127
# \text{ bits per weight.}$$

# %%
plain = quantize_nf4(big, blocksize=64)
double = quantize_nf4(big, blocksize=64, double_quant=True)
scale_error = np.abs(double.absmax - plain.absmax) / plain.absmax
same_code = np.mean(double.packed == plain.packed)  # the 4-bit codes, two a byte
print(f"{big.shape} weights: {plain.bits_per_parameter:.4f} bits per weight, "
      f"{double.bits_per_parameter:.4f} with double quantisation")
print(f"scales recovered from 8 bits: largest relative error {scale_error.max():.2%}, mean {scale_error.mean():.3%}")
print(f"mean |w − ŵ|: {np.abs(dequantize_nf4(plain) - big).mean():.5f} plain, "
      f"{np.abs(dequantize_nf4(double) - big).mean():.5f} double-quantised; {same_code:.1%} of the code bytes "
      "are the same (only the scale a block is multiplied by changes)")

# %% [markdown]
# **What these numbers say:** double quantisation saves about 0.37 bit per weight (0.5 − 0.127; the measured bits
# include the one float32 mean, which is why the second number is not exactly 4.127 on a small matrix), and costs
# almost nothing: the scales come back within about 1% (the largest error printed, and the mean a fraction of
# it), so the dequantised weights barely change (the mean errors printed last).
#
# ## 4. The bytes of W0, and of a training step
# The stored bytes of a few matrices: float32 is 4 bytes a weight; NF4 is half a byte plus the scales.

# %%
byte_rows = []
for shape in ((64, 64), (256, 64), (1024, 1024)):
    w = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    byte_rows.append({"W0 shape": f"{shape[0]} × {shape[1]}", "float32 bytes": f"{w.nbytes:,}",
                      "NF4 bytes": f"{quantize_nf4(w).nbytes:,}",
                      "NF4 + double quant bytes": f"{quantize_nf4(w, 64, True).nbytes:,}",
                      "float32 / NF4+dq": w.nbytes / quantize_nf4(w, 64, True).nbytes})
course.table(byte_rows, digits=2)

# %% [markdown]
# **What these numbers say:** 8 × fewer bits per weight than float32 is a 7.75 × smaller matrix after the scales
# (32 / 4.127); the smallest matrix pays a little more for its one float32 mean. At the scale QLoRA was made for,
# a 65-billion-parameter model, that is the difference between 260 GB and 34 GB of frozen weights (65e9 × 4 bytes
# against 65e9 × 4.127 / 8).
#
# Now a whole model. `quantize_model` replaces every Linear but the head by a frozen `Linear4bit`; embeddings, layer
# norms and biases stay float32 (a small share of a large transformer, a large one of ours). The bytes a training
# step keeps resident, with AdamW's two moments per trainable number (the `qlora` method is exactly
# `quantize_model` then `apply_lora`):

# %%
memory_rows = []
for method in ("full", "lora", "qlora"):
    model = get_method(method).prepare(ml.pretrained("skills"), {} if method == "full" else {"r": 4}, seed=0)
    row = resident_bytes(model)
    memory_rows.append({"method": method, "trainable": f"{row['trainable']:,}",
                        "weights (bytes)": f"{row['weights']:,}", "gradients": f"{row['grads']:,}",
                        "AdamW state": f"{row['adamw']:,}", "total": f"{row['total']:,}"})
    if method == "qlora":
        print("qlora stores:", stored_bytes(model), "(float32 parameters, NF4 codes and scales)")
course.table(memory_rows)

# %% [markdown]
# **What these numbers say:** LoRA removes the gradients and optimizer state of the frozen weights; QLoRA also
# shrinks the frozen weights themselves. On this 110,720-parameter model the float32 embeddings and head are a
# large part of what remains; on the README's larger benchmark models (`minilora quant-report`) QLoRA's resident
# bytes are under a fifth of LoRA's (bench-small). What this table leaves out is what lives *during* a step: the
# activations, and one dequantised float32 weight at a time — `Linear4bit` dequantises $\hat W_0$ for its matmul
# and drops it, in the forward and again in the backward.
#
# ## 5. QLoRA against LoRA
# The same LoRA (r = 4 on `q_proj, v_proj, fc_in, fc_out`), the same seed, steps and learning rate, once on the
# float32 base and once on the NF4 base, learning reverse-shift (`Tabz=acb.`):

# %%
task = get_task("reverse-shift", n_eval=course.fast_or_full(50, 500))
steps = course.fast_or_full(30, 400)
config = TrainConfig(steps=steps, batch_size=64, lr=1e-2, warmup_steps=max(1, steps // 20), weight_decay=0.0,
                     eval_every=0)
runs = {}
for method in ("lora", "qlora"):
    model = get_method(method).prepare(ml.pretrained("skills"), {"r": 4}, seed=0)
    runs[method] = (model, train(model, task, config))
qlora_model = runs["qlora"][0]
print(f"{steps} steps at lr 1e-2; base weight of q_proj: {type(qlora_model.blocks[0].attn.q_proj.base).__name__}")
for method, (model, result) in runs.items():
    step_ms = 1e3 * np.median([h["seconds"] for h in result.history])
    print(f"{method:6s} accuracy {result.final_metrics['accuracy']:.3f}   final loss "
          f"{np.mean([h['loss'] for h in result.history[-10:]]):.4f}   median step {step_ms:.1f} ms")

# %%
course.show(course.loss_figure([("LoRA, float32 base", runs["lora"][1].history, "C1"),
                                ("QLoRA, NF4 base", runs["qlora"][1].history, "C0")], "The same LoRA on two bases"))
gap = abs(runs["lora"][1].final_metrics["accuracy"] - runs["qlora"][1].final_metrics["accuracy"])
print(f"|accuracy(LoRA) − accuracy(QLoRA)| = {gap:.3f} after {steps} steps")

# %% [markdown]
# **What the figure says:** the two curves lie almost on top of each other from the first step: the 4-bit
# rounding of the base changes the starting loss very little, and the adapter learns around the quantisation error
# as well as around W0. One seed proves little; the family comparison (three seeds, the lr chosen on validation,
# three tasks) has QLoRA and LoRA side by side at r = 4:

# %%
family = json.loads((FIGURES / "lora-family.json").read_text())
pairs = {}
for row in family["rows"]:
    if row["kind"] == "method" and row["arm"] in ("lora", "qlora") and not row["diverged"]:
        pairs.setdefault(row["task"], {})[row["arm"]] = row
shipped = []
for task_name, arms in pairs.items():
    lora_t, qlora_t = arms["lora"]["test"], arms["qlora"]["test"]
    shipped.append({"task": task_name, "metric": arms["lora"]["metric"],
                    "LoRA r = 4 (mean ± std)": f"{lora_t['mean']:.3f} ± {lora_t['std']:.3f}",
                    "QLoRA r = 4 (mean ± std)": f"{qlora_t['mean']:.3f} ± {qlora_t['std']:.3f}",
                    "|difference| / larger std": abs(qlora_t["mean"] - lora_t["mean"]) / max(lora_t["std"],
                                                                                          qlora_t["std"])})
course.table(shipped, digits=2)
within = sum(r["|difference| / larger std"] <= 1 for r in shipped)
print(f"QLoRA is within one standard deviation of LoRA on {within} of {len(shipped)} tasks "
      f"({family['settings']['steps']} steps, seeds {family['settings']['seeds']})")

# %% [markdown]
# **What these numbers say:** on this model the 4-bit base costs nothing the experiment can measure — the printed
# line counts the tasks where the difference is within the seeds' spread. The QLoRA paper finds the same at scale:
# NF4 with double quantisation matches 16-bit LoRA fine-tuning on its benchmarks.
#
# ## 6. The merge pitfall
# A LoRA adapter is merged for free inference: $W = W_0 + \frac{\alpha}{r}BA$ (notebook 03). On a 4-bit base that
# $W$ is not a 4-bit matrix: storing it again means re-quantising it, and rounding moves every weight by up to half
# a code gap times its block's absmax — a change that is not small next to the update itself. `merge_lora` refuses,
# in one line:

# %%
try:
    merge_lora(copy.deepcopy(qlora_model))
except ValueError as err:
    print("ValueError:", err)

# %% [markdown]
# `merge_and_requantize` does it anyway, on purpose, and reports how far each effective weight moved. Compare that
# with how far the adapter moved the weights in the first place, $|\frac{\alpha}{r}BA|$, and with the accuracy:

# %%
update = np.concatenate([np.abs(layer.delta_weight()).reshape(-1) for _, layer in lora_layers(qlora_model)])
merged_model = copy.deepcopy(qlora_model)
changes = merge_and_requantize(merged_model)
moved = np.array([c["mean_abs_change"] for c in changes.values()])
before = task.evaluate(qlora_model)["accuracy"]
after = task.evaluate(merged_model)["accuracy"]
print(f"{len(changes)} layers merged and re-quantised; now {len(lora_layers(merged_model))} LoRA layers left")
print(f"mean |ΔW| of the adapter {update.mean():.5f};  mean |W' − W| of the re-quantisation {moved.mean():.5f} "
      f"({moved.mean() / update.mean():.2f} × the update);  largest "
      f"{max(c['max_abs_change'] for c in changes.values()):.4f}")
print(f"accuracy: {before:.3f} unmerged → {after:.3f} merged and re-quantised")

# %% [markdown]
# **What these numbers say:** re-quantising moves the weights by a sizeable fraction of the update the adapter
# learned (the ratio printed above: noise added on top of the training, not a small rounding of it); the accuracy
# line shows what that cost this adapter. QLoRA's answer is to keep the adapter **unmerged** (the 4-bit base plus a
# small float adapter, a little extra latency), or to merge into a **dequantised float32 copy** of the base — exact,
# at about 7.75× the bytes of the frozen weights (section 4's table):

# %%
float_model = copy.deepcopy(qlora_model)
for _, layer in lora_layers(float_model):
    base = layer.base                                       # Linear4bit (d, k)
    dense = nn.Linear(base.in_features, base.out_features)
    dense.weight.data = dequantize_nf4(base.quant)          # Ŵ0 in float32 (d, k)
    dense.bias = base.bias
    layer.base = dense.requires_grad_(False)
merge_lora(float_model)
ids = np.array([SKILL_TOKENIZER.encode("Tminilora=")])
with ml.no_grad():
    unmerged = qlora_model.eval()(ids)[0].numpy()
    merged = float_model.eval()(ids)[0].numpy()
print(f"max |merged in float32 − unmerged QLoRA| = {np.abs(merged - unmerged).max():.1e};  stored bytes "
      f"{stored_bytes(float_model)['total']:,} against {stored_bytes(qlora_model)['total']:,} (4-bit base + adapter)")
print(SKILL_TOKENIZER.decode(float_model.generate(ids, 9, temperature=0)[0]))

# %% [markdown]
# **What these numbers say:** merged in float32, the model computes what the unmerged QLoRA model computes (to
# float32 rounding), at the cost of storing the frozen weights in full precision again.
#
# ## Exercises
# Each exercise cell raises `NotImplementedError` until you fill it in; the check cell after it prints
# `correct: ...` or `not yet: ...`, and the cell after that **runs** what you predicted, so you can compare.
# Solutions: `tutorials/solutions/10_qlora.py` (try first!).
#
# **Exercise 1 — predict, then run: the bytes of W0 in 4 bits.** Write `nf4_bytes(shape, blocksize,
# double_quant)`: the bytes `quantize_nf4(w, blocksize, double_quant).nbytes` stores for an array of that shape,
# without quantising anything. Section 2 says what is stored (two codes a byte, one float32 absmax per block, the
# last block possibly short); section 3 says what double quantisation stores instead of the float32 scales (one
# 8-bit code per block, one float32 scale per 256 blocks, and one float32 mean). Mind the shapes that do not
# divide evenly.

# %%
def nf4_bytes(shape: tuple, blocksize: int = 64, double_quant: bool = False) -> int:
    raise NotImplementedError  # your prediction, from the shape alone


# %%
check("nf4_bytes", nf4_bytes)

# %%
for shape, double_quant in (((3, 5), False), ((3, 5), True), ((100, 1000), True)):
    stored = quantize_nf4(np.ones(shape, np.float32), 64, double_quant).nbytes
    print(f"{str(shape):12s} double_quant={double_quant!s:5s}  stored {stored:>7,} bytes   "
          f"you predicted {course.your(nf4_bytes, shape, 64, double_quant)}")

# %% [markdown]
# **Exercise 2 — blockwise absmax by hand.** Write `nf4_roundtrip(w, blocksize)`: the float32 array ŵ (w's shape)
# that NF4 quantisation with that block size stores, using only NumPy and `NF4_CODE` — not `quantize_nf4`.
# Blocks run over the flattened array in row-major order, and the last block may be shorter.

# %%
def nf4_roundtrip(w: np.ndarray, blocksize: int = 64) -> np.ndarray:
    raise NotImplementedError  # your code


# %%
check("nf4_roundtrip", nf4_roundtrip)

# %%
w_fc = skills.blocks[1].mlp.fc_in.weight.numpy()       # (256, 64)
mine = course.your(nf4_roundtrip, w_fc, 64)
if isinstance(mine, np.ndarray):
    print(f"fc_in {w_fc.shape}: max |yours − library| = {np.abs(mine - dequantize_nf4(quantize_nf4(w_fc))).max():.2e},"
          f" relative error ‖W − Ŵ‖ / ‖W‖ = {np.linalg.norm(w_fc - mine) / np.linalg.norm(w_fc):.4f}")
else:
    print("nf4_roundtrip:", mine)

# %% [markdown]
# **Exercise 3 — predict, then run: the worst rounding of a merge.** When `merge_and_requantize` stores
# $W = \hat W_0 + \Delta W$ in NF4 again, each weight goes to the nearest code value of its block. Predict the
# largest change $|W'_i - W_i|$ that can happen in a block whose absmax is $a$: write `max_rounding_error(absmax)`
# (a number or a NumPy array of absmaxes in, the bound for each out). Then run the cell after the check: it
# re-quantises the merged weights of section 6 and measures the largest change per block, divided by its absmax.

# %%
def max_rounding_error(absmax):
    raise NotImplementedError  # your prediction


# %%
check("max_rounding_error", max_rounding_error)

# %%
worst = 0.0
for _, layer in lora_layers(qlora_model):
    effective = np.asarray(layer.merged_weight(), dtype=np.float32)       # (d, k)  Ŵ0 + ΔW
    q = quantize_nf4(effective, blocksize=64)
    err = np.abs(dequantize_nf4(q) - effective).reshape(-1, 64)            # (blocks, 64)
    worst = max(worst, float((err.max(axis=1) / q.absmax).max()))
print(f"largest |W' − W| / absmax over every block of every merged layer: {worst:.4f};  "
      f"you predicted at most {course.your(max_rounding_error, 1.0)} for absmax = 1")

# %% [markdown]
# ## Recap
# - NF4's 16 values are $\Phi^{-1}(p_i)$ at evenly spaced probabilities (8 above zero, 7 below, an exact 0),
#   divided by the largest: equally likely bins for normal weights, so each code carries nearly 4 bits.
# - Weights are scaled per block of 64 by their absmax: an outlier spoils one block, not the matrix; the scales
#   cost 0.5 bit per weight, 0.127 after double quantisation (4.127 bits in all).
# - A frozen float32 W0 shrinks about 7.75×; with LoRA's small trainable part, QLoRA's resident training bytes are
#   dominated by whatever stays in float32.
# - Training on $\hat W_0$ learns as well as on $W_0$ here (and in the QLoRA paper); the base costs a dequantise per
#   matmul.
# - Merging into a 4-bit base re-rounds every weight by up to half a code gap × absmax: keep the adapter unmerged,
#   or merge into a float copy.
#
# Next: the other members of the family and how they compare, in [09 · the LoRA family](09_lora_family.ipynb).
#
# ## Questions
# 1. If the weights of a layer were uniformly distributed rather than normal, which of NF4 and the uniform 4-bit
#    code would waste fewer bits, and why?
# 2. Why does NF4 spend one of its 16 values on an exact zero rather than keeping the code symmetric (±8 values)?
# 3. Doubling the block size from 64 to 128 saves how many bits per weight without double quantisation, and why
#    does it make the error larger?
# 4. A QLoRA adapter was trained on $\hat W_0$, not on $W_0$. What happens if you load it onto the float32 base
#    model instead, and when would the difference matter?
# 5. Why is the gradient of the loss with respect to the 4-bit weights never needed in QLoRA, and which gradient
#    does flow through a `Linear4bit` layer?
#
# <details><summary>Answers to check yourself against</summary>
#
# 1. The uniform code: for uniform weights its evenly spaced values are the equal-probability bins, while NF4's
#    would crowd near zero where there is no extra mass.
# 2. Zero is common (padding, pruned weights, many near-zero weights in a block) and should come back as exactly 0;
#    a symmetric code of 16 values has no zero.
# 3. 32/64 − 32/128 = 0.25 bit; the absmax of 128 normal weights is a larger multiple of σ than that of 64, so the
#    typical weight uses fewer of the 16 levels.
# 4. It computes a slightly different function — the adapter also learned to correct the quantisation error; it
#    matters when that error is large relative to the update (small models, large blocks).
# 5. W0 is frozen; only $\partial L/\partial x = g\,\hat W_0$ flows back through the layer (to earlier layers and
#    the adapters), computed from a freshly dequantised $\hat W_0$.
#
# </details>
