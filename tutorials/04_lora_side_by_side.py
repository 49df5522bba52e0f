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
# # LoRA side by side with full fine-tuning
#
# This notebook walks through the whole idea on a model small enough to train on a laptop CPU:
#
# 1. the autograd engine, and how we know its gradients are right;
# 2. a pretrained tiny GPT that already copies, reverses, shifts and adds;
# 3. LoRA: freeze $W_0$, learn $W = W_0 + \frac{\alpha}{r} B A$ with $B$ zero at init;
# 4. fine-tune on a *new* skill (reverse, then shift by one letter), with full fine-tuning and with LoRA;
# 5. merge the adapter — no extra inference cost — and save it as a few-KB file.

# %%
import numpy as np

import minilora as ml
import minilora.functional as F
from minilora.data import get_task
from minilora.lora import LoraConfig, apply_lora, count_parameters, lora_report, merge_lora, save_adapter
from minilora.train import TrainConfig, train

# %% [markdown]
# ## 1. Gradients you can trust
# Every operation's `backward` is checked against central finite differences,
# $\frac{\partial f}{\partial x_i} \approx \frac{f(x + \epsilon e_i) - f(x - \epsilon e_i)}{2\epsilon}$, in float64.

# %%
x = ml.randn((4, 5), rng=0, dtype=np.float64, requires_grad=True)
targets = np.array([0, 3, 1, 4])
ml.gradcheck(lambda logits: F.cross_entropy(logits, targets), x, rtol=1e-5)

# %% [markdown]
# ## 2. A pretrained tiny GPT
# `ml.pretrained("skills")` loads a 2-layer, 64-wide GPT shipped inside the package.
# Its held-out exact-match accuracy on the four pretraining skills:

# %%
base = ml.pretrained("skills")
pretraining = get_task("pretrain", n_eval=100)
{skill: round(r["accuracy"], 3) for skill, r in pretraining.evaluate(base)["by_skill"].items()}

# %% [markdown]
# The new skill, `T`: reverse the letters, then shift each one by +1 (`Tabz=acb.`). The base model has never seen it:

# %%
new_skill = get_task("reverse-shift", n_eval=100)
new_skill.evaluate(base)["accuracy"]

# %% [markdown]
# ## 3. LoRA: a low-rank update beside a frozen weight
# `apply_lora` swaps each targeted `Linear` for a `LoRALinear`: the base weight $W_0 \in \mathbb{R}^{d\times k}$ is frozen
# and only $A \in \mathbb{R}^{r\times k}$ and $B \in \mathbb{R}^{d\times r}$ train — $r(d+k)$ numbers instead of $dk$.

# %%
lora_model = apply_lora(ml.pretrained("skills"), LoraConfig(r=4, target_modules=("q_proj", "v_proj", "fc_in", "fc_out")))
print(lora_report(lora_model).table)
print(count_parameters(lora_model))

# %% [markdown]
# Because $B = 0$ at initialisation, the adapted model computes exactly what the base model computes:

# %%
ids = np.array([[40, 13, 14, 15, 1]])
with ml.no_grad():
    same = np.array_equal(base(ids)[0].numpy(), lora_model.eval()(ids)[0].numpy())
same

# %% [markdown]
# ## 4. Fine-tune both ways, same budget
# The same training loop, data and schedule; each method with its own learning rate.

# %%
budget = dict(steps=300, batch_size=64, warmup_steps=15, weight_decay=0.0)
full_model = ml.pretrained("skills")
full = train(full_model, new_skill, TrainConfig(lr=3e-3, **budget))
lora = train(lora_model, new_skill, TrainConfig(lr=1e-2, **budget))
print(f"full: {full.trainable_parameters:>7,} trainable, accuracy {full.final_metrics['accuracy']:.3f}")
print(f"LoRA: {lora.trainable_parameters:>7,} trainable, accuracy {lora.final_metrics['accuracy']:.3f}")

# %% [markdown]
# The base weights inside the LoRA model are bit-for-bit the pretrained ones — only $A$ and $B$ moved:

# %%
pretrained_q = base.blocks[0].attn.q_proj.weight.numpy()
np.array_equal(pretrained_q, lora_model.blocks[0].attn.q_proj.base.weight.numpy())

# %% [markdown]
# ## 5. Merge for free inference, save a tiny adapter
# Merging writes $W_0 + \frac{\alpha}{r}BA$ into the base weight: one matmul per layer again, same outputs.

# %%
with ml.no_grad():
    before = lora_model(ids)[0].numpy()
    merge_lora(lora_model)
    after = lora_model(ids)[0].numpy()
print("max |merged - unmerged|:", float(np.abs(before - after).max()))

# %%
import os
import tempfile

folder = save_adapter(lora_model, tempfile.mkdtemp())
{name: os.path.getsize(folder / name) for name in sorted(os.listdir(folder))}
