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
# # 09 · The LoRA family
#
# LoRA ([Hu et al. 2021, arXiv 2106.09685](https://arxiv.org/abs/2106.09685)) freezes $W_0$ and learns
# $\Delta W = \frac{\alpha}{r} B A$. Its successors keep that frame and change one thing each: what the update may
# change (DoRA), where it starts (PiSSA), how fast each factor learns (LoRA+), what is shared between layers (VeRA).
# One model may also carry several adapters and mix them. This notebook takes each apart on the tiny skills GPT,
# then asks what fine-tuning costs the model in what it already knew.
#
# **What you will learn**
# - DoRA: a weight as magnitude × direction, and what LoRA and DoRA change of each, drawn per output feature;
# - PiSSA: LoRA started from $W_0$'s top singular directions, the base replaced by the rest;
# - LoRA+: $B$ at a higher learning rate than $A$, and what that does to the best learning rate;
# - VeRA: one frozen random pair $A, B$ shared by every layer, only two vectors per layer trained;
# - several adapters on one model, and the three ways to merge them (`cat`, `svd`, `linear`);
# - learning against forgetting: what a fine-tuned model keeps of its pretraining skills;
# - a capstone: LoRA, a random subspace and VeRA at one trainable budget, with a conclusion you write.
#
# **Read first:** [03 · LoRA's mathematics](03_lora_math.ipynb), [04 · full fine-tuning and LoRA side by
# side](04_lora_side_by_side.ipynb), and for the capstone's subspace method [07 · intrinsic
# dimension](07_intrinsic_dimension.ipynb). Next: [10 · QLoRA](10_qlora.ipynb). The code is in
# `minilora/lora/variants/` (one file per method), `minilora/lora/multi.py` (several adapters) and
# `minilora/experiments/family.py` (the `minilora lora-family` comparison, whose shipped results this notebook reads).
#
# Runs in about 3 minutes with `OMP_NUM_THREADS=1` (start Jupyter as `OMP_NUM_THREADS=1 jupyter lab`: one BLAS
# thread, as the timings assume), and in well under a minute with `MINILORA_FAST=1` (30-step runs that exercise
# every cell; their numbers are not findings).

# %%
import json
from pathlib import Path

import course
import numpy as np
from checks import check, verdict
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter, NullLocator

import minilora as ml
from minilora.data import get_task
from minilora.experiments.adaptation import retained_accuracy
from minilora.experiments.family import matched_size, model_shape
from minilora.experiments.methods import get_method
from minilora.lora import (
    LoraConfig,
    add_adapter,
    add_weighted_adapter,
    apply_lora,
    disable_adapter,
    lora_layers,
    set_adapter,
    vera_layers,
)
from minilora.lora.variants.loraplus import loraplus_param_groups
from minilora.train import TrainConfig, train

FIGURES = Path("..") / "figures"  # the shipped results of `minilora lora-family`
STEPS = course.fast_or_full(30, 400)  # the family experiment's 400 steps of batch 64
N_EVAL = course.fast_or_full(50, 500)
task = get_task("reverse-shift", n_eval=N_EVAL)  # Tabz=acb.: reverse, then shift by one letter
runs = {}  # (method, lr, settings) → (model, TrainResult): sections reuse each other's runs


def finetune(method, lr, settings=None, steps=STEPS):
    """The pretrained skills model prepared by ``method`` (the registry) and trained on reverse-shift: AdamW at peak
    ``lr``, 5% warm-up then cosine, batch 64, seed 0 — the family experiment's recipe. Cached by its arguments."""
    settings = {} if method == "full" else {"r": 4, **(settings or {})}
    key = (method, lr, json.dumps(settings, sort_keys=True), steps)
    if key not in runs:
        model = get_method(method).prepare(ml.pretrained("skills"), settings, seed=0)
        config = TrainConfig(steps=steps, batch_size=64, lr=lr, warmup_steps=max(1, steps // 20), weight_decay=0.0,
                             eval_every=0)
        runs[key] = (model, train(model, task, config))
    return runs[key]


# %% [markdown]
# ## 1. DoRA: magnitude and direction
# Each row $w_i$ of a weight (the weights into output feature $i$) is a length times a unit direction,
# $w_i = \lVert w_i\rVert \cdot w_i / \lVert w_i\rVert$. DoRA ([Liu et al. 2024, arXiv
# 2402.09353](https://arxiv.org/abs/2402.09353)) trains the two separately: LoRA changes the direction, and a
# vector $m$ (one number per output feature) sets the length,
#
# $$W' = m \odot \frac{W_0 + \frac{\alpha}{r} B A}{\lVert W_0 + \frac{\alpha}{r} B A \rVert_{\text{row}}}, \qquad
# m \text{ starts at } \lVert W_0\rVert_{\text{row}},$$
#
# so at step 0 $W' = W_0$. The cost is $d$ more numbers per adapted $d \times k$ matrix:

# %%
dora = get_method("dora").prepare(ml.pretrained("skills"), {"r": 4}, seed=0)
fc_in = dora.blocks[1].mlp.fc_in                      # a DoraLinear around the 256 × 64 W0
w0 = fc_in.base.weight.numpy()
print("W0", w0.shape, " A", fc_in.lora_A.shape, " B", fc_in.lora_B.shape, " m", fc_in.lora_magnitude_vector.shape)
print("m at init equals the row norms of W0:", np.allclose(fc_in.lora_magnitude_vector.numpy(),
                                                           np.linalg.norm(w0, axis=1)))
print("trainable: LoRA", get_method("lora").prepare(ml.pretrained("skills"), {"r": 4}).num_parameters(True),
      " DoRA", dora.num_parameters(True), "(+ Σ d over the 8 adapted matrices)")

# %% [markdown]
# DoRA's paper observes that full fine-tuning changes a row's length and its direction fairly independently, while
# LoRA changes them together. Train LoRA and DoRA the same way (r = 4, lr 1e-2) and look, row by row of one
# weight, at how far its direction turned ($1 - \cos$ between the row before and after) against how much its length
# changed ($\lVert w_i'\rVert / \lVert w_i\rVert - 1$):

# %%
LAYER = "blocks.1.mlp.fc_in"
row_changes = {}
for method in ("lora", "dora"):
    model, result = finetune(method, 1e-2)
    layer = dict(model.named_modules())[LAYER]
    w_after = np.asarray(layer.merged_weight(), dtype=np.float64)   # (256, 64): W0 + s·BA, or DoRA's W'
    n_after, n_before = np.linalg.norm(w_after, axis=1), np.linalg.norm(w0, axis=1)
    turn = 1 - (w_after * w0).sum(axis=1) / (n_after * n_before)    # (256,) direction change per row
    stretch = n_after / n_before - 1                                 # (256,) relative length change per row
    row_changes[method] = (turn, stretch)
    print(f"{method}: accuracy {result.final_metrics['accuracy']:.3f};  rows of {LAYER}: mean 1 − cos "
          f"{turn.mean():.4f}, mean length change {stretch.mean():+.3f};  correlation "
          f"{np.corrcoef(turn, stretch)[0, 1]:+.2f}")

# %%
fig = Figure(figsize=(7, 4), layout="constrained")
ax = fig.add_subplot()
for method, color in (("lora", "C1"), ("dora", "C0")):
    turn, stretch = row_changes[method]
    ax.scatter(turn, stretch, s=10, alpha=0.6, color=color, label=f"{'DoRA' if method == 'dora' else 'LoRA'}"
               f" (correlation {np.corrcoef(turn, stretch)[0, 1]:+.2f})")
ax.axhline(0, color="0.6", linewidth=0.8)
ax.set_xlabel("direction change of a row, 1 − cos")
ax.set_ylabel("length change of a row, ‖w′‖/‖w‖ − 1")
ax.legend(loc="upper left")
course.show(fig)
(lora_turn, lora_stretch), (dora_turn, dora_stretch) = row_changes["lora"], row_changes["dora"]
c_lora, c_dora = np.corrcoef(lora_turn, lora_stretch)[0, 1], np.corrcoef(dora_turn, dora_stretch)[0, 1]
print(f"rows that got shorter: LoRA {np.mean(lora_stretch < 0):.0%}, DoRA {np.mean(dora_stretch < 0):.0%}")
print("LoRA's length change follows its direction change more closely than DoRA's" if c_lora > c_dora else
      "in this run DoRA's length change follows its direction change as closely as LoRA's")

# %% [markdown]
# **What the figure says:** each dot is one of the 256 rows. For LoRA the printed correlation tells how tightly a
# row's growth is tied to its turn: $\lVert w_0 + \delta\rVert^2 = \lVert w_0\rVert^2 + 2 w_0 \cdot \delta +
# \lVert\delta\rVert^2$, and an update $\delta$ that turns a row a lot also has a large $\lVert\delta\rVert^2$, so
# it lengthens it unless it also points against the row — LoRA has no separate control of the length. DoRA's $m$
# sets the length on its own; compare its correlation, and the share of rows it made *shorter* (printed under the
# figure), with LoRA's.
#
# ## 2. PiSSA: start from the principal directions
# LoRA starts at $B = 0$, a random $A$: its first steps go in random directions. PiSSA ([Meng et al. 2024, arXiv
# 2404.02948](https://arxiv.org/abs/2404.02948)) starts the adapter at the **top r singular directions of $W_0$**
# and freezes the rest:
#
# $$W_0 = U S V^\top, \quad B = U_r \sqrt{S_r / s}, \quad A = \sqrt{S_r / s}\, V_r^\top, \quad
# W_{\text{res}} = W_0 - s\, B A = \sum_{i > r} \sigma_i u_i v_i^\top \quad (s = \alpha / r),$$
#
# and the base weight is replaced by $W_{\text{res}}$, so $W_{\text{res}} + sBA = W_0$ at step 0:

# %%
pissa = get_method("pissa").prepare(ml.pretrained("skills"), {"r": 4}, seed=0)
base = ml.pretrained("skills")
q_pissa = pissa.blocks[0].attn.q_proj
w_q = base.blocks[0].attn.q_proj.weight.numpy()                   # (64, 64) the original W0
w_res = q_pissa.base.weight.numpy()                               # (64, 64) what PiSSA keeps frozen
ids = task.sample_batch(np.random.default_rng(0), 4)[0]          # (4, T) token ids
with ml.no_grad():
    print("same outputs at step 0:", np.allclose(base.eval()(ids)[0].numpy(), pissa.eval()(ids)[0].numpy(), atol=1e-5))
sigma_w0 = np.linalg.svd(w_q, compute_uv=False)
sigma_res = np.linalg.svd(w_res, compute_uv=False)

fig = Figure(figsize=(7, 3.4), layout="constrained")
ax = fig.add_subplot()
ax.semilogy(np.arange(1, 65), sigma_w0, "k.-", label="W0 (pretrained W_q)")
ax.semilogy(np.arange(1, 65), sigma_res, "o", color="C0", markersize=3, label="W_res (PiSSA's frozen base, r = 4)")
ax.set_xlabel("index i of singular value")
ax.set_ylabel("σ_i")
ax.xaxis.set_major_locator(MaxNLocator(integer=True))
ax.legend(loc="lower left")
course.show(fig)
print("largest σ of W0:", np.round(sigma_w0[:6], 3), "\nlargest σ of W_res:", np.round(sigma_res[:6], 3))

# %% [markdown]
# **What the figure says:** the residual's spectrum is $W_0$'s with the first four values cut off ($W_{\text{res}}$'s
# largest is $W_0$'s fifth, and its last four are zero up to rounding: its rank is 64 − 4): the adapter holds the
# four strongest directions of the weight and trains them, the base keeps the rest frozen. Exercise 1 asks how much
# of $W_0$'s norm stays behind.
#
# A consequence: at step 0 both factors have gradients (LoRA's $A$ has none while $B = 0$, notebook 03), and the
# first steps act on the directions that matter most. Same lr, same batches, the first steps of training:

# %%
x, y = task.sample_batch(np.random.default_rng(1), 32)
for name, model in (("LoRA", get_method("lora").prepare(ml.pretrained("skills"), {"r": 4}, seed=0)), ("PiSSA", pissa)):
    model.train()
    _, loss = model(x, ml.tensor(y))
    loss.backward()
    first = lora_layers(model)[0][1]
    print(f"{name:6s} step 0: |∂L/∂A| = {np.linalg.norm(first.lora_A.grad):.3g}   |∂L/∂B| = "
          f"{np.linalg.norm(first.lora_B.grad):.3g}")
    model.zero_grad()

# %%
pissa_run = finetune("pissa", 1e-2)[1]
lora_run = finetune("lora", 1e-2)[1]
early = max(10, STEPS // 4)
fig = Figure(figsize=(7, 3.4), layout="constrained")
ax = fig.add_subplot()
for name, result, color in (("LoRA", lora_run, "C1"), ("PiSSA", pissa_run, "C0")):
    losses = [h["loss"] for h in result.history[:early]]
    ax.plot(np.arange(1, early + 1), losses, color=color, label=name)
ax.set_yscale("log")
ax.set_xlabel("step")
ax.set_ylabel("training loss")
ax.xaxis.set_major_locator(MaxNLocator(integer=True))
ax.legend(loc="upper right")
course.show(fig)
at = min(10, early) - 1
print(f"loss after {at + 1} steps: LoRA {lora_run.history[at]['loss']:.3f}, PiSSA {pissa_run.history[at]['loss']:.3f};"
      f"  accuracy after {STEPS} steps: LoRA {lora_run.final_metrics['accuracy']:.3f}, "
      f"PiSSA {pissa_run.final_metrics['accuracy']:.3f}")

# %% [markdown]
# **What the figure says:** compare the two curves over the first steps (the numbers printed under the figure):
# starting on $W_0$'s principal directions is PiSSA's claim to a faster start. Where they end is another matter —
# the family comparison (`figures/lora-family.json`: reverse-shift and sort in section 6's table, first names in the
# README) has PiSSA within 0.015 of LoRA on all three of its tasks after 400 steps.
#
# ## 3. LoRA+: two learning rates
# In $h = W_0 x + sBAx$, $A$ reads the $k$-dimensional input and $B$ writes the $d$-dimensional output. LoRA+
# ([Hayou et al. 2024, arXiv 2402.12354](https://arxiv.org/abs/2402.12354)) argues that one learning rate is not
# efficient for both as the width grows, and trains $B$ faster:
#
# $$\eta_B = \lambda\, \eta_A, \qquad \lambda = 16 \text{ suggested (PEFT's } \texttt{loraplus\_lr\_ratio}).$$
#
# In practice that is two AdamW parameter groups, built as PEFT's `create_loraplus_optimizer` builds them:

# %%
plus = get_method("lora-plus").prepare(ml.pretrained("skills"), {"r": 4, "loraplus_lr_ratio": 16.0}, seed=0)
for group in loraplus_param_groups(plus, lr=1e-3, loraplus_lr_ratio=16.0):
    shapes = sorted({tuple(p.shape) for p in group["params"]})
    print(f"lr {group['lr']:.0e}: {len(group['params'])} tensors, shapes {shapes}")

# %% [markdown]
# Is $\lambda = 16$ better? Train LoRA ($\lambda = 1$) and LoRA+ ($\lambda = 16$) over a ladder of $\eta_A$, and
# plot where each ends:

# %%
lrs = course.fast_or_full((3e-3, 1e-2), (1e-3, 3e-3, 1e-2, 3e-2))
LAST = max(3, STEPS // 10)  # the final loss: the mean of the last 10% of steps
final_loss = {}
for ratio in (1.0, 16.0):
    for lr in lrs:
        method, settings = ("lora", {}) if ratio == 1.0 else ("lora-plus", {"loraplus_lr_ratio": ratio})
        history = finetune(method, lr, settings)[1].history
        final_loss[ratio, lr] = float(np.mean([h["loss"] for h in history[-LAST:]]))

fig = Figure(figsize=(7, 3.4), layout="constrained")
ax = fig.add_subplot()
for ratio, color in ((1.0, "C1"), (16.0, "C2")):
    ax.loglog(lrs, [final_loss[ratio, lr] for lr in lrs], "o-", color=color,
              label="LoRA (λ = 1)" if ratio == 1.0 else f"LoRA+ (λ = {ratio:.0f})")
ax.set_xticks(lrs, [f"{lr:g}" for lr in lrs])
ax.xaxis.set_minor_locator(NullLocator())
ax.yaxis.set_minor_formatter(NullFormatter())
ax.set_xlabel("learning rate of A, η_A")
ax.set_ylabel(f"training loss, last {LAST} steps")
ax.legend(loc="upper center")
course.show(fig)
for ratio in (1.0, 16.0):
    best = min(lrs, key=lambda lr: final_loss[ratio, lr])
    print(f"λ = {ratio:4.0f}: lowest final loss {final_loss[ratio, best]:.4f} at η_A = {best:g}")

# %% [markdown]
# **What the figure says:** λ multiplies $B$'s step, so the LoRA+ curve is LoRA's moved towards smaller $\eta_A$:
# read off where each is lowest (printed) and how they compare at the smallest and the largest $\eta_A$. Whether the
# best point of one is below the best of the other is the fair comparison — each at its own learning rate, as in
# the family experiment, where LoRA+ at λ = 16 chose a lower lr than LoRA and did not beat it on this model.
#
# ## 4. VeRA: shared frozen matrices
# VeRA ([Kopiczko et al. 2024, arXiv 2310.11454](https://arxiv.org/abs/2310.11454)) draws **one** random pair
# $A$ ($r \times k_{\max}$) and $B$ ($d_{\max} \times r$) for the whole model, freezes it, and trains two vectors
# per adapted layer that scale it:
#
# $$h = W_0 x + b + \lambda_b \odot \big(B_d\, (\lambda_d \odot A_k x)\big), \qquad
# \text{trainable per layer: } r + d \ \text{(against LoRA's } r(d + k)).$$
#
# Because a unit of rank costs only one number per layer, VeRA affords a rank larger than the model is wide. At
# LoRA r = 4's budget on this model (7,168 numbers), the family experiment's sizing gives VeRA r = 784:

# %%
vera = get_method("vera").prepare(ml.pretrained("skills"), {"r": 784}, seed=0)
layers = vera_layers(vera)
first = layers[0][1]
print(f"{len(layers)} VeRA layers; shared A {first.vera_A.shape}, B {first.vera_B.shape} (frozen: "
      f"{not first.vera_A.requires_grad}); every layer holds the same arrays: "
      f"{all(layer.vera_A is first.vera_A and layer.vera_B is first.vera_B for _, layer in layers)}")
course.table([{"layer": name, "d × k": f"{layer.out_features} × {layer.in_features}",
               "LoRA r = 4: r(d + k)": 4 * (layer.out_features + layer.in_features),
               "VeRA r = 784: λ_d + λ_b = r + d": layer.vera_lambda_d.size + layer.vera_lambda_b.size}
              for name, layer in layers[:4]])
print(f"total trainable: VeRA {vera.num_parameters(True):,};  frozen shared matrices "
      f"{first.vera_A.size + first.vera_B.size:,} numbers, stored once")

# %% [markdown]
# **What these numbers say:** LoRA spends its numbers on matrices, VeRA on vectors: the 64 × 64 attention matrices
# cost VeRA more than LoRA (848 against 512), the MLP's larger ones less (1,040 and 848 against 1,280), and the
# totals come out equal by the choice of r. The frozen $A$ and $B$ are not free — they are 784 wide, wider than the
# model, so every VeRA forward multiplies by them: in the family experiment a VeRA step took several times a LoRA
# step (the capstone below measures it again).
#
# ## 5. Several adapters on one model
# An adapter is small, so one base model can carry many, with PEFT's verbs: `add_adapter`, `set_adapter` (one
# name, or several whose updates add up), `disable_adapter`, `add_weighted_adapter`. With the active set $\mathcal A$:
#
# $$y = x W_0^\top + b + \sum_{a \in \mathcal A} s_a\, x A_a^\top B_a^\top .$$
#
# Train one adapter on reverse-shift and a second one on subtraction (`D57-23=34.`), on the same base:

# %%
subtract = get_task("subtract", n_eval=N_EVAL)
config = LoraConfig(r=4, target_modules=("q_proj", "v_proj", "fc_in", "fc_out"), init_lora_weights="gaussian")
multi = apply_lora(ml.pretrained("skills"), config)              # the first adapter is "default"
add_adapter(multi, "subtract", config, seed=1)                    # frozen and inactive until set
two_steps = course.fast_or_full(30, 300)
budget = TrainConfig(steps=two_steps, batch_size=64, lr=1e-2, warmup_steps=max(1, two_steps // 20), weight_decay=0.0,
                     eval_every=0)
for name, skill in (("default", task), ("subtract", subtract)):
    set_adapter(multi, name)                                      # only this adapter's A, B train
    print(f"training {name!r}: {multi.num_parameters(True):,} trainable numbers")
    train(multi, skill, budget)

# %%
def accuracy_row(label):
    return {"adapters": label, "reverse-shift": task.evaluate(multi)["accuracy"],
            "subtract": subtract.evaluate(multi)["accuracy"]}


rows = []
with disable_adapter(multi):
    rows.append(accuracy_row("none (the base model)"))
for names, label in (("default", "reverse-shift adapter"), ("subtract", "subtract adapter"),
                     (["default", "subtract"], "both active (their updates add)")):
    set_adapter(multi, names)
    rows.append(accuracy_row(label))
course.table(rows)
alone, together = {"reverse-shift": rows[1], "subtract": rows[2]}, rows[3]
print("with both adapters on: " + ";  ".join(
    f"{skill} {together[skill]:.3f} ({'lower' if together[skill] < alone[skill][skill] else 'not lower'} than its "
    f"adapter alone, {alone[skill][skill]:.3f})" for skill in alone))

# %% [markdown]
# **What these numbers say:** the base model does neither task; each adapter raises its own task (how far depends
# on the training: the full run trains 300 steps each) and leaves the other near zero. Switched on together, their
# updates add in every layer; the line under the table compares each skill with both adapters on against its own
# adapter alone. Two adapters trained apart were never asked to work together.
#
# `add_weighted_adapter` makes one adapter out of several, per layer, with weights $w_i$ and
# $\Delta W_i = s_i B_i A_i$:
#
# - `cat`: stack the factors, $A' = [w_1 s_1 A_1; w_2 s_2 A_2]$, $B' = [B_1, B_2]$, rank $r_1 + r_2$:
#   $B'A' = \sum_i w_i \Delta W_i$ exactly;
# - `svd`: the best rank-$k$ approximation of $\sum_i w_i \Delta W_i$ (keeps the rank, loses the rest);
# - `linear`: $A' = \sum_i \sqrt{w_i s_i} A_i$, $B' = \sum_i \sqrt{w_i s_i} B_i$ — which adds cross terms
#   $B_i A_j$ that belong to neither adapter.
#
# How far each lands from the exact weighted sum on one layer, and what the mixed adapter does on both tasks:

# %%
name0, layer0 = lora_layers(multi)[0]


def delta(adapter):
    """ΔW = s·B A of one adapter of layer0, (d, k)."""
    a = layer0.adapter(adapter)
    return a.scaling * a.lora_B.numpy().astype(np.float64) @ a.lora_A.numpy()


weights = [0.5, 0.5]
target = weights[0] * delta("default") + weights[1] * delta("subtract")
mix_rows = []
for kind in ("cat", "svd", "linear"):
    add_weighted_adapter(multi, ["default", "subtract"], weights, f"mix-{kind}", combination_type=kind)
    set_adapter(multi, f"mix-{kind}")
    error = np.linalg.norm(delta(f"mix-{kind}") - target) / np.linalg.norm(target)
    mix_rows.append({"combination": kind, "rank": layer0.adapter(f"mix-{kind}").lora_A.shape[0],
                     f"‖ΔW − target‖ / ‖target‖ on {name0}": error, **{k: v for k, v in accuracy_row("").items()
                                                                         if k != "adapters"}})
course.table(mix_rows)

# %% [markdown]
# **What these numbers say:** `cat` is exact at twice the rank (its error is rounding), `svd` keeps the rank and
# loses what the two updates do not share, and `linear`'s cross terms put it furthest from the weighted sum.
# Halving each update halves each skill's signal too, so even the exact mix need not do either task well: a
# weighted merge of adapters is arithmetic on weights, not a guarantee about skills. Exercise 2 predicts the `svd`
# error from the singular values.
#
# ## 6. Learning against forgetting
# Biderman et al. ([2024, arXiv 2405.09673](https://arxiv.org/abs/2405.09673)) titled their study "LoRA learns less
# and forgets less". The family experiment (`minilora lora-family`) scores every fine-tuned skills model also on the
# four pretraining skills (copy, reverse, shift, add; 0.999 before fine-tuning): what it **kept**. Its shipped
# results, three seeds at each method's validation-chosen lr:

# %%
family = json.loads((FIGURES / "lora-family.json").read_text())
shipped = [r for r in family["rows"] if r["kind"] == "method" and r["task"] in ("reverse-shift", "sort")
           and not r["diverged"] and r["arm"] in ("full", "lora", "dora", "pissa", "lora-plus", "vera", "qlora")]
course.table([{"task": r["task"], "method": r["arm"], "trainable": f"{r['trainable_params']:,}", "lr": f"{r['lr']:g}",
               "new skill (test)": f"{r['test']['mean']:.3f} ± {r['test']['std']:.3f}",
               "kept of pretraining": f"{r['retained']['mean']:.3f} ± {r['retained']['std']:.3f}"} for r in shipped])
kept = [r["retained"]["mean"] for r in shipped]
print(f"kept of pretraining, over these {len(shipped)} rows: {min(kept):.3f} to {max(kept):.3f} "
      f"(before fine-tuning: {family['none']['reverse-shift']['retained']['mean']:.3f})")

# %% [markdown]
# **What these numbers say:** at the learning rates that learn the new skill best, every method forgets nearly
# all of the four old ones (the printed range against the 0.999 before). With 110,720 weights, 400 steps on one
# skill's format leave little room. Does a LoRA run forget *less than a full run that learned as much*? That needs
# runs along the learning rate. The LoRA runs of section 3 are already done; add full fine-tuning at three lrs (one
# under `MINILORA_FAST=1`):

# %%
n_kept = course.fast_or_full(20, 200)
points = {"full": [], "lora": []}
for method, method_lrs in (("full", course.fast_or_full((1e-3,), (3e-4, 1e-3, 3e-3))), ("lora", lrs)):
    for lr in method_lrs:
        model, result = finetune(method, lr)
        kept_now = retained_accuracy(model, n_kept)
        points[method].append((lr, float(np.mean(list(kept_now.values()))), result.final_metrics["accuracy"]))

fig = Figure(figsize=(7, 4), layout="constrained")
ax = fig.add_subplot()
for method, color, label, dy in (("full", "k", "full fine-tuning", 6), ("lora", "C1", "LoRA r = 4", -13)):
    _, kept_values, learned = zip(*points[method])
    ax.plot(kept_values, learned, "o-", color=color, label=label)
    for lr, k, a in points[method]:
        ax.annotate(f"lr {lr:g}", (k, a), textcoords="offset points", xytext=(-12, dy), fontsize=8, color=color)
all_kept = [k for m in points for _, k, _ in points[m]]
low, high = min(all_kept) / 1.6, min(1.0, max(all_kept) * 1.6)
ax.set_xscale("log")
ax.set_xticks([t for t in (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0) if low <= t <= high])
ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
ax.xaxis.set_minor_formatter(NullFormatter())
ax.set_xlim(low, high)
ax.set_xlabel("kept: mean accuracy on the 4 pretraining skills (log scale)")
ax.set_ylabel("learned: reverse-shift accuracy")
ax.margins(y=0.2)
ax.legend(loc="lower left")
course.show(fig)
for method in points:
    print(method, "  ".join(f"lr {lr:g}: learned {a:.3f}, kept {k:.3f}" for lr, k, a in points[method]))
level = min(max(a for _, _, a in points[m]) for m in points) - 0.03  # within 0.03 of what both methods reach
for method in points:
    k, lr = max((k, lr) for lr, k, a in points[method] if a >= level)
    print(f"{method}: of its runs that learned at least {level:.3f}, the one that kept most kept {k:.3f} (lr {lr:g})")

# %% [markdown]
# **What the figure says:** each line runs along the learning rate (the labels). Read it two ways: how much each
# method keeps as its lr falls, and — at the same height (equal learning) — which line lies further right; the last
# two printed lines compare the two methods at the accuracy both reach. One seed and one task: the README's figure
# `lora-family-forgetting.png` has three tasks and all the methods, and there, on this tiny model, what spares
# pretraining is a small step rather than a low rank.
#
# ## Exercises
# Each exercise cell raises `NotImplementedError` until you fill it in; the check cell after it prints
# `correct: ...` or `not yet: ...`, and the cell after that runs what you predicted, on this notebook's models.
# Solutions: `tutorials/solutions/09_lora_family.py` (try first!).
#
# **Exercise 1 — predict, then run: what PiSSA leaves in the base.** Write `pissa_residual_fraction(W0, r)`: the
# ratio $\lVert W_{\text{res}}\rVert_F / \lVert W_0\rVert_F$ that PiSSA's init at rank $r$ leaves in the frozen base,
# computed from $W_0$ alone (NumPy; no minilora). Predict first: is it closer to 0 or to 1 for the pretrained
# `q_proj` at r = 4, and why?

# %%
def pissa_residual_fraction(W0: np.ndarray, r: int) -> float:
    raise NotImplementedError  # your code


# %%
check("pissa_residual_fraction", pissa_residual_fraction)

# %%
for r in (4, 16):
    model = get_method("pissa").prepare(ml.pretrained("skills"), {"r": r}, seed=0)
    measured = np.linalg.norm(model.blocks[0].attn.q_proj.base.weight.numpy()) / np.linalg.norm(w_q)
    print(f"r = {r:2d}: ‖W_res‖/‖W0‖ of q_proj measured {measured:.4f};  "
          f"you predicted {course.your(pissa_residual_fraction, w_q, r)}")

# %% [markdown]
# **Exercise 2 — predict, then run: the error of an SVD merge.** Write `svd_merge_error(deltas, weights, k)`: for
# updates $\Delta W_i$ (a list of $d \times k$ arrays) and weights $w_i$, the relative error
# $\lVert \Delta W - \Delta W_k\rVert_F / \lVert \Delta W\rVert_F$ of the `svd` merge, where
# $\Delta W = \sum_i w_i \Delta W_i$ and $\Delta W_k$ is what `add_weighted_adapter(..., combination_type="svd",
# svd_rank=k)` stores. Then run the cell after the check: it merges the two adapters of section 5 at several ranks.

# %%
def svd_merge_error(deltas: list, weights: list, k: int) -> float:
    raise NotImplementedError  # your code


# %%
check("svd_merge_error", svd_merge_error)

# %%
for k in (2, 4, 8):
    add_weighted_adapter(multi, ["default", "subtract"], weights, f"svd-{k}", combination_type="svd", svd_rank=k)
    measured = np.linalg.norm(delta(f"svd-{k}") - target) / np.linalg.norm(target)
    print(f"svd_rank = {k}: measured error {measured:.4f};  you predicted "
          f"{course.your(svd_merge_error, [delta('default'), delta('subtract')], weights, k)}")

# %% [markdown]
# ## Capstone: three ways to spend 7,168 numbers
# LoRA spends a budget of trainable numbers on low-rank matrices in chosen layers; VeRA on vectors that scale shared
# random matrices; the subspace method of [notebook 07](07_intrinsic_dimension.ipynb),
# $\theta = \theta_0 + P z$, on $d$ coordinates of a random direction through **all** the weights at once. At an
# equal budget, which spends it best? Take the names model (a character-level model of first names, scored in
# bits per character: lower is better) and LoRA r = 4's budget on its default targets.
#
# **Exercise 3 — equal budgets.** Write `equal_budget_sizes(model, budget)`: a dict `{"lora": r, "vera": r,
# "subspace": d}` of the sizes whose trainable counts on `model` come closest to `budget` — LoRA and VeRA on
# `q_proj, v_proj, fc_in, fc_out` of every block, the subspace over every weight. Read the shapes from the model
# (the check tries models of other widths and depths, and budgets that do not divide evenly).

# %%
def equal_budget_sizes(model, budget: int) -> dict:
    raise NotImplementedError  # your code


# %%
check("equal_budget_sizes", equal_budget_sizes)

# %% [markdown]
# The runs. Until your function passes its check, the sizes come from the family experiment's `matched_size`
# (read it after you have tried). Each method gets two learning rates (one under `MINILORA_FAST=1`), chosen on the
# validation names; the test names report:

# %%
names_task = get_task("first-names")
names_model = ml.pretrained("names")
budget_7168 = get_method("lora").prepare(ml.pretrained("names"), {"r": 4}).num_parameters(True)
if verdict("equal_budget_sizes", equal_budget_sizes)[0]:
    sizes = equal_budget_sizes(names_model, budget_7168)
else:
    shape = model_shape(names_model)
    sizes = {"lora": matched_size("lora", budget_7168, shape), "vera": matched_size("vera", budget_7168, shape),
             "subspace": budget_7168}
arms = {"lora": ("r", course.fast_or_full((3e-2,), (1e-2, 3e-2))),
        "vera": ("r", course.fast_or_full((1e-1,), (3e-2, 1e-1))),
        "subspace": ("d", course.fast_or_full((3e-2,), (1e-2, 3e-2)))}
print(f"budget {budget_7168:,}: sizes {sizes}")
capstone = []
for method, (key, method_lrs) in arms.items():
    trials = []
    for lr in method_lrs:
        model = get_method(method).prepare(ml.pretrained("names"), {key: sizes[method]}, seed=0)
        config = TrainConfig(steps=STEPS, batch_size=64, lr=lr, warmup_steps=max(1, STEPS // 20), weight_decay=0.0,
                             eval_every=0)
        result = train(model, names_task, config)
        validation = names_task.evaluate(model, split="validation")["bits_per_char"]
        trials.append((validation, lr, model, result))
    validation, lr, model, result = min(trials, key=lambda t: t[0])
    capstone.append({"method": method, "size": f"{key} = {sizes[method]}",
                     "trainable": f"{model.num_parameters(True):,}", "lr (chosen)": f"{lr:g}",
                     "validation bits/char": validation,
                     "test bits/char": result.final_metrics["bits_per_char"],
                     "ms per step": f"{1e3 * np.median([h['seconds'] for h in result.history]):.0f}"})
untrained = names_task.evaluate(names_model)["bits_per_char"]
course.table(capstone)
print(f"no fine-tuning: test {untrained:.3f} bits/char;  equal budgets: "
      f"{len({row['trainable'] for row in capstone}) == 1};  {STEPS} steps, seed 0")

# %%
fig = Figure(figsize=(7, 2.8), layout="constrained")
ax = fig.add_subplot()
names = [row["method"] for row in capstone]
values = [row["test bits/char"] for row in capstone]
ax.scatter(values, names, s=60, color=["C1", "C2", "C4"], zorder=3)  # dots, not bars: the axis does not start at 0
ax.axvline(untrained, color="0.5", linestyle=":")
ax.text(untrained - 0.01, len(names) - 0.55, f"no fine-tuning: {untrained:.3f}", ha="right", va="center",
        fontsize=9, color="0.4")
for i, v in enumerate(values):
    ax.annotate(f"{v:.3f}", (v, i), textcoords="offset points", xytext=(0, 8), ha="center", fontsize=9)
ax.set_xlim(min(values) - 0.1, max(max(values), untrained) + 0.08)
ax.set_ylim(-0.6, len(names) - 0.3)
ax.grid(axis="y", color="0.9")
ax.set_xlabel(f"test bits per character (lower is better), {budget_7168:,} trainable numbers each")
course.show(fig)
best = min(capstone, key=lambda row: row["test bits/char"])
print(f"lowest test bits/char: {best['method']} ({best['test bits/char']:.3f}); "
      f"spread between the three: {max(values) - min(values):.3f}")
stds = [r["test"]["std"] for r in family["rows"] if r["task"] == "first-names" and not r["diverged"]]
print(f"the family experiment on first-names (3 seeds, 400 steps): standard deviations {min(stds):.3f} to "
      f"{max(stds):.3f} bits/char")

# %% [markdown]
# **What the figure says:** each dot is one run (seed 0); the spread of the family experiment's seeds on this task
# (printed last) is the yardstick for calling a gap between two dots real.
#
# **Your conclusion.** Write one paragraph here (the checker cannot write it for you). Answer from the numbers
# above: which method spent the budget best on this task, and is the gap larger than the seeds' spread? What does
# each method spend its numbers on — which layers, which directions — and what could explain the order you see?
# What does each cost per step, and why is one of them much slower? What one experiment would you run next to test
# your explanation (another task, another budget, more seeds)?
#
# *(your paragraph)*
#
# ## Recap
# - DoRA writes each row as length × direction and trains the lengths $m$ apart from LoRA's direction update; LoRA
#   alone ties a row's growth to its turn.
# - PiSSA starts the adapter on $W_0$'s top-$r$ singular directions and freezes the residual
#   $\sum_{i>r}\sigma_i u_i v_i^\top$; the model is unchanged at step 0, and both factors get gradients at once.
# - LoRA+ trains $B$ at $\lambda$ times $A$'s learning rate; it moves the best learning rate, and is compared fairly
#   only when each side has its own.
# - VeRA trains $r + d$ numbers per layer around one frozen random pair shared by all layers; cheap in parameters,
#   not in compute when $r$ is large.
# - Several adapters share one base; `cat` merges exactly at the summed rank, `svd` approximates at a chosen rank,
#   `linear` adds cross terms; adapters trained apart need not work together.
# - At the learning rates that learn best, every method forgets most of the old skills on this tiny model; the
#   step size decides more than the rank.
#
# ## Questions
# 1. DoRA's $m$ starts at $\lVert W_0\rVert_{\text{row}}$. Why does that make step 0 compute the base model exactly,
#    and what would go wrong if $m$ started at 1?
# 2. PiSSA replaces the base weight by $W_{\text{res}}$. Why can its trained adapter not be loaded onto the original
#    base as it is, and how can it be rewritten so that it can (hint: a LoRA of rank $2r$)?
# 3. In LoRA+, why does multiplying $B$'s learning rate by $\lambda$ move the whole loss-vs-lr curve rather than
#    lower it?
# 4. VeRA with $r = 784$ on a 64-wide model: what is the rank of its $\Delta W$ for one $64 \times 64$ layer, and
#    why can a larger $r$ still help?
# 5. Two adapters of rank 4 merged with `cat` have rank 8. When would `svd` at rank 4 lose almost nothing?
# 6. "LoRA forgets less" was measured on large models with long training. Which two differences from that setting
#    might explain why this notebook does not see it?
#
# <details><summary>Answers to check yourself against</summary>
#
# 1. With $B = 0$, $W' = m \odot W_0 / \lVert W_0\rVert = W_0$ exactly when $m = \lVert W_0\rVert$; with $m = 1$
#    every row would be normalised to unit length, a different model before any training.
# 2. The trained $W_{\text{res}} + sBA$ equals $W_0 + s(BA - B_0A_0)$; on the original base the adapter must also
#    subtract its initial value: $[B, -B_0][A; A_0]$, a plain LoRA of rank $2r$ (PEFT's conversion).
# 3. Adam's step is about the lr per coordinate, so λ scales $B$'s steps: at $\eta_A / \lambda$, LoRA+'s $B$ moves
#    as LoRA's $B$ did at $\eta_A$ (only $A$ moves more slowly), and where $B$'s step limits training the curve
#    shifts to smaller $\eta_A$; it is lower only if the balance between $A$ and $B$ itself matters.
# 4. At most 64: $\Delta W = \mathrm{diag}(\lambda_b) B_d \mathrm{diag}(\lambda_d) A_k$ is $64 \times 64$. A
#    larger $r$ gives λ_d more random directions to weight, so the reachable set of updates is richer even at full rank.
# 5. When the two updates share their top directions, or when the sum's singular values beyond the 4th are small.
# 6. Model size (110,720 weights leave little spare capacity) and the task (one narrow format, 400 steps at an lr
#    chosen for learning, not for keeping), among others: the learning rate matters more than the rank here.
#
# </details>
