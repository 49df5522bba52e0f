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
# LoRA adapts the weight matrices of a transformer (Vaswani et al. 2017, [arXiv 1706.03762](https://arxiv.org/abs/1706.03762)),
# so before adapting one we open it up. minilora ships a 2-layer, 64-wide GPT pretrained on four character skills
# (copy, reverse, shift by one letter, add); its file is `minilora/models/gpt.py`, about 200 lines, readable top to
# bottom, in the spirit of Karpathy's [nanoGPT](https://github.com/karpathy/nanoGPT).
#
# **What you will learn**
# - how characters become vectors: token and position embeddings, with their shapes;
# - self-attention step by step — queries, keys, values, scores, the causal mask, softmax — checked against the
#   model's own layer, and what its heads look at on a real prompt (heatmaps, and a table of where they look);
# - why the causal mask makes a language model: no position sees its future;
# - what pretraining looks like: the loss of a fresh model, and the skills' accuracy along the shipped model's own
#   pretraining (predict first which skill is slowest);
# - how `model.generate` samples text, greedily or with a temperature.
#
# **Read first:** [01 · autograd from scratch](01_autograd_from_scratch.ipynb). Next:
# [03 · LoRA's mathematics](03_lora_math.ipynb).
#
# **Run time:** 1–2 minutes with one BLAS thread (`OMP_NUM_THREADS=1 jupyter lab`), nearly all of it section 6's
# pretraining run; about 10 seconds with `MINILORA_FAST=1`, which shortens that run to 150 steps.

# %%
import course
import numpy as np
from checks import check
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

import minilora as ml
import minilora.functional as F
from minilora.data import NAMES_TOKENIZER, SKILL_TOKENIZER, get_task
from minilora.models import GPT
from minilora.models.zoo import RECIPES
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
# Two lookup tables: `tok_emb` ($V \times C$) gives each token id a $C = 64$-dimensional vector, `pos_emb`
# (block_size $\times C$) gives each position one. Their sum is the input of the first block.

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
# looks for), a **key** (what it offers) and a **value** (what it passes on). The $C = 64$ channels are split into
# $H = 4$ heads of $h = 16$ channels, each attending on its own.

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
# Scores: how well each query matches each key, $S = q k^\top / \sqrt{h}$. Dividing by $\sqrt{h}$ keeps the
# scores' spread independent of $h$: a dot product of $h$ independent unit-variance terms has variance $h$.

# %%
scores = (q @ k.transpose(0, 1, 3, 2)) * (1.0 / np.sqrt(h))  # (B, H, T, T): row = query, column = key
print("scores:", scores.shape)

# %% [markdown]
# The **causal mask**: position $t$ may look at positions $0..t$ only, never ahead (it is being trained to predict
# what comes next, so seeing it would be cheating). Scores above the diagonal become $-\infty$, which softmax turns
# into exactly 0.

# %%
future = np.triu(np.ones((T, T), dtype=bool), k=1)   # (T, T): True above the diagonal
print(future.astype(int))
weights = F.softmax(F.masked_fill(scores, ml.tensor(future), -np.inf), axis=-1)  # (B, H, T, T)
print("attention weights:", weights.shape, "  each row sums to", weights.numpy().sum(axis=-1)[0, 0].round(6))

# %% [markdown]
# Each position's output is the weighted average of the values, $\mathrm{softmax}(S + M)\,v$; the heads are put
# back side by side and mixed by `o_proj`. The result equals what the model's own attention layer computes (with
# its fused attention):

# %%
y_heads = weights @ v                                   # (B, H, T, h)
y = y_heads.transpose(0, 2, 1, 3).reshape(B, T, C)      # (B, T, C)
by_hand = block.attn.o_proj(y)                          # (B, T, C)
with ml.no_grad():
    by_model = block.attn(x_norm)
print(by_hand.shape, "max |by hand − model| =", float(np.abs(by_hand.numpy() - by_model.numpy()).max()))

# %% [markdown]
# ## 4. What the heads look at
# Now a whole example, `Rhello=olleh.`, through both blocks, keeping each head's attention weights. First in
# numbers: for the rows that write the answer (the positions from `=` on, each predicting the next character),
# the share of attention that goes to the tag `R`, to the input letters, to `=` itself and to the answer written so
# far — and to the one input letter a reversal needs next (for the row that predicts the answer's $j$-th letter,
# the $j$-th input letter from the right).

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

equals = text.index("=")
answer_rows = np.arange(equals, len(text) - 1)           # the rows that predict an answer character or the end
mirror = [(i, 2 * equals - 1 - i) for i in answer_rows if 2 * equals - 1 - i >= 1]  # (row, input letter it needs)
shares = []
for layer, pattern in enumerate(patterns):
    for head in range(H):
        w = pattern[head][answer_rows]                   # (rows, T)
        shares.append({"head": f"layer {layer}, head {head}", "tag": w[:, 0].mean(),
                       "input letters": w[:, 1:equals].sum(axis=1).mean(), "'='": w[:, equals].mean(),
                       "answer so far": w[:, equals + 1:].sum(axis=1).mean(),
                       "the letter a reversal needs": np.mean([pattern[head][i, j] for i, j in mirror])})
course.table(shares, digits=2)
for layer in range(len(patterns)):
    rows = shares[layer * H:(layer + 1) * H]
    means = {key: np.mean([r[key] for r in rows]) for key in ("tag", "input letters", "'='", "answer so far")}
    print(f"layer {layer}, mean over heads: " + ", ".join(f"{key} {value:.0%}" for key, value in means.items()))
top = max(shares, key=lambda r: r["the letter a reversal needs"])
print(f"the most 'mirror-like' head is {top['head']}: {top['the letter a reversal needs']:.0%} of its weight on the "
      f"letter a reversal needs, {'well below' if top['the letter a reversal needs'] < 0.5 else 'more than'} half")

# %% [markdown]
# **What these numbers say.** Each row of the table sums to 1 over its first four columns (the last column is a
# part of "input letters"). Compare the two printed means: layer 0 sends a large share of the answer rows'
# attention to `=` — the marker that tells a row where the answer starts, hence how far into it it is — while
# layer 1, which sees what layer 0 gathered, looks mostly at the input letters and more at the answer written so
# far. The last line is the surprise: no head is a clean "mirror" that looks straight at the letter it must copy
# next; the work is spread over heads and layers. The heatmaps show the same, one layer at a time (row = the
# position that predicts the next character, column = where it looks):

# %%
def show_layer(layer):
    """The attention weights of one layer's heads on ``text``, one heatmap per head."""
    fig = Figure(figsize=(7.6, 7.6), layout="constrained")
    for head, ax in enumerate(fig.subplots(2, 2).flat):
        ax.imshow(patterns[layer][head], cmap="Blues", vmin=0, vmax=1)
        ax.set_xticks(range(len(text)), list(text), fontsize=8)
        ax.set_yticks(range(len(text)), list(text), fontsize=8)
        ax.set_title(f"head {head}", fontsize=10)
        ax.set_xlabel("key (looked at)", fontsize=9)
        ax.set_ylabel("query (predicts the next)", fontsize=9)
    fig.suptitle(f"layer {layer}: attention weights on {text!r}")
    course.show(fig)


show_layer(0)

# %% [markdown]
# **What the figure says:** the upper triangle is exactly 0 (the causal mask), and each row is a probability
# distribution over the positions up to its own. In layer 0 the rows after `=` have a dark cell in the `=` column
# in the heads the table gives a large `'='` share: they locate the start of the answer.

# %%
show_layer(1)

# %% [markdown]
# **What the figure says:** in layer 1 the answer rows spread their weight over the input letters and over the
# answer written so far; no head draws the whole anti-diagonal a pure "mirror" would (row $i$ looking at column
# $2\cdot\text{pos}(=) - 1 - i$). Try other prompts (`Rabcdefg=gfedcba.`, `Sabc=bcd.`) by changing `text` above.
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
# **What these numbers say:** positions 0–3 print exactly 0 — not small, zero: nothing before position 4 can see
# it. Positions 4 and 5 change, because both see the changed character.
#
# ## 6. Pretraining: watching a model learn
# The shipped model was pretrained by the recipe `minilora pretrain --recipe skills`: a mixture of the four skills,
# batches of 64 examples, AdamW with a warm-up then a cosine decay (`minilora/models/zoo.py`, `RECIPES`).

# %%
recipe = RECIPES["skills"]
print(f"recipe 'skills': {recipe.steps:,} steps, batch {recipe.batch_size}, lr {recipe.lr}, "
      f"{recipe.warmup_steps} warm-up steps; it saved snapshots after steps {recipe.snapshots}")

# %% [markdown]
# **Exercise 1 — predict, then run: which skill is slowest?** Copy (`Chello=hello.`), reverse (`Rhello=olleh.`),
# shift (`Shello=ifmmp.`) and add (`A12+34=46.`) are learned together from the same batches. Which one will be the
# furthest from done (the lowest held-out accuracy) at step 4,000 of the recipe? Think about where, for each
# output character, the model must look in the input — and whether that place is the same for every character.
# Write `"copy"`, `"reverse"`, `"shift"` or `"add"`, check, then run the cells below.

# %%
slowest_skill = None  # your prediction: "copy", "reverse", "shift" or "add"

# %%
check("slowest_skill", slowest_skill)

# %% [markdown]
# First a fresh, randomly initialised GPT of the same shape trains on the same mixture for a shorter run, to see
# the loss fall and to time a step on this machine:

# %%
steps = course.fast_or_full(150, 3000)
task = get_task("pretrain", n_eval=100)
fresh = GPT(model.config, seed=0)
config = TrainConfig(steps=steps, batch_size=recipe.batch_size, lr=recipe.lr, warmup_steps=steps // 20)
result = train(fresh, task, config)
print(f"{steps:,} steps in {result.seconds:.0f} s: the recipe's {recipe.steps:,} steps would take about "
      f"{result.seconds / steps * recipe.steps / 60:.1f} minutes at this speed")
losses = [record["loss"] for record in result.history]
window = max(1, steps // 30)
print(f"smoothed loss: {smooth(losses, window)[window - 1]:.2f} after {window} steps -> "
      f"{smooth(losses, window)[-1]:.2f} after {steps:,}")

# %%
fig = Figure(figsize=(6.5, 3.4), layout="constrained")
ax = fig.add_subplot()
ax.plot(np.arange(1, steps + 1), losses, alpha=0.3, color="C0", label="per step")
ax.plot(np.arange(1, steps + 1), smooth(losses, window), color="C0", label=f"mean of {window} steps")
ax.set_xlabel("step")
ax.set_ylabel("training loss (nats per token)")
ax.set_yscale("log")
ax.set_yticks([t for t in (0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 3, 4) if min(losses) <= t <= max(losses)])
ax.yaxis.set_major_formatter("{x:g}")
ax.minorticks_off()
ax.set_xlim(0, steps + 1)
ax.xaxis.set_major_locator(MaxNLocator(integer=True))
ax.legend(loc="upper right")
fig.suptitle(f"a fresh GPT, {steps:,} steps of the skills mixture")
course.show(fig)

# %% [markdown]
# **What the figure says:** the loss falls fast at first (the model learns the format and which characters are
# common), then slowly (the skills themselves); per-step values scatter around the mean because each batch holds
# other examples. The printed estimate is how long the full recipe would take on this machine (measured in wall
# time: on a busy machine it grows).
#
# The loss alone does not say *which* skill is learned when. The recipe saved its model along the way, so the
# shipped pretraining itself can be scored at each snapshot (`ml.pretrained("skills", step=S)`; step 9,000 is the
# shipped model), by exact match on 100 held-out inputs per skill:

# %%
snapshot_steps = [*recipe.snapshots, recipe.steps]
along = {step: task.evaluate(ml.pretrained("skills", step=step))["by_skill"] for step in snapshot_steps}
skills = list(along[recipe.steps])
course.table([{"step": f"{step:,}", **{skill: along[step][skill]["accuracy"] for skill in skills}}
              for step in snapshot_steps], digits=2)

# %%
fig = Figure(figsize=(6.5, 3.6), layout="constrained")
ax = fig.add_subplot()
for skill in skills:
    ax.plot(snapshot_steps, [along[step][skill]["accuracy"] for step in snapshot_steps], "o-", label=skill)
ax.set_xscale("log")
ax.set_xticks(snapshot_steps, [f"{step:,}" for step in snapshot_steps])
ax.minorticks_off()
ax.set_xlabel("pretraining step (log scale)")
ax.set_ylabel("held-out exact match")
ax.set_ylim(-0.05, 1.05)
ax.legend(loc="upper left")
fig.suptitle("the shipped model's pretraining, scored at its snapshots")
course.show(fig)
at_4000 = {skill: along[4000][skill]["accuracy"] for skill in skills}
first_90 = {skill: next((s for s in snapshot_steps if along[s][skill]["accuracy"] >= 0.9), None) for skill in skills}
print("furthest from done at step 4,000:", min(at_4000, key=at_4000.get), f"({min(at_4000.values()):.0%})")
print("first snapshot at ≥ 90%:", {skill: step for skill, step in first_90.items()})

# %% [markdown]
# **What these numbers say:** the skills click into place one after another, not together. Copy and shift, where
# each output letter sits at a fixed offset from the input letter it comes from, are the first to pass 90%
# (printed). Addition starts last but then climbs fast. Reversal moves early and finishes late: the distance
# back to the letter it must copy grows by two with every letter written, and it is the one still far from done
# at step 4,000 — which is why the recipe runs 9,000 steps. (With `MINILORA_FAST=1` the fresh run above is too
# short to show any of this; the snapshots are the same in both modes.)
#
# ## 7. Sampling with `model.generate`
# Generation appends one token at a time: run the model, take the last position's logits, pick a token, repeat.
# At temperature 0 it picks the argmax (greedy) — how the skills are scored:

# %%
prompts = ["Chello=", "Rhello=", "Shello=", "A12+34=", "Rminilora="]
for p in prompts:
    out = model.generate(np.array([tok.encode(p)]), max_new_tokens=10, temperature=0)  # (1, T + 10)
    print(tok.decode(out[0]).split(".")[0] + ".")

# %% [markdown]
# With a temperature $\tau$ the next token is *sampled* from $\mathrm{softmax}(\text{logits}/\tau)$: below 1 the
# distribution sharpens, above 1 it flattens. The other shipped model, `ml.pretrained("names")`, learned 80,000
# US-Census surnames; here is its distribution over the letter that follows `.mc`:

# %%
names_model = ml.pretrained("names")
context = np.array([NAMES_TOKENIZER.encode(".mc")])
with ml.no_grad():
    last = names_model(context)[0].numpy()[0, -1]   # (V,) logits of the next character
letters = list(NAMES_TOKENIZER.itos)
fig = Figure(figsize=(9.5, 3.2), layout="constrained")
ax = fig.add_subplot()
for i, temperature in enumerate((0.5, 1.0, 2.0)):
    probs = np.exp(last / temperature - (last / temperature).max())
    probs /= probs.sum()
    ax.bar(np.arange(len(letters)) + (i - 1) * 0.27, probs, width=0.27, label=f"temperature {temperature}")
    top3 = np.argsort(probs)[::-1][:3]
    print(f"temperature {temperature}: top letters " + ", ".join(f"{letters[j]!r} {probs[j]:.2f}" for j in top3) +
          f";  entropy {-(probs * np.log(probs + 1e-30)).sum():.2f} nats")
ax.set_xticks(range(len(letters)), letters)
ax.set_xlabel("next character")
ax.set_ylabel("p(next | '.mc')")
ax.legend(loc="upper right")
course.show(fig)

# %% [markdown]
# **What the figure says:** the same logits give three distributions. At temperature 0.5 the top few letters take
# most of the probability; at 2 the probability is spread over many letters (the printed entropy grows with the
# temperature), so sampling picks unusual letters more often.

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
# **Exercise 2 — the mask, with a window.** Return a $(t, t)$ boolean array, True where query $i$ may attend to key
# $j$: causally, and — when `window` is a number $w$ — only to the last $w$ positions up to and including its own
# (a *sliding-window* mask, as in Longformer, Beltagy et al. 2020, [arXiv 2004.05150](https://arxiv.org/abs/2004.05150)).
# `window=None` is the plain causal mask. Note the convention: section 3's `future` is True where attention is
# *blocked*; here True means *allowed*.

# %%
def causal_mask(t: int, window: int | None = None) -> np.ndarray:
    raise NotImplementedError  # your code


# %%
check("causal_mask", causal_mask)

# %% [markdown]
# **Exercise 3 — attention in NumPy.** q, k, v are NumPy arrays of shape (B, H, T, h). Return
# $\mathrm{softmax}(q k^\top / \sqrt{h} + M)\,v$ with the causal mask $M$ ($-\infty$ where blocked), shape
# (B, H, T, h), with NumPy only (subtract each row's max before `np.exp`, as a stable softmax does).

# %%
def attention(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    raise NotImplementedError  # your code


# %%
check("attention", attention)

# %% [markdown]
# **Exercise 4 — counting weights.** From a `GPTConfig` alone (vocab_size, block_size, n_layer, n_embd, bias),
# return how many weights `GPT(config)` has, for *any* config. Section 1's list of shapes shows every kind of
# parameter; the check tries several configs.

# %%
def gpt_num_parameters(config) -> int:
    raise NotImplementedError  # your code


# %%
check("gpt_num_parameters", gpt_num_parameters)

# %% [markdown]
# ## Recap
# - A token becomes `tok_emb[id] + pos_emb[position]`, a $C$-vector; a block is `x + attn(ln_1(x))`, then
#   `x + mlp(ln_2(x))`.
# - Attention: $\mathrm{softmax}(q k^\top/\sqrt{h} + M)\,v$ per head, with $M = -\infty$ above the diagonal; the
#   heads are concatenated and mixed by `o_proj`. The four projections $W_q, W_k, W_v, W_o$ (each $C \times C$) and
#   the MLP's `fc_in` ($4C \times C$) and `fc_out` ($C \times 4C$) are the matrices LoRA adapts in
#   [03 · LoRA's mathematics](03_lora_math.ipynb).
# - The causal mask makes position $t$'s output independent of everything after $t$ — exactly, not approximately.
# - Pretraining teaches the skills one after another; the shipped snapshots let you see it without retraining.
# - `generate` samples from $\mathrm{softmax}(\text{logits}/\tau)$; $\tau = 0$ is greedy decoding.
#
# ## Questions
# 1. Why is it safe to compute the logits of *every* position in one forward pass during training, when at
#    generation time the model only ever sees the prefix?
# 2. The scores are divided by $\sqrt{h}$. What would happen to the softmax at initialisation if $h$ were 1,024 and
#    we did not divide?
# 3. Which of the model's 110,720 weights does a change of `block_size` from 32 to 64 add, and how many?
# 4. Reversal is learned last although each reversed output is as long as the copied one. What is different for
#    the model about *where* to look?
#
# <details><summary>Answers to check yourself against</summary>
#
# 1. The causal mask: row $t$ never sees positions after $t$, so its logits are the ones it would have produced
#    from the prefix alone (section 5 shows it).
# 2. The scores' spread would grow like $\sqrt{h}$ (here 32 times larger), the softmax would be nearly one-hot, and
#    its gradient nearly zero.
# 3. Only `pos_emb` grows: 32 more rows of 64, 2,048 weights.
# 4. For copy and shift the source of the next letter is a fixed distance back; for reversal the distance grows by
#    two with every letter written, so the model must compute it from the position relative to `=`.
#
# </details>
