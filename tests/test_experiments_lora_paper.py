"""The LoRA paper's analyses: run specs, their summaries (checked on made-up outcomes with known answers), and
one tiny end-to-end sweep that trains for real and resumes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from lora_paper_fakes import TINY, constructed_a, fake_outcomes, fake_results

from minilora.experiments.adaptation import (
    adaptation_spec,
    own_outcomes,
    run_adaptation,
    summarize_seeds,
)
from minilora.experiments.budget import Budget, budget_rank
from minilora.experiments.lora_paper import EXPERIMENTS, format_summary, lora_paper
from minilora.experiments.rank_sweep import RankSweep
from minilora.experiments.similarity import Similarity, above_chance
from minilora.lora import subspace_similarity


def test_summarize_seeds_is_mean_and_sample_std():
    s = summarize_seeds([1.0, 2.0, 4.0])
    assert s["mean"] == pytest.approx(7 / 3) and s["std"] == pytest.approx(np.std([1, 2, 4], ddof=1))
    assert (s["min"], s["max"], s["n"]) == (1.0, 4.0, 3)
    assert summarize_seeds([0.5])["std"] == 0.0
    with pytest.raises(ValueError, match="no values"):
        summarize_seeds([])


def test_adaptation_spec_is_a_run_spec_and_checks_its_method():
    job = adaptation_spec("sort", "skills", "full", seed=2, steps=10, lr=1e-3)
    assert job["run"]["settings"] == {} and job["run"]["train"]["seed"] == 2 and job["keep"] == []
    assert job["run"]["train"]["warmup_steps"] == 1  # default_warmup_steps(10)
    assert json.loads(json.dumps(job)) == job
    with pytest.raises(ValueError, match="unknown method 'no-such-method'"):
        adaptation_spec("sort", "skills", "no-such-method", seed=0, steps=1, lr=1.0)
    with pytest.raises(ValueError, match="r does not apply to method 'full'"):
        adaptation_spec("sort", "skills", "full", seed=0, steps=1, lr=1.0, settings={"r": 4})
    lora = adaptation_spec("sort", "skills", "lora", seed=0, steps=1, lr=1.0)["run"]["settings"]
    assert lora["r"] == 4 and lora["init_lora_weights"] == "gaussian"  # the registry's defaults


def _tiny_lora(seed: int) -> dict:
    return adaptation_spec("reverse-shift", "skills", "lora", seed=seed, steps=2, lr=1e-2,
                           settings={"r": 2, "lora_alpha": 1.0, "use_rslora": True}, task_kwargs={"n_eval": 10},
                           keep=["blocks.1.attn.q_proj"])


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
    runs = [s["run"] for s in specs]
    assert not [r for r in runs if r["settings"].get("use_rslora") and r["settings"]["r"] == 1]
    assert {r["settings"]["lora_alpha"] for r in runs if r["method"] == "lora"} == {1.0}
    rows = sweep.summarize(fake_outcomes({"rank": sweep}))["rows"]
    plain1, rs1 = (next(r for r in rows if r["rank"] == 1 and r["scaling"] == sc)
                   for sc in ("alpha/r", "alpha/sqrt(r)"))
    assert plain1["values"] == rs1["values"] == pytest.approx([0.1, 0.11, 0.12])
    r8 = next(r for r in rows if r["rank"] == 8 and r["scaling"] == "alpha/r")
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


def test_above_chance_is_zero_at_chance_one_when_identical_and_zero_at_full_rank():
    chance = np.array([[1 / 64, 16 / 64, 1.0]])
    np.testing.assert_allclose(above_chance(np.array([[1 / 64, 1.0, 1.0]]), chance), [[0.0, 1.0, 0.0]])
    assert above_chance(np.array([[0.0]]), np.array([[0.5]]))[0, 0] == pytest.approx(-1.0)  # below chance: negative


def test_the_default_ranks_leave_room_above_chance():
    """The large rank is at most k/4 of the analysed 64-wide matrices, so chance at the grid's corner stays ≤ 1/4."""
    settings = Similarity()
    assert settings.large_rank <= 64 // 4 and settings.small_rank < settings.large_rank


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
    # above chance, (φ − c)/(1 − c): 1 for the identical top-2 subspaces, φ's own rescaling for the random pairs
    assert q["across_ranks"]["top_n"]["above_chance"]["mean"] == pytest.approx(1.0)
    pair = np.array(q["across_seeds"]["per_pair"][0])
    chance = np.array(q["across_seeds"]["chance"])
    np.testing.assert_allclose(np.array(q["across_seeds"]["above_chance"]),
                               np.mean([(np.array(p) - chance) / (1 - chance) for p in q["across_seeds"]["per_pair"]],
                                       axis=0))
    assert q["across_seeds"]["top1"]["above_chance"]["values"][0] == pytest.approx((pair[0, 0] - 1 / 64) / (1 - 1 / 64))
    for row in result["amplification"]:
        factors = [d / p for d, p in zip(row["delta_norm"]["values"], row["proj_delta"]["values"])]
        assert row["factor"]["values"] == pytest.approx(factors)
        assert row["proj_w_top"] >= max(row["proj_delta"]["values"])  # W's own top directions hold the most of W


def test_format_summary_shows_every_experiment():
    text = format_summary(fake_results())
    for needle in ("rank sweep", "rsLoRA r=1", "fixed budget", "W_q, W_v", "across_seeds", "factor", "sweep: "):
        assert needle in text


def test_lora_paper_trains_writes_json_and_resumes(tmp_path):
    results = lora_paper(out=tmp_path / "out", runs=tmp_path / "runs", settings=TINY, jobs=1)
    for name, file in EXPERIMENTS.items():
        assert json.loads((tmp_path / "out" / file).read_text())["experiment"] == results[name]["experiment"]
    assert results["rank"]["sweep"]["computed"] == results["rank"]["sweep"]["specs"] == len(
        [s for e in TINY.values() for s in e.specs()])
    budget = {r["group"]: r for r in results["budget"]["rows"]}
    assert budget["W_q"]["trainable_params"] == 2048 and budget["W_q, W_v"]["trainable_params"] == 2048
    assert budget["MLP (fc_in, fc_out)"]["trainable_params"] == 2 * 2 * 640  # r = 2: the nearest whole rank
    again = lora_paper(out=tmp_path / "out", runs=tmp_path / "runs", settings=TINY, jobs=1)
    assert again["rank"]["sweep"]["computed"] == 0
    assert again["rank"]["rows"] == results["rank"]["rows"] and again["similarity"] == {
        **results["similarity"], "sweep": again["similarity"]["sweep"]}


def test_lora_paper_names_unknown_experiments(tmp_path):
    with pytest.raises(ValueError, match="unknown experiments"):
        lora_paper(out=tmp_path, only=["rank", "table9"])


def test_lora_paper_checks_its_folders_before_any_run_and_keeps_out_of_figures(tmp_path, monkeypatch):
    from minilora.experiments import lora_paper as module

    monkeypatch.setattr(module, "run_sweep", lambda *a, **k: pytest.fail("ran before checking the folders"))
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="results folder .*file"):
        lora_paper(out=tmp_path / "file" / "out", runs=tmp_path / "runs", settings=TINY)
    with pytest.raises(ValueError, match="run cache .*file"):
        lora_paper(out=tmp_path / "out", runs=tmp_path / "file", settings=TINY)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(module, "run_sweep", lambda specs, *a, **k: fake_outcomes(TINY))
    lora_paper(fast=True, settings=TINY)  # no out: the results go beside the run cache, not into figures/
    assert (tmp_path / "runs" / "lora-paper-fast" / EXPERIMENTS["rank"]).is_file()
    assert not (tmp_path / "figures").exists()


def test_rerun_figures_writes_every_result_into_out(tmp_path, monkeypatch):
    from minilora.experiments import figures

    calls = []
    monkeypatch.setattr(figures, "compare", lambda task, base, out, jobs, executor: calls.append(task) or (
        Path(out) / "compare.json").write_text(json.dumps({"experiment": "compare", "rows": [task]})))
    monkeypatch.setattr(figures, "lora_paper", lambda out, runs, jobs, executor: calls.append(str(runs)) or {
        "rank": {}, "budget": {}})
    monkeypatch.setattr(figures, "run_intrinsic", lambda out, runs, jobs, executor: calls.append(str(runs)))
    monkeypatch.chdir(tmp_path)
    written = figures.rerun_figures(out=tmp_path / "figs")
    assert calls == [t for t, _ in figures.FIGURE_RUNS] + ["runs/lora-paper", "runs/intrinsic"]
    assert json.loads((tmp_path / "figs" / "compare-sort.json").read_text())["rows"] == ["sort"]
    assert [p.name for p in written][-2:] == [EXPERIMENTS["rank"], EXPERIMENTS["budget"]]
