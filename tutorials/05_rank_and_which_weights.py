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
# # 05 · Which rank, which weights
#
# [04](04_lora_side_by_side.ipynb) fine-tuned one LoRA adapter and found that a small rank does about as well as full
# fine-tuning. Two questions follow, the LoRA paper's Tables 6 and 5 (Hu et al. 2021,
# [arXiv 2106.09685](https://arxiv.org/abs/2106.09685)):
#
# - **Does a tiny rank suffice?** Train LoRA at r = 1, 2, 4, ... on the same task and compare.
# - **Which weights should a fixed budget go to?** Spend the same number of trainable parameters on $W_q$ alone,
#   on $W_q$ and $W_v$, on all four attention matrices, on the MLP, ... and compare.
#
# A single run answers neither: two runs that differ only in the seed (LoRA's A initialisation, the order of the
# batches) differ in accuracy too. So every configuration runs with several seeds, and a difference counts only
# when it is larger than the spread between seeds.
#
# **What you will learn**
# - how a sweep is a list of *run specs* (plain dicts) run by one runner, `run_sweep`, resumable and parallel;
# - the rank sweep, with the paper's scaling $s = \alpha / r$ and rsLoRA's $s = \alpha / \sqrt{r}$, mean ± std over
#   seeds, and how to tell a finding from seed noise;
# - how a parameter budget turns into a rank per weight type: $r = \mathrm{round}\left(P / \sum (d + k)\right)$;
# - what α does to a large rank's training, predicted and then run;
# - how to read the shipped full results (`figures/lora-rank-sweep.json`, `figures/lora-budget.json`).
#
# **Read first:** [03 LoRA's mathematics](03_lora_math.ipynb) ($r(d + k)$, the scaling),
# [04 side by side](04_lora_side_by_side.ipynb). Next: [06 what LoRA learns](06_what_lora_learns.ipynb).
#
# **Run time:** about 1½ minutes on one core with `OMP_NUM_THREADS=1` (how `tutorials/render.py` runs it; up to 5 on
# a busy machine); about 20 seconds with `MINILORA_FAST=1 OMP_NUM_THREADS=1` (fewer ranks, seeds and steps: the
# pipeline, not a finding). The sweeps below are short on purpose; the shipped results in section 6 are the real ones.

# %%
import json
import tempfile
from pathlib import Path

import course
import numpy as np
from checks import check
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

import minilora as ml
from minilora.data import get_task
from minilora.experiments.budget import BUDGET_GROUPS, Budget, budget_rank
from minilora.experiments.lora_paper import format_summary, lora_paper
from minilora.experiments.rank_sweep import RankSweep
from minilora.lora import LoraConfig, apply_lora, find_targets
from minilora.models.zoo import pretrained
from minilora.train import TrainConfig, train

work = Path(tempfile.mkdtemp())  # this notebook's runs (a temporary folder)
FIGURES = Path("..") / "figures"  # the shipped full results, when present

# %% [markdown]
# ## 1. The weights LoRA can adapt
# The shipped skills model has two transformer blocks. Each has four 64 × 64 attention projections and an MLP of
# two matrices, 256 × 64 and 64 × 256. A rank-r adapter on a $d \times k$ matrix costs $r(d + k)$ parameters.
# One block (the other is the same):

# %%
model = pretrained("skills")
ALL_SIX = ("q_proj", "k_proj", "v_proj", "o_proj", "fc_in", "fc_out")
course.table([{"matrix": name, "d × k": f"{layer.weight.shape[0]} × {layer.weight.shape[1]}",
               "d·k (full)": f"{layer.weight.size:,}", "d + k (one rank of LoRA)": sum(layer.weight.shape)}
              for name, layer in find_targets(model, LoraConfig(r=1, target_modules=ALL_SIX))
              if name.startswith("blocks.0.")])

# %% [markdown]
# **What these numbers say:** one rank costs 128 parameters on an attention matrix and 320 on an MLP matrix, against
# 4,096 and 16,384 for the matrix itself: even r = 8 on every matrix of a block is
# $8 \cdot (4 \cdot 128 + 2 \cdot 320) = 9{,}216$ of its 49,152 weights.
#
# ## 2. A sweep is a list of run specs
# `RankSweep` describes the experiment; `specs()` lists its runs, one plain dict each. Each says everything about a
# run (task, base model, method, rank, scaling, steps, seed), so any worker process can run it and get the same
# numbers, and a finished run is saved under a key computed from its spec (an interrupted sweep resumes).

# %%
if course.FAST:  # one task, two ranks, two seeds, 30 steps: the pipeline, not a finding
    rank_settings = RankSweep(tasks=(("reverse-shift", "skills"),), ranks=(1, 8), seeds=(0, 1), steps=30,
                              skill_task_kwargs=(("n_eval", 50),))
else:  # three ranks, three seeds, 100 steps (the shipped figure: seven ranks, three tasks, 400 steps)
    rank_settings = RankSweep(tasks=(("reverse-shift", "skills"),), ranks=(1, 4, 16), seeds=(0, 1, 2), steps=100,
                              skill_task_kwargs=(("n_eval", 200),))
specs = rank_settings.specs()
print(f"{len(specs)} runs; the first two:")
for spec in specs[:2]:
    print(json.dumps(spec))

# %% [markdown]
# The base model without fine-tuning is evaluated once (evaluation is deterministic); then, for every seed, full
# fine-tuning and LoRA at every rank, with $s = \alpha / r$ and with $s = \alpha / \sqrt{r}$ ($\alpha = 1$: both are
# 1 at r = 1, where the learning rate was chosen, and part as r grows).
#
# ## 3. Run it, and read it with seeds
# `lora_paper` runs the specs with `run_sweep` (here in this process, `jobs=1`) and writes the summary as JSON;
# `format_summary` prints every number as mean ± std over the seeds.

# %%
results = lora_paper(out=work, runs=work / "runs", only=["rank"], settings={"rank": rank_settings}, jobs=1)
print(format_summary(results))
rows = results["rank"]["rows"]

# %% [markdown]
# **Exercise 1 — mean and spread over seeds.** Every number above is a mean ± std over seeds. Write
# `seed_mean_std(values)` returning `(mean, std)` of a list of per-seed values, with the standard deviation the
# sweeps report: the seeds are a *sample* of all the seeds one could have run,
# $s = \sqrt{\frac{1}{n - 1} \sum_i (x_i - \bar x)^2}$. Then compare it with a row of the sweep.

# %%
def seed_mean_std(values):
    raise NotImplementedError  # your code


# %%
check("seed_mean_std", seed_mean_std)

# %%
one = next(r for r in rows if r["method"] == "lora")
print("one row:", {k: one[k] for k in ("method", "scaling", "rank", "s", "trainable_params", "values", "mean", "std")})
try:
    print("yours:  ", seed_mean_std(one["values"]))
except NotImplementedError:
    print("(write seed_mean_std above to compare)")

# %% [markdown]
# Every row keeps each seed's value, so a figure can show the spread: bars are ± one standard deviation, dots the
# single seeds; full fine-tuning is the dashed line with its band, the untouched model the dotted line.

# %%
SCALINGS = (("alpha/r", "LoRA, s = α/r"), ("alpha/sqrt(r)", "rsLoRA, s = α/√r"))


def metric_name(metric):
    return "bits per char (lower is better)" if metric == "bits_per_char" else "held-out exact match"


def draw_rank_sweep(result, task):
    """Metric against rank for both scalings (mean ± std, seed dots), full fine-tuning and the base model."""
    mine = [r for r in result["rows"] if r["task"] == task]
    settings = result["settings"]
    fig = Figure(figsize=(8.5, 3.6), layout="constrained")
    ax = fig.add_subplot()
    for i, (scaling, label) in enumerate(SCALINGS):
        lora = sorted((r for r in mine if r["scaling"] == scaling), key=lambda r: r["rank"])
        x = np.array([r["rank"] for r in lora], dtype=float) * (1.06 if i else 1 / 1.06)  # side by side
        ax.errorbar(x, [r["mean"] for r in lora], yerr=[r["std"] for r in lora], fmt="o-", ms=4, capsize=3,
                    color=f"C{i}", label=label)
        for xi, r in zip(x, lora):
            ax.plot([xi] * len(r["values"]), r["values"], ".", color=f"C{i}", alpha=0.4)
    for method, style, name in (("full", {"color": "black", "ls": "--"}, "full fine-tuning"),
                                ("none", {"color": "gray", "ls": ":"}, "no fine-tuning")):
        row = next(r for r in mine if r["method"] == method)
        ax.axhline(row["mean"], label=name, **style)
        if row["std"]:
            ax.axhspan(row["mean"] - row["std"], row["mean"] + row["std"], color=style["color"], alpha=0.08)
    ranks = sorted({r["rank"] for r in mine if r["method"] == "lora"})
    ax.set_xscale("log", base=2)
    ax.set_xticks(ranks, [str(r) for r in ranks])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("LoRA rank r")
    ax.set_ylabel(metric_name(mine[0]["metric"]))
    ax.set_title(f"{task}: mean ± std over {len(settings['seeds'])} seeds, {settings['steps']} steps, "
                 f"α = {settings['alpha']:g}")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


course.show(draw_rank_sweep(results["rank"], "reverse-shift"))

# %% [markdown]
# **Reading it with seeds.** Compare the gap between two configurations with the spread of each: the gap in units of
# their combined standard deviation, $z = \Delta / \sqrt{\sigma_1^2 + \sigma_2^2}$. With $|z|$ below about 2 these
# seeds do not tell the two apart. Each LoRA row against full fine-tuning:

# %%
def z_score(a, b):
    """(a − b) / √(σa² + σb²) for two rows with mean and std (None when both spreads are 0)."""
    spread = (a["std"] ** 2 + b["std"] ** 2) ** 0.5
    return (a["mean"] - b["mean"]) / spread if spread > 0 else None


full = next(r for r in rows if r["method"] == "full")
gaps = [{"scaling": r["scaling"], "r": r["rank"], "LoRA": f"{r['mean']:.3f} ± {r['std']:.3f}",
         "minus full": f"{r['mean'] - full['mean']:+.3f}",
         "z": "–" if z_score(r, full) is None else f"{z_score(r, full):+.1f}"}
        for r in rows if r["method"] == "lora"]
course.table(gaps)

# %% [markdown]
# **What these numbers say:**

# %%
def say_rank_sweep(result, task):
    """The rank sweep of ``task`` in sentences, from its numbers: the best rank of each scaling, the ranks the seeds
    cannot tell from it, and the two scalings compared at the largest rank."""
    mine = [r for r in result["rows"] if r["task"] == task]
    sign = -1 if mine[0]["metric"] == "bits_per_char" else 1  # bits per char: lower is better
    full = next(r for r in mine if r["method"] == "full")
    lines = []
    for scaling, label in SCALINGS:
        lora = sorted((r for r in mine if r["scaling"] == scaling), key=lambda r: r["rank"])
        best = max(lora, key=lambda r: sign * r["mean"])
        alike = [r["rank"] for r in lora if r is best or abs(z_score(r, best) or 0.0) < 2]
        lines.append(f"{label}: best r = {best['rank']} ({best['mean']:.3f} ± {best['std']:.3f}); seeds cannot tell "
                     f"r = {', '.join(map(str, alike))} apart from it. Full fine-tuning: {full['mean']:.3f}.")
    top = max(r["rank"] for r in mine if r["method"] == "lora")
    plain, rs = (next(r for r in mine if r["scaling"] == s and r["rank"] == top) for s, _ in SCALINGS)
    z = z_score(rs, plain)
    better = sign * (rs["mean"] - plain["mean"]) > 0
    lines.append(f"At r = {top}, rsLoRA minus LoRA = {rs['mean'] - plain['mean']:+.3f}"
                 + ("" if z is None else f" (z = {z:+.1f})") + ": "
                 + ("a real difference, rsLoRA " + ("better" if better else "worse")
                    if z is not None and abs(z) >= 2 else "not told apart by these seeds") + ".")
    return "\n".join(lines)


print(say_rank_sweep(results["rank"], "reverse-shift"))
if course.FAST:
    print("(MINILORA_FAST=1: 30 steps and two seeds; these numbers only show the pipeline.)")

# %% [markdown]
# ## 4. A fixed budget: which weights?
# The paper fixes the number of trainable parameters and spends it on different weight types. Here the budget is
# rank 8 on $W_q$: $8 \cdot (64 + 64)$ per layer, two layers, $P = 2{,}048$ parameters. Each group of weight types
# gets the rank that spends it.
#
# **Exercise 2 — the rank a budget buys (predict the table).** Given a budget of trainable parameters and the
# (d, k) shapes of the matrices to adapt (one entry per matrix, every layer), return the rank that spends it: the
# nearest whole rank, at least 1, at most the smallest $\min(d, k)$. Check it, then run the table below and compare
# with your function.

# %%
def rank_for_budget(budget, shapes):
    raise NotImplementedError  # your code


# %%
check("rank_for_budget", rank_for_budget)

# %%
budget = Budget().budget("skills")
table = []
for label, targets in BUDGET_GROUPS:
    shapes = [layer.weight.shape for _, layer in find_targets(model, LoraConfig(r=1, target_modules=targets))]
    r = budget_rank("skills", targets, budget)
    cost = sum(d + k for d, k in shapes)
    table.append({"weights": label, "Σ(d + k)": f"{cost:,}", "r": r, "parameters r·Σ(d + k)": f"{r * cost:,}"})
print(f"budget: {budget:,} trainable parameters")
course.table(table)

# %% [markdown]
# **What these numbers say:** the attention rows spend the budget exactly (r = 8, 4, 2: each doubling of the weight
# types halves r); the MLP's matrices cost 320 per rank, so their rows get the nearest whole rank and spend 2,560
# (r = 2) and 2,304 (r = 1, everything). Now train every group with two (fast) or three seeds:

# %%
if course.FAST:
    budget_settings = Budget(tasks=(("reverse-shift", "skills"),), groups=BUDGET_GROUPS[:2] + BUDGET_GROUPS[4:6],
                             seeds=(0, 1), steps=30, skill_task_kwargs=(("n_eval", 50),))
else:
    budget_settings = Budget(tasks=(("reverse-shift", "skills"),), seeds=(0, 1, 2), steps=100,
                             skill_task_kwargs=(("n_eval", 200),))
results_budget = lora_paper(out=work, runs=work / "runs", only=["budget"],
                            settings={"budget": budget_settings}, jobs=1)
print(format_summary(results_budget))


def draw_budget(result, task):
    """One bar per group of weight types (mean ± std over seeds, seed dots), labelled with rank and parameters."""
    mine = [r for r in result["rows"] if r["task"] == task]
    fig = Figure(figsize=(8, 0.9 + 0.42 * len(mine)), layout="constrained")
    ax = fig.add_subplot()
    y = np.arange(len(mine))[::-1]
    ax.barh(y, [r["mean"] for r in mine], xerr=[r["std"] for r in mine], capsize=3, color="C0", alpha=0.7)
    for yi, r in zip(y, mine):
        ax.plot(r["values"], [yi] * len(r["values"]), ".", color="black", alpha=0.6)
        ax.annotate(f"r = {r['rank']}, {r['trainable_params']:,}", (max(r["mean"] + r["std"], r["max"]), yi),
                    textcoords="offset points", xytext=(6, 0), va="center", fontsize=8)
    ax.set_yticks(y, [r["group"] for r in mine])
    top = max(1.0, max(r["max"] for r in mine))
    ax.set_xlim(0, top * 1.3)  # room for the labels
    ax.set_xticks(np.linspace(0, top, 6))
    ax.set_xlabel(metric_name(mine[0]["metric"]))
    ax.set_title(f"{task}, budget {mine[0]['budget']:,}: mean ± std over {len(result['settings']['seeds'])} seeds, "
                 f"{result['settings']['steps']} steps")
    return fig


course.show(draw_budget(results_budget["budget"], "reverse-shift"))

# %% [markdown]
# **What this figure says:**

# %%
def say_budget(result, task):
    """The budget table of ``task`` in sentences: the best group, those the seeds cannot tell from it, and the
    paper's comparison (W_q, W_v at r = 4 against W_q alone at r = 8)."""
    mine = {r["group"]: r for r in result["rows"] if r["task"] == task}
    best = max(mine.values(), key=lambda r: r["mean"])
    alike = [g for g, r in mine.items() if r is not best and abs(z_score(r, best) or 0.0) < 2]
    text = (f"Best: {best['group']} at r = {best['rank']} ({best['mean']:.3f} ± {best['std']:.3f})"
            + (f"; the seeds cannot tell {', '.join(f'[{g}]' for g in alike)} from it." if alike else
               "; every other group is below it "
               "by more than 2 combined standard deviations."))
    if "W_q" in mine and "W_q, W_v" in mine:
        z = z_score(mine["W_q, W_v"], mine["W_q"])
        text += (f"\nThe paper's comparison: W_q, W_v at r = 4 minus W_q at r = 8 = "
                 f"{mine['W_q, W_v']['mean'] - mine['W_q']['mean']:+.3f}" + ("" if z is None else f" (z = {z:+.1f})")
                 + (": spreading the budget wins, as in the paper." if z is not None and z >= 2 else
                    ": not a clear win for spreading the budget here."))
    return text


print(say_budget(results_budget["budget"], "reverse-shift"))
if course.FAST:
    print("(MINILORA_FAST=1: 30 steps and four of the eight groups; these numbers only show the pipeline.)")

# %% [markdown]
# ## 5. α, r and the learning rate
# LoRA's update is $\Delta W = s \, B A = s \sum_{i=1}^{r} b_i a_i^\top$, a sum of r rank-one directions, each
# multiplied by the same $s$: the paper's $s = \alpha / r$, or rsLoRA's $s = \alpha / \sqrt{r}$ (Kalajdzievski 2023,
# [arXiv 2312.03732](https://arxiv.org/abs/2312.03732)). α is a number you choose, and so is the learning rate: do
# they do the same thing?
#
# **Exercise 3 — change α, predict the loss curve.** Train LoRA at r = 16 (s = α/r) with one learning rate
# (1e-2, the one chosen at s = 1) and three values of α: 1, 4 and 16. Which α makes the training loss fall fastest
# at first — `1`, `4` or `16` — or is it `"same"` for all three (Adam normalises the gradients, after all)? Write
# your prediction, check it, then run the three runs.

# %%
fastest_alpha = None  # your prediction: 1, 4, 16 or "same"

# %%
check("fastest_alpha", fastest_alpha)

# %%
alpha_steps = course.fast_or_full(40, 200)
alpha_task = get_task("reverse-shift", n_eval=course.fast_or_full(50, 200))
alpha_runs = {}
for alpha in (1, 4, 16):
    lora_model = apply_lora(ml.pretrained("skills"), LoraConfig(r=16, lora_alpha=alpha,
                                                                target_modules=("q_proj", "v_proj", "fc_in", "fc_out")))
    alpha_runs[alpha] = train(lora_model, alpha_task, TrainConfig(steps=alpha_steps, lr=1e-2, weight_decay=0.0,
                                                                  warmup_steps=max(1, alpha_steps // 20)))
course.show(course.loss_figure([(f"α = {alpha}  (s = {alpha}/16)", result.history, f"C{i}")
                                for i, (alpha, result) in enumerate(alpha_runs.items())],
                               "LoRA r = 16, lr 1e-2: three values of α"))

# %% [markdown]
# **What this figure says:**

# %%
quarter = max(1, alpha_steps // 4)
early = {alpha: float(np.mean([h["loss"] for h in r.history[:quarter]])) for alpha, r in alpha_runs.items()}
order = sorted(early, key=early.get)
print(f"Mean training loss over the first {quarter} steps: "
      + ", ".join(f"α = {a}: {early[a]:.3g}" for a in alpha_runs) + ".")
print(f"Fastest at first: α = {order[0]}, slowest: α = {order[-1]}. Exact match after {alpha_steps} steps: "
      + ", ".join(f"α = {a}: {r.final_metrics['accuracy']:.3f}" for a, r in alpha_runs.items()) + ".")

# %% [markdown]
# Adam moves each entry of B by about the learning rate per step whatever its gradient's size, so after the same
# steps $BA$ is about the same for every α, and $\Delta W = \frac{\alpha}{r} BA$ is α times larger: at r = 16,
# α = 16 gives s = 1, the scale at which the learning rate was chosen. This is the rank sweep's α/r curve in
# miniature: at a fixed α, a larger r means a smaller s, as if the learning rate had been cut. With α and the
# learning rate fixed, $s = \alpha / r$ makes the update of a larger rank *smaller* — early in training
# $\lVert \Delta W \rVert_F \propto 1/\sqrt{r}$ ([03](03_lora_math.ipynb) §5 simulates it) — so a larger rank needs a
# larger α or learning rate to move as fast, while rsLoRA's $s = \alpha / \sqrt{r}$ keeps the update about the same
# size at every rank.
#
# ## 6. The full results
# The runs above are short. The shipped results come from `minilora lora-paper --out figures`: three tasks, ranks 1
# to 64, three seeds, 400 steps per run (with the budget table, about 190 runs). When their JSON is in `figures/`:

# %%
shipped = {name: FIGURES / f"{name}.json" for name in ("lora-rank-sweep", "lora-budget")}
sweep = json.loads(shipped["lora-rank-sweep"].read_text()) if shipped["lora-rank-sweep"].is_file() else None
if sweep is None:
    print(f"{shipped['lora-rank-sweep']} is not there yet: `minilora lora-paper --out figures` computes it")
else:
    sweep_tasks = list(dict.fromkeys(r["task"] for r in sweep["rows"]))
    print(f"{shipped['lora-rank-sweep']}: tasks {', '.join(sweep_tasks)}; ranks {sweep['settings']['ranks']}, "
          f"{len(sweep['settings']['seeds'])} seeds, {sweep['settings']['steps']} steps")
    course.show(draw_rank_sweep(sweep, sweep_tasks[0]))

# %% [markdown]
# **What this figure says** (reverse-shift, a skill near the pretraining ones):

# %%
if sweep is not None:
    print(say_rank_sweep(sweep, sweep_tasks[0]))

# %% [markdown]
# The same sweep on a skill far from the pretraining ones, sorting the letters:

# %%
if sweep is not None and len(sweep_tasks) > 1:
    course.show(draw_rank_sweep(sweep, sweep_tasks[1]))
    print(say_rank_sweep(sweep, sweep_tasks[1]))

# %% [markdown]
# And on the other shipped model, the names GPT adapting from surnames to first names (bits per character, lower is
# better):

# %%
if sweep is not None and len(sweep_tasks) > 2:
    course.show(draw_rank_sweep(sweep, sweep_tasks[2]))
    print(say_rank_sweep(sweep, sweep_tasks[2]))

# %% [markdown]
# (A rank whose seeds spread widely can be "not told apart" from the best although its mean is lower: three seeds are
# few, and the rule says only what these seeds can show.)
#
# Where a task is close to what the model knows, a few ranks reach the plateau and more add nothing beyond the seeds'
# spread (the paper: r = 1 to 8 are alike on GPT-3's $W_q, W_v$). On the far task more rank keeps helping, and there
# the scaling matters: with α fixed, α/r turns the extra directions down while α/√r lets them work. Short runs
# answer for short runs only: a gap that closes with more steps is a question of speed, not of capacity.
#
# The shipped budget table, task by task:

# %%
table_budget = json.loads(shipped["lora-budget"].read_text()) if shipped["lora-budget"].is_file() else None
if table_budget is None:
    print(f"{shipped['lora-budget']} is not there yet: `minilora lora-paper --out figures` computes it")
else:
    budget_tasks = list(dict.fromkeys(r["task"] for r in table_budget["rows"]))
    course.show(draw_budget(table_budget, budget_tasks[0]))
    print(say_budget(table_budget, budget_tasks[0]))

# %%
if table_budget is not None and len(budget_tasks) > 1:
    course.show(draw_budget(table_budget, budget_tasks[1]))
    print(say_budget(table_budget, budget_tasks[1]))

# %% [markdown]
# **What these figures say, together:** the best single weight type at r = 8 against the best spread of the same
# budget over several types:

# %%
SINGLE = ("W_q", "W_k", "W_v", "W_o")
if table_budget is not None:
    for task in budget_tasks:
        mine = [r for r in table_budget["rows"] if r["task"] == task]
        single = max((r for r in mine if r["group"] in SINGLE), key=lambda r: r["mean"])
        spread_over = max((r for r in mine if r["group"] not in SINGLE), key=lambda r: r["mean"])
        z = z_score(spread_over, single)
        verdict = ("spreading wins" if z is not None and z >= 2 else "one type wins" if z is not None and z <= -2
                   else "the seeds cannot tell them apart")
        print(f"{task}: best single type [{single['group']}] {single['mean']:.3f} ± {single['std']:.3f}, best spread "
              f"[{spread_over['group']}] {spread_over['mean']:.3f} ± {spread_over['std']:.3f}: {verdict}"
              + ("" if z is None else f" (z = {z:+.1f})") + ".")

# %% [markdown]
#
# ## Recap
# - A sweep is a list of run specs run by one runner; every configuration runs with several seeds, and a gap counts
#   only when it is large against the seeds' spread ($|z| \gtrsim 2$).
# - On a near skill a small rank reaches the plateau; on a far skill more rank helps when the scaling lets it
#   ($\alpha / \sqrt{r}$: sort rises up to r = 64), while with $\alpha / r$ at a fixed α it stalls after r = 4.
# - $s = \alpha / r$ scales each rank-one direction by $1/r$ at a fixed α: a larger rank needs a larger α or learning
#   rate; rsLoRA's $\alpha / \sqrt{r}$ keeps the update's size stable across ranks.
# - A fixed budget buys $r = \mathrm{round}(P / \sum (d + k))$ on the chosen weights; in the shipped runs, spread
#   over several weight types at a low rank it did as well as or better than the best single type at r = 8.
#
# ## Questions
# 1. The rank sweep used α = 1 with both scalings. Why do the two curves agree at r = 1 and part at larger r? Which
#    one would you expect to need its learning rate retuned for every rank?
# 2. With three seeds, two configurations differ by 0.01 and each has a std of 0.01. What would you do before
#    writing "A beats B" in a report?
# 3. Why does a budget spent on $W_q$ alone at r = 8 do worse, on these tasks, than the same budget on $W_q, W_v$ at
#    r = 4, although it has twice the rank per matrix?
# 4. The MLP matrices are 256 × 64. What is the largest rank LoRA allows on them, and why can a larger rank not add
#    anything?
#
# <details><summary>Answers, briefly</summary>
#
# 1. At r = 1, α/r = α/√r = 1. At r = 16, α/r = 1/16 but α/√r = 1/4; the plain scaling shrinks the update as r
#    grows, so it needs a larger lr (or α) at every larger rank; that is rsLoRA's argument.
# 2. Run more seeds (the std of a mean falls as $1/\sqrt{n}$), and report the gap with its spread, not a winner.
# 3. Two weight types give the update two places to act (what is attended to and what is read out); the extra rank
#    on one matrix adds directions the task may not need (see [06](06_what_lora_learns.ipynb)).
# 4. $\min(256, 64) = 64$: $BA$ is a 256 × 64 matrix and cannot have rank above 64.
#
# </details>
