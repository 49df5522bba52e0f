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
# # 02 · The tiny GPT, one step at a time
#
# LoRA adapts the weight matrices of a transformer, so before adapting one we open it up. minilora ships a
# 2-layer, 64-wide GPT pretrained on four character skills (copy, reverse, shift by one letter, add); its file
# is `minilora/models/gpt.py`, about 200 lines, readable top to bottom.
#
# **What you will learn**
# - how characters become vectors: token and position embeddings, with their shapes;
# - self-attention step by step — queries, keys, values, scores, the causal mask, softmax — checked against the
#   model's own layer, and what its heads look at on a real prompt (a heatmap);
# - why the causal mask makes a language model: no position sees its future;
# - what pretraining looks like: the loss and the skills' accuracy as a fresh model learns;
# - how `model.generate` samples text, greedily or with a temperature.
#
# **Read first:** `01_autograd_from_scratch`. Next: `03_lora_math`.
# Runs in about 3 minutes (a few seconds with `MINILORA_FAST=1`, which shortens the pretraining run).

# %%
import course
import numpy as np
from checks import check
from matplotlib.figure import Figure

import minilora as ml
import minilora.functional as F
from minilora.data import NAMES_TOKENIZER, SKILL_TOKENIZER, get_task
from minilora.models import GPT
from minilora.plots import smooth
from minilora.train import TrainConfig, train

# %% [markdown]
# ## 1. The model and its vocabulary
# Every character is one token. The skills vocabulary is `_` (padding, id 0), `. = + -`, the digits, `a-z` and
# `A-Z`; an example reads `<TAG><input>=<output>.`, so `Rhello=` asks the model to **R**everse "hello".

# %%
model = ml.pretrained("skills")
print(model.config)
print(f"{model.num_parameters():,} weights;  vocabulary: {SKILL_TOKENIZER.vocab_size} tokens")
for name, p in model.named_parameters():
    if not name.startswith("blocks.1"):  # block 1 has the same shapes as block 0
        print(f"  {name:28s} {p.shape}")

# %%
tok = SKILL_TOKENIZER
prompt = "Rhello="
ids = np.array([tok.encode(prompt)])  # (B, T) = (1, 7): a batch of one sequence
print(prompt, "->", ids, ids.shape)

# %% [markdown]
# ## 2. Embeddings: what a token is, and where it is
# Two lookup tables: `tok_emb` (V × C) gives each token id a C = 64-dimensional vector, `pos_emb` (block_size × C)
# gives each position one. Their sum is the input of the first block.

# %%
B, T = ids.shape
C, H = model.config.n_embd, model.config.n_head
tok_vectors = model.tok_emb(ids)            # (B, T, C)
pos_vectors = model.pos_emb(np.arange(T))   # (T, C), broadcast over the batch
x = tok_vectors + pos_vectors               # (B, T, C)
print("tokens", tok_vectors.shape, "+ positions", pos_vectors.shape, "->", x.shape)

# %% [markdown]
# ## 3. Attention, step by step
# Each block first normalises its input (`ln_1`) and projects it three times: a **query** (what this position
# looks for), a **key** (what it offers) and a **value** (what it passes on). The C = 64 channels are split into
# H = 4 heads of h = 16 channels, each attending on its own.

# %%
def split_heads(t):
    """(B, T, C) -> (B, H, T, h): the channels cut into H heads of h."""
    return t.reshape(B, T, H, h).transpose(0, 2, 1, 3)


block = model.blocks[0]
h = C // H
x_norm = block.ln_1(x)                                              # (B, T, C)
q = split_heads(block.attn.q_proj(x_norm))
k = split_heads(block.attn.k_proj(x_norm))
v = split_heads(block.attn.v_proj(x_norm))
print("q, k, v:", q.shape, "(batch, heads, positions, channels per head)")

# %% [markdown]
# Scores: how well each query matches each key, q·k / √h (the √h keeps the scores' spread independent of h).

# %%
scores = (q @ k.transpose(0, 1, 3, 2)) * (1.0 / np.sqrt(h))  # (B, H, T, T): row = query, column = key
print("scores:", scores.shape)

# %% [markdown]
# The **causal mask**: position t may look at positions 0..t only, never ahead (it is being trained to predict
# what comes next, so seeing it would be cheating). Scores above the diagonal become −∞, which softmax turns
# into exactly 0.

# %%
future = np.triu(np.ones((T, T), dtype=bool), k=1)   # (T, T): True above the diagonal
print(future.astype(int))
weights = F.softmax(F.masked_fill(scores, ml.tensor(future), -np.inf), axis=-1)  # (B, H, T, T)
print("attention weights:", weights.shape, "  each row sums to", weights.numpy().sum(axis=-1)[0, 0].round(6))

# %% [markdown]
# Each position's output is the weighted average of the values; the heads are put back side by side and mixed by
# `o_proj`. The result equals what the model's own attention layer computes (with its fused attention):

# %%
y_heads = weights @ v                                   # (B, H, T, h)
y = y_heads.transpose(0, 2, 1, 3).reshape(B, T, C)      # (B, T, C)
by_hand = block.attn.o_proj(y)                          # (B, T, C)
with ml.no_grad():
    by_model = block.attn(x_norm)
print(by_hand.shape, "max |by hand − model| =", float(np.abs(by_hand.numpy() - by_model.numpy()).max()))

# %% [markdown]
# ## 4. What the heads look at
# Now a whole example, `Rhello=olleh.`, through both blocks, keeping each head's attention weights.
# Reading the heatmaps: row = the position that is predicting the next character, column = where it looks.

# %%
def attention_weights(block, x):
    """The (B, H, T, T) attention weights of ``block`` on its input x (B, T, C): the steps above in one function."""
    b, t, c = x.shape
    x_norm = block.ln_1(x)
    q, k = (p(x_norm).reshape(b, t, H, c // H).transpose(0, 2, 1, 3) for p in (block.attn.q_proj, block.attn.k_proj))
    scores = (q @ k.transpose(0, 1, 3, 2)) * (1.0 / np.sqrt(c // H))
    return F.softmax(F.masked_fill(scores, ml.tensor(np.triu(np.ones((t, t), dtype=bool), k=1)), -np.inf), axis=-1)


text = "Rhello=olleh."
ids_full = np.array([tok.encode(text)])                                          # (1, 13)
with ml.no_grad():
    x = model.tok_emb(ids_full) + model.pos_emb(np.arange(ids_full.shape[1]))    # (1, 13, C)
    patterns = []
    for blk in model.blocks:
        patterns.append(attention_weights(blk, x).numpy()[0])                    # (H, T, T)
        x = blk(x)
print([p.shape for p in patterns])

# %%
fig = Figure(figsize=(13, 6.6))
axes = fig.subplots(len(patterns), H)
for layer, pattern in enumerate(patterns):
    for head in range(H):
        ax = axes[layer, head]
        ax.imshow(pattern[head], cmap="Blues", vmin=0, vmax=1)
        ax.set_xticks(range(len(text)), list(text), fontsize=8)
        ax.set_yticks(range(len(text)), list(text), fontsize=8)
        ax.set_title(f"layer {layer}, head {head}", fontsize=9)
axes[0, 0].set_ylabel("query (predicts the next)")
axes[1, 0].set_xlabel("key (looked at)")
course.show(fig)

# %% [markdown]
# Every row is a probability distribution over the positions up to and including its own (the upper triangle is
# exactly 0: the causal mask). Follow the rows after `=`, where the answer is written: some heads keep looking at
# the tag `R` (which skill is this?), some at `=` (how far into the answer am I? — that says which input letter
# comes next), and the second layer looks back into the input letters. No single head of this tiny model is a
# clean "mirror" — the work is spread over heads and layers — so try other prompts (`Rabcdefg=gfedcba.`,
# `Sabc=bcd.`) and compare.
#
# ## 5. The causal mask in action
# Change the *last* character of a prompt: the logits of every earlier position stay exactly the same.

# %%
with ml.no_grad():
    logits_a, _ = model(np.array([tok.encode("Rabcd=")]))   # (1, 6, V)
    logits_b, _ = model(np.array([tok.encode("Rabcx=")]))
diff = np.abs(logits_a.numpy() - logits_b.numpy()).max(axis=-1)[0]
for position, (ch, d) in enumerate(zip("Rabcd=", diff)):
    print(f"position {position} ({ch!r}): max |Δ logit| = {d:.3g}")

# %% [markdown]
# ## 6. Pretraining: watching a model learn
# The shipped model was pretrained for 9,000 steps (`minilora pretrain --recipe skills`, about 2½ CPU-minutes).
# Here a fresh, randomly initialised GPT of the same shape trains on the same mixture of skills for a shorter
# run, scored every few hundred steps by exact match on held-out inputs.

# %%
steps = course.fast_or_full(150, 3000)
task = get_task("pretrain", n_eval=course.fast_or_full(25, 100))
fresh = GPT(model.config, seed=0)
config = TrainConfig(steps=steps, batch_size=64, lr=2e-3, warmup_steps=steps // 20, eval_every=steps // 6)
result = train(fresh, task, config)
print(f"{steps} steps in {result.seconds:.0f} s; final accuracy by skill:",
      {s: round(r["accuracy"], 2) for s, r in result.final_metrics["by_skill"].items()})

# %%
losses = [h["loss"] for h in result.history]
fig = Figure(figsize=(11, 3.5))
left, right = fig.subplots(1, 2)
left.plot(losses, alpha=0.3, color="C0", label="per step")
left.plot(smooth(losses, max(1, steps // 30)), color="C0", label="smoothed")
left.set_xlabel("step")
left.set_ylabel("training loss (nats per output token)")
left.set_yscale("log")
left.legend()
for skill in result.evals[0]["by_skill"]:
    right.plot([e["step"] for e in result.evals], [e["by_skill"][skill]["accuracy"] for e in result.evals], "o-",
               label=skill)
right.set_xlabel("step")
right.set_ylabel("held-out exact match")
right.set_ylim(-0.05, 1.05)
right.legend()
course.show(fig)

# %% [markdown]
# The loss falls steadily while the skills click into place one after another. Copying and shifting come first
# (each output letter depends on the input letter at a fixed offset), addition next, and reversal last (where
# to look moves with every letter): after 3,000 steps it is still far from done, which is why the recipe runs
# 9,000. The shipped model, 9,000 steps in:

# %%
{skill: round(r["accuracy"], 3) for skill, r in task.evaluate(model)["by_skill"].items()}

# %% [markdown]
# ## 7. Sampling with `model.generate`
# Generation appends one token at a time: run the model, take the last position's logits, pick a token, repeat.
# At temperature 0 it picks the argmax (greedy) — how the skills are scored:

# %%
prompts = ["Chello=", "Rhello=", "Shello=", "A12+34=", "Rminilora="]
for p in prompts:
    out = model.generate(np.array([tok.encode(p)]), max_new_tokens=10, temperature=0)  # (1, T + 10)
    print(tok.decode(out[0]).split(".")[0] + ".")

# %% [markdown]
# With a temperature the next token is *sampled* from softmax(logits / temperature): below 1 the distribution
# sharpens, above 1 it flattens. The other shipped model, `ml.pretrained("names")`, learned 80,000 US-Census
# surnames; here is its distribution over the letter that follows `.mc`:

# %%
names_model = ml.pretrained("names")
context = np.array([NAMES_TOKENIZER.encode(".mc")])
with ml.no_grad():
    last = names_model(context)[0].numpy()[0, -1]   # (V,) logits of the next character
letters = list(NAMES_TOKENIZER.itos)
fig = Figure(figsize=(11, 3))
ax = fig.add_subplot()
for i, temperature in enumerate((0.5, 1.0, 2.0)):
    probs = np.exp(last / temperature - (last / temperature).max())
    ax.bar(np.arange(len(letters)) + (i - 1) * 0.27, probs / probs.sum(), width=0.27,
           label=f"temperature {temperature}")
ax.set_xticks(range(len(letters)), letters)
ax.set_ylabel("p(next character | '.mc')")
ax.legend()
course.show(fig)

# %%
for temperature in (0.5, 1.0):
    out = names_model.generate(np.zeros((8, 1), dtype=np.int64) + NAMES_TOKENIZER.encode(".")[0],
                               max_new_tokens=12, temperature=temperature, rng=0)
    print(f"temperature {temperature}:", ", ".join(NAMES_TOKENIZER.decode(row[1:]).split(".")[0] for row in out))

# %% [markdown]
# ## Exercises
# Each exercise cell raises `NotImplementedError` until you fill it in; the cell after it checks your answer.
# Solutions: `tutorials/solutions/02_tiny_gpt.py` (try first!).
#
# **Exercise 1 — the mask.** Return a (t, t) boolean array, True where query i may attend to key j.

# %%
def causal_mask(t: int) -> np.ndarray:
    raise NotImplementedError  # your code


# %%
check("causal_mask", causal_mask)

# %% [markdown]
# **Exercise 2 — attention in NumPy.** q, k, v are NumPy arrays of shape (B, H, T, h). Return
# softmax(q kᵀ / √h, causally masked) v, shape (B, H, T, h), with NumPy only (subtract each row's max before
# `np.exp`, as a stable softmax does).

# %%
def attention(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    raise NotImplementedError  # your code


# %%
check("attention", attention)

# %% [markdown]
# **Exercise 3 — counting weights.** From a `GPTConfig` alone (vocab_size, block_size, n_layer, n_embd, bias),
# return how many weights `GPT(config)` has. Section 1's list of shapes shows every kind of parameter.

# %%
def gpt_num_parameters(config) -> int:
    raise NotImplementedError  # your code


# %%
check("gpt_num_parameters", gpt_num_parameters)
