# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 · Full fine-tuning and LoRA, side by side
#
# A pretrained tiny GPT that copies, reverses, shifts and adds learns a skill it has never seen — reverse the
# letters, then shift each by one (`Tabz=acb.`) — twice: once by fine-tuning every weight, once with LoRA
# (Hu et al. 2021, [arXiv 2106.09685](https://arxiv.org/abs/2106.09685)), which freezes $W_0$ and trains
# $\Delta W = \frac{\alpha}{r} B A$. Same data, same steps, same schedule; each method with its own learning rate.
#
# **What you will learn**
# - how to fine-tune both ways with the one training loop (`minilora.train.train`);
# - the loss curves and accuracy of both, drawn;
# - what LoRA saves, measured: time per step, training memory (optimizer state, peak), the size of the saved file;
# - that the base weights never move, that merging costs nothing at inference, and what happens when you train a
#   merged model (predict it first);
# - the whole comparison over several ranks in one call, `minilora.experiments.compare` (`minilora compare`).
#
# **Read first:** [03 LoRA's mathematics](03_lora_math.ipynb). Next:
# [05 which rank, which weights](05_rank_and_which_weights.ipynb).
#
# **Run time:** about 3 minutes on one core with `OMP_NUM_THREADS=1` (up to 7 on a busy machine; how
# `tutorials/render.py` runs it, and what the step times below assume); about 20 seconds with
# `MINILORA_FAST=1 OMP_NUM_THREADS=1`, which trains for 40 steps instead of 1,000 — enough to run every cell, too
# short for the numbers to mean much. Start Jupyter with `OMP_NUM_THREADS=1 jupyter lab` to reproduce the timings.

# %%
import os
import tempfile
from pathlib import Path

import course
import numpy as np
from checks import check
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

import minilora as ml
from minilora.data import SKILL_TOKENIZER, get_task
from minilora.experiments.compare import compare
from minilora.experiments.measure import peak_traced_bytes
from minilora.lora import LoraConfig, apply_lora, count_parameters, merge_lora, save_adapter, unmerge_lora
from minilora.models.checkpoint import save_model
from minilora.train import TrainConfig, make_optimizer, train, train_step

# %% [markdown]
# ## 1. A pretrained model and a new skill
# `ml.pretrained("skills")` loads the 2-layer, 64-wide GPT shipped inside the package. Its held-out exact-match
# accuracy on the four pretraining skills, and on the new one:

# %%
base = ml.pretrained("skills")
n_eval = course.fast_or_full(50, 500)
pretraining = get_task("pretrain", n_eval=n_eval)
new_skill = get_task("reverse-shift", n_eval=n_eval)
known = {skill: r["accuracy"] for skill, r in pretraining.evaluate(base)["by_skill"].items()}
base_new = new_skill.evaluate(base)["accuracy"]
course.table([{"skill": s, "exact match": a} for s, a in known.items()] + [{"skill": "reverse-shift (new)",
                                                                            "exact match": base_new}])
print("one example of the new skill:", SKILL_TOKENIZER.decode(new_skill.sample_batch(np.random.default_rng(0),
                                                                                       1)[0][0]))

# %% [markdown]
# **What these numbers say:**

# %%
print(f"The base model solves its pretraining skills ({min(known.values()):.0%} to {max(known.values()):.0%} "
      f"exact match on {n_eval} examples each) and {base_new:.0%} of the new one: reverse-shift has to be learned.")

# %% [markdown]
# ## 2. Two ways to fine-tune
# Full fine-tuning trains all 110,720 weights. LoRA freezes them and trains, for each adapted $d \times k$ matrix,
# $A \in \mathbb{R}^{r \times k}$ and $B \in \mathbb{R}^{d \times r}$: $r(d + k)$ numbers instead of $dk$. Here
# rank 4 on the attention's `q_proj`, `v_proj` and the MLP's `fc_in`, `fc_out`:

# %%
FOUR = ("q_proj", "v_proj", "fc_in", "fc_out")
full_model = ml.pretrained("skills").requires_grad_(True)
lora_model = apply_lora(ml.pretrained("skills"), LoraConfig(r=4, target_modules=FOUR, init_lora_weights="gaussian"))
print("full:", count_parameters(full_model))
print("LoRA:", count_parameters(lora_model))

# %% [markdown]
# A 64 × 64 attention matrix costs $4 \cdot (64 + 64) = 512$ LoRA numbers instead of 4,096; a 256 × 64 MLP matrix
# $4 \cdot 320 = 1{,}280$ instead of 16,384. Two layers of four such matrices: 7,168, about 6% of the model.
#
# The same budget for both: the same steps and batches (same seed), warm-up then cosine decay; no weight decay.

# %%
steps = course.fast_or_full(40, 1000)
budget = dict(steps=steps, batch_size=64, warmup_steps=max(1, steps // 20), weight_decay=0.0, eval_every=steps // 5)
full = train(full_model, new_skill, TrainConfig(lr=3e-3, **budget))
lora = train(lora_model, new_skill, TrainConfig(lr=1e-2, **budget))
course.table([{"method": name, "trainable": f"{r.trainable_parameters:,}", "exact match": r.final_metrics["accuracy"],
               "seconds": f"{r.seconds:.0f}"} for name, r in (("full", full), ("LoRA r = 4", lora))])

# %% [markdown]
# **What these numbers say:**

# %%
full_acc, lora_acc = full.final_metrics["accuracy"], lora.final_metrics["accuracy"]
gap = full_acc - lora_acc
print(f"After {steps} steps LoRA, training {lora.trainable_parameters / full.trainable_parameters:.1%} of the "
      f"weights, reaches {lora_acc:.3f} exact match and full fine-tuning {full_acc:.3f}: "
      + ("the same within one percentage point." if abs(gap) <= 0.01 else
         f"LoRA is {abs(gap):.3f} {'below' if gap > 0 else 'above'} full fine-tuning."))
if course.FAST:
    print(f"(MINILORA_FAST=1: {steps} steps check that everything runs; without it, 1,000 steps give the real "
          "comparison.)")

# %% [markdown]
# ## 3. Loss curves
# The training loss of each step (smoothed over a few steps), on a log scale:

# %%
course.show(course.loss_figure([("full fine-tuning", full.history, "black"), ("LoRA r = 4", lora.history, "C1")],
                               "Training loss on the new skill"))

# %% [markdown]
# **What this figure says:**

# %%
def settled(result):
    """The mean training loss over the last tenth of the run."""
    losses = [h["loss"] for h in result.history]
    return float(np.mean(losses[-max(1, len(losses) // 10):]))


start = full.history[0]["loss"]
print(f"Both start from the base model's loss, {start:.2f} (LoRA's B = 0, so ΔW = 0 at step 0: the same model). "
      f"Over the last tenth of the run, full fine-tuning's loss is {settled(full):.3g} and LoRA's {settled(lora):.3g}: "
      + ("full fine-tuning fits the training data more closely." if settled(full) < settled(lora) else
         "LoRA fits the training data as closely or more."))

# %% [markdown]
# The held-out exact match, evaluated five times during each run:

# %%
fig = Figure(figsize=(7, 3.4), layout="constrained")
ax = fig.add_subplot()
for name, result, color in (("full fine-tuning", full, "black"), ("LoRA r = 4", lora, "C1")):
    ax.plot([0] + [e["step"] for e in result.evals], [base_new] + [e["accuracy"] for e in result.evals], "o-",
            color=color, label=name)
ax.set_xlabel("step")
ax.set_ylabel("held-out exact match")
ax.set_ylim(-0.05, 1.05)
ax.set_title("Held-out exact match during training")
ax.set_xlim(-steps / 50, steps * 1.02)
ax.xaxis.set_major_locator(MaxNLocator(integer=True))
ax.legend(loc="lower right")
course.show(fig)

# %% [markdown]
# **What this figure says:**

# %%
def first_step_above(result, level=0.9):
    """The first evaluated step at which the held-out exact match reached ``level`` (None if it never did)."""
    return next((e["step"] for e in result.evals if e["accuracy"] >= level), None)


for name, result in (("full fine-tuning", full), ("LoRA r = 4", lora)):
    step = first_step_above(result)
    print(f"{name}: " + (f"90% exact match first seen at step {step} of {steps}" if step is not None else
                         f"below 90% at every evaluation ({max(e['accuracy'] for e in result.evals):.3f} at best)"))

# %% [markdown]
# ## 4. What LoRA saves: time, memory, file size
# **Time.** Each step's wall time is in the history. A frozen weight gets no gradient computed
# ([01](01_autograd_from_scratch.ipynb), section 7): LoRA's backward skips the weight-gradient matmul
# $\partial L / \partial W = g^\top x$ of every frozen Linear, and AdamW updates 7,168 numbers instead of 110,720; it
# adds the small matmuls of A and B. Which wins depends on the sizes and on the machine:

# %%
full_ms = 1e3 * np.median([h["seconds"] for h in full.history])
lora_ms = 1e3 * np.median([h["seconds"] for h in lora.history])
ratio = lora_ms / full_ms
print(f"median step: full {full_ms:.1f} ms, LoRA {lora_ms:.1f} ms  (LoRA/full = {ratio:.2f})")
print("LoRA's steps were faster here: the skipped gradients outweigh A and B's extra matmuls." if ratio < 0.9 else
      "LoRA's steps were slower here: on so small a model A and B's extra matmuls outweigh what is skipped."
      if ratio > 1.1 else
      "Within 10% of each other: on so small a model the skipped and the added work nearly cancel.")

# %% [markdown]
# (Step times on a shared machine move from run to run; the README's benchmark table times larger
# configs, median of 20 steps each.)
#
# **Memory.** Before measuring it: how much state will AdamW keep?
#
# **Exercise 1 — predict the optimizer's memory.** Write `optimizer_state_bytes(model)`: the bytes of state AdamW
# will hold when it trains `model` (the model as handed to `train`: some parameters trainable, some frozen; any
# dtype). AdamW's update (Loshchilov & Hutter, [arXiv 1711.05101](https://arxiv.org/abs/1711.05101)) is
# $m \leftarrow \beta_1 m + (1 - \beta_1) g$, $v \leftarrow \beta_2 v + (1 - \beta_2) g^2$,
# $\theta \leftarrow \theta - \eta \left(\hat m / (\sqrt{\hat v} + \epsilon) + \lambda \theta\right)$. The check
# trains a few models one step and compares with what AdamW actually holds; the cell after it measures the two models
# of this notebook.

# %%
def optimizer_state_bytes(model) -> int:
    raise NotImplementedError  # your prediction, as code


# %%
check("optimizer_state_bytes", optimizer_state_bytes)

# %% [markdown]
# The measurement: the optimizer state after three steps, and the peak of everything a training step allocates
# (activations, gradients, optimizer state), measured with `tracemalloc` on fresh models:

# %%
def training_memory(model, lr):
    """(optimizer state bytes, peak bytes) of three training steps on ``model``."""
    optimizer = make_optimizer(model, TrainConfig(lr=lr, weight_decay=0.0))
    batches = [new_skill.sample_batch(np.random.default_rng(i), 64) for i in range(3)]

    def three_steps():
        for x, y in batches:
            train_step(model, optimizer, x, ml.tensor(y), grad_clip=1.0)

    peak = peak_traced_bytes(three_steps)
    return optimizer.state_bytes(), peak


memory = {"full": training_memory(ml.pretrained("skills").requires_grad_(True), 3e-3),
          "LoRA r = 4": training_memory(apply_lora(ml.pretrained("skills"), LoraConfig(r=4, target_modules=FOUR)),
                                        1e-2)}
course.table([{"method": name, "optimizer state KiB": state / 2**10, "peak of a step MiB": peak / 2**20}
              for name, (state, peak) in memory.items()], digits=2)

# %% [markdown]
# **What these numbers say:**

# %%
(full_state, full_peak), (lora_state, lora_peak) = memory.values()
print(f"The optimizer state shrinks with the trainable weights, to {lora_state / full_state:.1%} of full "
      f"fine-tuning's. The peak of a step is {lora_peak / full_peak:.2f}× full fine-tuning's"
      + (": on this tiny model it is mostly the activations of a batch (64 sequences, every layer's outputs at every "
         "position), which a frozen model computes and keeps just the same." if abs(lora_peak / full_peak - 1) < 0.1
         else "."))

# %% [markdown]
# On larger models the weights, gradients and optimizer state dominate, and there the saving shows: for GPT-3 175B
# the LoRA paper reports 1.2 TB of training memory falling to 350 GB.
#
# **Files.** Full fine-tuning has to save a whole model; LoRA saves A and B:

# %%
folder = Path(tempfile.mkdtemp())
save_model(folder / "full" / "model.safetensors", full_model)
adapter_dir = save_adapter(lora_model, folder / "lora", base_model_name_or_path="skills")
full_bytes = os.path.getsize(folder / "full" / "model.safetensors")
lora_bytes = os.path.getsize(adapter_dir / "adapter_model.safetensors")
print(f"full model {full_bytes / 2**10:6.1f} KiB   adapter {lora_bytes / 2**10:5.1f} KiB  "
      f"({lora_bytes / full_bytes:.1%}: the 7,168 numbers of A and B, and their names)")

# %% [markdown]
# ## 5. The base weights never moved; merging is free
# Inside the LoRA model the pretrained weights are bit for bit what they were — only A and B trained:

# %%
np.array_equal(base.blocks[0].attn.q_proj.weight.numpy(), lora_model.blocks[0].attn.q_proj.base.weight.numpy())

# %% [markdown]
# Merging writes $W_0 + \frac{\alpha}{r} B A$ into each base weight: one matmul per layer again, the same outputs.

# %%
ids = np.array([SKILL_TOKENIZER.encode("Tminilora=")])
lora_model.eval()
with ml.no_grad():
    before = lora_model(ids)[0].numpy()
    merge_lora(lora_model)
    after = lora_model(ids)[0].numpy()
print(f"max |merged − unmerged| = {float(np.abs(before - after).max()):.2g}  (float32 rounding: W0 + ΔW is one "
      "rounded array)")
print(SKILL_TOKENIZER.decode(lora_model.generate(ids, 9, temperature=0)[0]))

# %% [markdown]
# **Exercise 2 — keep training after a merge (predict, then run).** The model above is merged. Suppose you call
# `train(lora_model, ...)` again now. What happens?
#
# - `"a"`: the loss keeps falling, as before the merge;
# - `"b"`: the loss stays flat: A and B get no gradient, nothing changes;
# - `"c"`: training stops at once with an error that says to unmerge first;
# - `"d"`: the loss jumps: the update now counts twice, once in W and once through B A.
#
# Write your answer as a string, check it, then run the cell after the check.

# %%
after_merge = None  # your prediction: "a", "b", "c" or "d"

# %%
check("after_merge", after_merge)

# %%
more = dict(budget, steps=course.fast_or_full(10, 50), warmup_steps=1, eval_every=0)
try:
    train(lora_model, new_skill, TrainConfig(lr=1e-3, **more))
except RuntimeError as err:
    print("RuntimeError:", err)
unmerge_lora(lora_model)  # W0 back, bit for bit; B A on the side again
again = train(lora_model, new_skill, TrainConfig(lr=1e-3, **more))
print(f"after unmerge_lora: {more['steps']} more steps, loss {again.history[0]['loss']:.4f} → "
      f"{again.history[-1]['loss']:.4f}, exact match {again.final_metrics['accuracy']:.3f}")

# %% [markdown]
# While merged, a LoRA layer computes $x W^\top$ with $W = W_0 + \frac{\alpha}{r}BA$ stored as one array: A and B are
# not in the computation, so they would get no gradient and the optimizer would silently do nothing. `LoRALinear`
# refuses a training-mode forward instead; unmerging restores $W_0$ exactly, and training goes on from where it was.
#
# ## 6. Every rank in one call
# `compare` runs full fine-tuning and LoRA at several ranks from fresh copies of the base model, with the same
# budget, and measures everything above per run (`minilora compare --task reverse-shift` on the command line). The
# last columns are inference latency: the base model, the merged adapter (the same matmuls as the base), and the
# unmerged adapter (two extra small matmuls per adapted layer).

# %%
rows = compare(new_skill, base="skills", ranks=course.fast_or_full((1, 4), (1, 2, 4, 8)), steps=steps,
               latency_repeats=course.fast_or_full(3, 20))
lora_rows = [r for r in rows if r["method"] == "lora"]
full_row = next(r for r in rows if r["method"] == "full")


def latency(row, which):
    """Inference time of the merged or unmerged adapter over the base model's ("–" for full fine-tuning)."""
    return "–" if row["infer_base_ms"] is None else f"{row[f'infer_{which}_ms'] / row['infer_base_ms']:.2f}"


course.table([{"method": r["method"], "r": r["rank"] or "–", "trainable": f"{r['trainable_params']:,}",
               "exact match": r["metric_value"], "step ms": f"{r['step_ms']:.1f}",
               "optimizer KiB": f"{r['optimizer_state_bytes'] / 2**10:.1f}",
               "file KiB": f"{r['file_bytes'] / 2**10:.1f}",
               "merged / base": latency(r, "merged"), "unmerged / base": latency(r, "unmerged")} for r in rows])

# %% [markdown]
# **What these numbers say:**

# %%
close = [r["rank"] for r in lora_rows if r["metric_value"] >= full_row["metric_value"] - 0.01]
merged = [r["infer_merged_ms"] / r["infer_base_ms"] for r in lora_rows]
unmerged = [r["infer_unmerged_ms"] / r["infer_base_ms"] for r in lora_rows]
share = {r["rank"]: r["trainable_pct"] for r in lora_rows}
print(f"Within one point of full fine-tuning's exact match ({full_row['metric_value']:.3f}): "
      + (f"LoRA from r = {min(close)}, with {share[min(close)]:.1f}% of the trainable weights." if close else
         "no rank here."))
print(f"Merged inference takes {min(merged):.2f}–{max(merged):.2f}× the base model's time (the same matmuls: the "
      f"spread is timing noise); unmerged {min(unmerged):.2f}–{max(unmerged):.2f}× (two extra matmuls per adapted "
      "layer).")
if course.FAST:
    print(f"(MINILORA_FAST=1: {steps} steps per run; the ranks are not compared yet.)")

# %% [markdown]
# The same runs as a figure: exact match against the number of trainable weights.

# %%
fig = Figure(figsize=(7, 3.6), layout="constrained")
ax = fig.add_subplot()
ax.plot([r["trainable_params"] for r in lora_rows], [r["metric_value"] for r in lora_rows], "o-", color="C1",
        label="LoRA")
for r in lora_rows:
    ax.annotate(f"r={r['rank']}", (r["trainable_params"], r["metric_value"]), textcoords="offset points",
                xytext=(0, 7), ha="center", fontsize=9)
ax.plot([full_row["trainable_params"]], [full_row["metric_value"]], "ks", label="full fine-tuning")
ax.set_xscale("log")
ax.set_xlabel("trainable parameters (log scale)")
ax.set_ylabel("held-out exact match")
ax.set_ylim(-0.05, 1.12)
ax.set_title(f"Accuracy against trainable weights, {steps} steps each")
ax.legend(loc="lower right")
course.show(fig)

# %% [markdown]
# **What this figure says:**

# %%
best = max(lora_rows, key=lambda r: r["metric_value"])
smallest = lora_rows[0]
print((f"Accuracy rises from r = {smallest['rank']} ({smallest['metric_value']:.3f}) to its best at r = {best['rank']} "
       if best is not smallest else f"The smallest rank, r = {best['rank']}, is already the best ")
      + f"({best['metric_value']:.3f}), against {full_row['metric_value']:.3f} for full fine-tuning with "
      f"{full_row['trainable_params'] / best['trainable_params']:.0f}× more trainable weights.")

# %% [markdown]
# One run per rank is one seed: [05](05_rank_and_which_weights.ipynb) asks which rank and which weights, with
# several seeds; the README's table runs the same comparison on a far skill (sorting), where LoRA falls short.
#
# **Exercise 3 — initialise the other way round (predict, then run).** LoRA starts with A random and B = 0, so
# $\Delta W = 0$ at step 0. Swap them: A = 0 and B random — $\Delta W$ is still 0. At the first backward pass, which
# of A and B gets a non-zero gradient? Answer `"A"`, `"B"`, `"both"` or `"neither"`, check, then run.

# %%
a_zero_init = None  # your prediction: "A", "B", "both" or "neither"

# %%
check("a_zero_init", a_zero_init)

# %%
def swapped_init(model, seed=0):
    """A = 0 and B random (the usual scale of A) in every LoRA layer of ``model``; returns it."""
    rng = np.random.default_rng(seed)
    for name, p in model.named_parameters():
        if name.endswith("lora_A"):
            p.data = np.zeros_like(p.data)
        elif name.endswith("lora_B"):
            p.data = rng.normal(0.0, 1 / p.shape[1], p.shape).astype(p.dtype)
    return model


def first_gradients(model):
    """The largest |gradient| of the A's and of the B's after one backward on a batch of the new skill."""
    x, y = new_skill.sample_batch(np.random.default_rng(0), 64)
    _, loss = model.train()(x, ml.tensor(y))
    loss.backward()
    return {which: max(float(np.abs(p.grad).max()) for n, p in model.named_parameters() if n.endswith(f"lora_{which}"))
            for which in ("A", "B")}


config = LoraConfig(r=4, target_modules=FOUR, init_lora_weights="gaussian")
usual, swapped = apply_lora(ml.pretrained("skills"), config), swapped_init(apply_lora(ml.pretrained("skills"), config))
for name, model in (("usual (A random, B = 0)", usual), ("swapped (A = 0, B random)", swapped)):
    grads = first_gradients(model)
    print(f"{name:26s} max |∂L/∂A| = {grads['A']:.3g}   max |∂L/∂B| = {grads['B']:.3g}")

# %% [markdown]
# Does the swapped model train at all? The same short run from both starts:

# %%
short = dict(budget, steps=course.fast_or_full(30, 200), warmup_steps=1, eval_every=0)
runs = {name: train(model, new_skill, TrainConfig(lr=1e-2, **short))
        for name, model in (("usual: A random, B = 0", apply_lora(ml.pretrained("skills"), config)),
                            ("swapped: A = 0, B random", swapped_init(apply_lora(ml.pretrained("skills"), config))))}
curves = [(name, result.history, color) for (name, result), color in zip(runs.items(), ("C1", "C0"))]
course.show(course.loss_figure(curves, "LoRA from either zero start"))

# %% [markdown]
# **What this figure says:**

# %%
losses = {name: (r.history[0]["loss"], settled(r)) for name, r in runs.items()}
for name, (first, last) in losses.items():
    print(f"{name}: loss {first:.3g} at step 1 → {last:.3g} over the last tenth of {short['steps']} steps")
trained = [name for name, (first, last) in losses.items() if last < first / 10]
print("Both start at the base model's loss (ΔW = 0 either way). "
      + ("Both train: after the first step the zero matrix is no longer zero, and its partner gets gradients too."
         if len(trained) == 2 else f"Only {', '.join(trained) or 'neither'} cut the loss tenfold in these steps."))

# %% [markdown]
# With $h = W_0 x + s \cdot B (A x)$: $\partial L / \partial B = s \, g \, (A x)^\top$ vanishes when $A = 0$, while
# $\partial L / \partial A = s \, B^\top g \, x^\top$ does not. So the zero matrix gets no gradient at first in
# either layout. The paper (and PEFT) put the zero in B: A starts as a random projection of the input, and B
# learns first.
#
# **Exercise 4 — shipping an adapter.** Given a folder written by `save_adapter` (for the shipped skills model),
# return a fine-tuned model: a fresh base model with the adapter loaded (`minilora.lora.load_adapter`). The check
# calls it twice, with two different adapters.

# %%
def reload_adapter(folder):
    raise NotImplementedError  # your code


# %%
check("reload_adapter", reload_adapter)

# %% [markdown]
# ## Recap
# - Full fine-tuning and LoRA run through the same `train`; LoRA trains $r(d + k)$ numbers per adapted matrix
#   instead of $dk$ (here 7,168 of 110,720) and, trained the full 1,000 steps on this near skill, reaches about what
#   full fine-tuning reaches (section 2 prints the comparison of the run you made).
# - What LoRA saves grows with the model: optimizer state (two moments per *trainable* weight), the saved file
#   (A and B only), the weight gradients of frozen layers. On a tiny model the activations dominate the peak memory.
# - The base weights never move. Merging folds $\frac{\alpha}{r}BA$ into $W_0$ for inference at the base model's
#   cost; a merged model refuses to train until it is unmerged, which restores $W_0$ bit for bit.
# - One of A, B starts at zero so that the fine-tuned model starts as the base model; the zero one gets its
#   gradient one step later.
#
# ## Questions
# 1. Why does the peak training memory barely shrink here, when the optimizer state shrinks to a few percent? What
#    would you change (model size, batch, sequence length) to make LoRA's memory saving show?
# 2. LoRA's step skips the weight gradients of frozen Linears but still computes the gradients flowing *through*
#    them. Why can it not skip those too?
# 3. If both A and B started at zero, what would training do? (Use the two gradient formulas above.)
# 4. An adapter file is a few percent of the model. What must the person who loads it already have, and what goes
#    wrong if their base weights differ slightly from yours?
#
# <details><summary>Answers, briefly</summary>
#
# 1. The peak is mostly activations, which depend on batch × sequence × width and are kept whether or not a weight
#    trains; with a larger model (more weights per activation) the weights' gradients and optimizer state dominate.
# 2. Earlier layers' adapters need $\partial L / \partial x$, which passes through every frozen weight.
# 3. Neither would ever get a gradient: each one's gradient has the other as a factor, so nothing trains.
# 4. The exact base weights: the update is a small correction to them; on different weights it corrects the wrong
#    thing (minilora's `load_adapter` compares a fingerprint of the base and refuses a mismatch).
#
# </details>
