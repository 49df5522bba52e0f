"""The LoRA paper's analyses: run specs, their summaries (checked on made-up outcomes with known answers), and
one tiny end-to-end sweep that trains for real and resumes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lora_paper_fakes import TINY, constructed_a, fake_outcomes, fake_results
from minilora.experiments.adaptation import adaptation_spec, own_outcomes, run_adaptation, summarize_seeds
from minilora.experiments.budget import Budget, budget_rank
from minilora.experiments.lora_paper import EXPERIMENTS, format_summary, lora_paper
from minilora.experiments.rank_sweep import RankSweep
from minilora.lora import subspace_similarity


def test_summarize_seeds_is_mean_and_sample_std():
    s = summarize_seeds([1.0, 2.0, 4.0])
    assert s["mean"] == pytest.approx(7 / 3) and s["std"] == pytest.approx(np.std([1, 2, 4], ddof=1))
    assert (s["min"], s["max"], s["n"]) == (1.0, 4.0, 3)
    assert summarize_seeds([0.5])["std"] == 0.0
    with pytest.raises(ValueError, match="no values"):
        summarize_seeds([])


def test_adaptation_spec_is_plain_and_checks_its_method():
    spec = adaptation_spec("sort", "skills", "full", seed=2, steps=10, lr=1e-3, rank=4)
    assert spec["rank"] is None and spec["targets"] is None and spec["seed"] == 2  # LoRA fields only for LoRA
    assert json.loads(json.dumps(spec)) == spec
    with pytest.raises(ValueError, match="unknown adaptation method 'prefix'"):
        adaptation_spec("sort", "skills", "prefix", seed=0, steps=1, lr=1.0)
    with pytest.raises(ValueError, match="needs a rank"):
        adaptation_spec("sort", "skills", "lora", seed=0, steps=1, lr=1.0)


def _tiny_lora(seed: int) -> dict:
    return adaptation_spec("reverse-shift", "skills", "lora", seed=seed, steps=2, lr=1e-2, rank=2, alpha=1.0,
                           rslora=True, task_kwargs={"n_eval": 10}, keep=["blocks.1.attn.q_proj"])


def test_a_run_depends_on_its_spec_only_and_the_seed_matters():
    first, again, other = run_adaptation(_tiny_lora(0)), run_adaptation(_tiny_lora(0)), run_adaptation(_tiny_lora(1))
    timing = {"seconds"}  # wall time is the one thing that differs between two runs of one spec
    assert {k: v for k, v in first.items() if k not in timing} == {k: v for k, v in again.items() if k not in timing}
    assert first["scaling"] == pytest.approx(1 / np.sqrt(2))  # rsLoRA: α/√r
    assert first["trainable_params"] == 2 * 2 * (2 * 128 + 2 * 320)  # r = 2 on q, v (64×64) and fc_in, fc_out (256×64)
    a0, a1 = (np.array(r["kept"]["blocks.1.attn.q_proj"]["A"]) for r in (first, other))
    assert a0.shape == (2, 64) and not np.allclose(a0, a1)  # the seed draws A


def test_no_fine_tuning_evaluates_the_base_and_bad_keeps_are_named():
    result = run_adaptation(adaptation_spec("reverse-shift", "skills", "none", seed=0, steps=0, lr=1.0,
                                            task_kwargs={"n_eval": 10}))
    assert result["trainable_params"] == 0 and result["final_loss"] is None and 0.0 <= result["value"] <= 1.0
    spec = {**_tiny_lora(0), "keep": ["blocks.1.attn.k_proj"]}
    with pytest.raises(ValueError, match=r"blocks\.1\.attn\.k_proj"):
        run_adaptation(spec)


def test_rank_sweep_runs_every_rank_and_scaling_and_shares_r1():
    sweep = RankSweep(tasks=(("sort", "skills"),), ranks=(1, 2, 8), seeds=(0, 1, 2))
    specs = sweep.specs()
    assert len(specs) == 1 + 3 * (1 + 3 + 2)  # none once; per seed: full, plain at 3 ranks, rsLoRA at 2
    assert not [s for s in specs if s["rslora"] and s["rank"] == 1]
    assert {s["alpha"] for s in specs if s["method"] == "lora"} == {1.0}
    rows = sweep.summarize(fake_outcomes({"rank": sweep}))["rows"]
    plain1, rs1 = ([r for r in rows if r["rank"] == 1 and r["scaling"] == sc][0] for sc in ("alpha/r", "alpha/sqrt(r)"))
    assert plain1["values"] == rs1["values"] == pytest.approx([0.1, 0.11, 0.12])
    r8 = [r for r in rows if r["rank"] == 8 and r["scaling"] == "alpha/r"][0]
    assert r8["mean"] == pytest.approx(0.81) and r8["std"] == pytest.approx(0.01) and r8["seeds"] == [0, 1, 2]


def test_outcomes_of_other_specs_are_ignored_and_missing_ones_named():
    outcomes = fake_outcomes(TINY)
    assert len(own_outcomes(TINY["rank"].specs(), outcomes)) == len(TINY["rank"].specs())
    with pytest.raises(ValueError, match="no outcome for spec"):
        TINY["rank"].summarize(outcomes[:3])


def test_budget_rank_spends_the_same_parameters():
    budget = Budget().budget("skills")
    assert budget == 8 * 2 * (64 + 64)  # r = 8 on W_q of both layers
    ranks = {label: budget_rank("skills", targets, budget) for label, targets in Budget().groups}
    assert [ranks[k] for k in ("W_q", "W_k", "W_q, W_v", "W_q, W_k, W_v, W_o")] == [8, 8, 4, 2]
    assert ranks["MLP (fc_in, fc_out)"] == 2  # 2048 / (2 · 640) = 1.6 → 2
    assert ranks["attention + MLP"] == 1  # 2048 / (2 · (4 · 128 + 640)) = 0.89 → 1


def test_similarity_summary_finds_the_constructed_overlap():
    """Same seed: the top-2 subspace of A is the same at r = 2 and r = 4 (φ = 1); two seeds: random bases."""
    result = fake_results()["similarity"]
    q = result["modules"]["q_proj"]["A"]
    assert np.array(q["across_ranks"]["mean"]).shape == (2, 4)
    assert q["across_ranks"]["top_n"]["mean"] == pytest.approx(1.0)
    assert q["across_ranks"]["top_n"]["size"] == 2 and q["across_ranks"]["top_n"]["chance"] == pytest.approx(2 / 64)
    assert q["across_seeds"]["pairs"] == [[0, 1], [0, 2], [1, 2]]
    expected = subspace_similarity(constructed_a(2, 0), constructed_a(2, 1), 2, 2)
    assert q["across_seeds"]["per_pair"][0][1][1] == pytest.approx(expected)
    assert q["across_seeds"]["top_n"]["mean"] < 0.3  # random 2-D subspaces of R^64: chance 2/64
    np.testing.assert_allclose(q["across_ranks"]["chance"], [[max(i, j) / 64 for j in range(1, 5)] for i in (1, 2)])
    for row in result["amplification"]:
        factors = [d / p for d, p in zip(row["delta_norm"]["values"], row["proj_delta"]["values"])]
        assert row["factor"]["values"] == pytest.approx(factors)
        assert row["proj_w_top"] >= max(row["proj_delta"]["values"])  # W's own top directions hold the most of W


def test_format_summary_shows_every_experiment():
    text = format_summary(fake_results())
    for needle in ("rank sweep", "rsLoRA r=1", "fixed budget", "W_q, W_v", "across_seeds", "factor", "sweep: "):
        assert needle in text


def test_lora_paper_trains_writes_json_and_resumes(tmp_path):
    results = lora_paper(out_dir=tmp_path / "out", runs_dir=tmp_path / "runs", settings=TINY, jobs=1)
    for name, file in EXPERIMENTS.items():
        assert json.loads((tmp_path / "out" / file).read_text())["experiment"] == results[name]["experiment"]
    assert results["rank"]["sweep"]["computed"] == results["rank"]["sweep"]["specs"] == len(
        [s for e in TINY.values() for s in e.specs()])
    budget = {r["group"]: r for r in results["budget"]["rows"]}
    assert budget["W_q"]["trainable_params"] == 2048 and budget["W_q, W_v"]["trainable_params"] == 2048
    assert budget["MLP (fc_in, fc_out)"]["trainable_params"] == 2 * 2 * 640  # r = 2: the nearest whole rank
    again = lora_paper(out_dir=tmp_path / "out", runs_dir=tmp_path / "runs", settings=TINY, jobs=1)
    assert again["rank"]["sweep"]["computed"] == 0
    assert again["rank"]["rows"] == results["rank"]["rows"] and again["similarity"] == {
        **results["similarity"], "sweep": again["similarity"]["sweep"]}


def test_lora_paper_names_unknown_experiments(tmp_path):
    with pytest.raises(ValueError, match="unknown experiments"):
        lora_paper(out_dir=tmp_path, only=["rank", "table9"])
