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
# Notebook 04 fine-tuned one LoRA adapter and found that a small rank does about as well as full fine-tuning.
# Two questions follow, the LoRA paper's Tables 6 and 5 (Hu et al. 2021, arXiv 2106.09685):
#
# - **Does a tiny rank suffice?** Train LoRA at r = 1, 2, 4, ... on the same task and compare.
# - **Which weights should a fixed budget go to?** Spend the same number of trainable parameters on W_q alone,
#   on W_q and W_v, on all four attention matrices, on the MLP, ... and compare.
#
# A single run answers neither: two runs that differ only in the seed (LoRA's A initialisation, the order of the
# batches) differ in accuracy too. So every configuration runs with several seeds, and a difference counts only
# when it is larger than the spread between seeds.
#
# **What you will learn**
# - how a sweep is a list of *run specs* (plain dicts) run by one runner, `run_sweep`, resumable and parallel;
# - the rank sweep, with the paper's scaling s = α/r and rsLoRA's s = α/√r, mean ± std over seeds;
# - how a parameter budget turns into a rank per weight type: r = round(budget / Σ(d + k));
# - how to read the shipped full results (`figures/lora-rank-sweep.json`, `figures/lora-budget.json`).
#
# **Read first:** `03_lora_math` (r(d + k)), `04_lora_side_by_side`. Next: `06_what_lora_learns`.
# Runs in about 1–2 minutes at one thread (under a minute with `MINILORA_FAST=1`: fewer ranks, seeds and steps).

# %%
import json
import tempfile
from pathlib import Path

import course
from checks import check
from IPython.display import Image, display

from minilora.experiments.budget import BUDGET_GROUPS, Budget, budget_rank
from minilora.experiments.lora_paper import format_summary, lora_paper
from minilora.experiments.rank_sweep import RankSweep
from minilora.lora import LoraConfig, find_targets
from minilora.models.zoo import pretrained
from minilora.plots import plot_lora_budget, plot_rank_sweep

work = Path(tempfile.mkdtemp())  # this notebook's runs and figures (a temporary folder)
FIGURES = Path("..") / "figures"  # the shipped full results, when present


def show_png(path):
    """Display a PNG that minilora.plots wrote."""
    display(Image(filename=str(path)))


# %% [markdown]
# ## 1. The weights LoRA can adapt
# The shipped skills model has two transformer blocks. Each has four 64 × 64 attention projections and an MLP of
# two matrices, 256 × 64 and 64 × 256. A rank-r adapter on a d × k matrix costs r(d + k) parameters:

# %%
model = pretrained("skills")
for name, layer in find_targets(model, LoraConfig(r=1, target_modules=("q_proj", "k_proj", "v_proj", "o_proj",
                                                                       "fc_in", "fc_out"))):
    d, k = layer.weight.shape
    print(f"{name:22s} W {d:3d} × {k:3d}   d·k = {d * k:6,}   one rank costs d + k = {d + k}")

# %% [markdown]
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
# fine-tuning and LoRA at every rank, with s = α/r and with s = α/√r (α = 1: both are 1 at r = 1, where the
# learning rate was chosen, and part as r grows).
#
# ## 3. Run it
# `lora_paper` runs the specs with `run_sweep` (here in this process, `jobs=1`) and writes the summary as JSON;
# `format_summary` prints every number as mean ± std over the seeds.

# %%
results = lora_paper(out=work, runs=work / "runs", only=["rank"], settings={"rank": rank_settings}, jobs=1)
print(format_summary(results))

# %% [markdown]
# Every row keeps each seed's value, so the plot can show the spread: bars are ± one standard deviation, dots the
# single seeds; full fine-tuning is the dashed line with its band, the untouched model the dotted line.

# %%
rows = results["rank"]["rows"]
print("one row:",
      {k: rows[2][k] for k in ("method", "scaling", "rank", "s", "trainable_params", "values", "mean", "std")})
show_png(plot_rank_sweep(results["rank"], work / "lora-rank-sweep.png"))

# %% [markdown]
# **Reading it with seeds.** Compare the gap between two ranks with the spread of each. Below: each LoRA row's
# distance from full fine-tuning, in units of their combined standard deviation (|Δ| / √(σ₁² + σ₂²)); a value
# below about 2 says the two are not told apart by these seeds.

# %%
full = next(r for r in rows if r["method"] == "full")
for r in rows:
    if r["method"] == "lora":
        spread = (r["std"] ** 2 + full["std"] ** 2) ** 0.5
        gap = r["mean"] - full["mean"]
        print(f"{r['scaling']:14s} r={r['rank']:<3d} {r['mean']:.3f} ± {r['std']:.3f}   vs full: {gap:+.3f}"
              + (f"  = {gap / spread:+.1f} σ" if spread > 0 else ""))

# %% [markdown]
# ## 4. A fixed budget: which weights?
# The paper fixes the number of trainable parameters and spends it on different weight types. Here the budget is
# rank 8 on W_q: 8 · (64 + 64) per layer, two layers = 2,048 parameters. Each group gets the rank that spends it,
# r = round(budget / Σ(d + k)) (`budget_rank`):

# %%
budget = Budget().budget("skills")
print(f"budget: {budget:,} trainable parameters")
for label, targets in BUDGET_GROUPS:
    r = budget_rank("skills", targets, budget)
    cost = sum(d + k for d, k in (layer.weight.shape
                                  for _, layer in find_targets(model, LoraConfig(r=1, target_modules=targets))))
    print(f"  {label:22s} Σ(d + k) = {cost:5,}   r = {r}   → {r * cost:6,} parameters")

# %% [markdown]
# The attention rows spend the budget exactly (r = 8, 4, 2); the MLP's matrices cost more per rank, so they get
# the nearest whole rank. Now train every group with two (fast) or three seeds:

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
show_png(plot_lora_budget(results_budget["budget"], work / "lora-budget.png"))

# %% [markdown]
# ## 5. The full results
# The runs above are short (the fast ones only show the pipeline). The shipped figures come from
# `minilora lora-paper --out figures`: three tasks, ranks 1 to 64, three seeds, 400 steps per run (about 190 runs).
# When their JSON is in `figures/`, here they are:

# %%
shipped = {name: FIGURES / f"{name}.json" for name in ("lora-rank-sweep", "lora-budget")}
for name, path in shipped.items():
    if path.is_file():
        result = json.loads(path.read_text())
        drawer = plot_rank_sweep if name == "lora-rank-sweep" else plot_lora_budget
        print(f"{path}: the full run")
        show_png(drawer(result, work / f"shipped-{name}.png"))
    else:
        print(f"{path} is not there yet: `minilora lora-paper --out figures` computes it (about 20 "
              "minutes on two cores)")

# %% [markdown]
# What to look for, in the runs above and in the full ones: does accuracy still rise beyond a few ranks, or is it
# flat within the seeds' spread (the paper: r = 1 to 8 are alike on GPT-3's W_q, W_v)? With α fixed, plain α/r
# shrinks the update of a large rank, so a large rank learns more slowly in a short run; rsLoRA's α/√r shrinks it
# less. Under a fixed budget, is a low rank on several weight types better than a high rank on one (the paper:
# W_q and W_v together at r = 4 beat W_q alone at r = 8)? Short runs answer for short runs only: a gap that closes
# with more steps is a question of speed, not of capacity.
#
# ## Exercises
# Each exercise cell raises `NotImplementedError` until you fill it in; the cell after it checks your answer.
# Solutions: `tutorials/solutions/05_rank_and_which_weights.py` (try first!).
#
# **Exercise 1 — the rank a budget buys.** Given a budget of trainable parameters and the (d, k) shapes of the
# matrices to adapt (one entry per matrix, every layer), return the rank that spends it: rounded, at least 1,
# at most the smallest min(d, k).

# %%
def rank_for_budget(budget, shapes):
    raise NotImplementedError  # your code


# %%
check("rank_for_budget", rank_for_budget)

# %% [markdown]
# **Exercise 2 — mean and spread over seeds.** Return `(mean, std)` of a list of per-seed values, with the
# standard deviation the sweeps report.

# %%
def seed_mean_std(values):
    raise NotImplementedError  # your code


# %%
check("seed_mean_std", seed_mean_std)

# %% [markdown]
# **Exercise 3 — the scaling.** Return s in ΔW = s · B A for a given α and r, with the paper's scaling or, when
# `rslora` is true, rsLoRA's.

# %%
def update_scaling(alpha, r, rslora):
    raise NotImplementedError  # your code


# %%
check("update_scaling", update_scaling)
