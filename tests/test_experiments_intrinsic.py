"""The intrinsic-dimension experiments: one run per spec, curves searched for d90 with an lr per d, JSON and figures."""

import json
import math

import pytest

from minilora.cli import main
from minilora.experiments import intrinsic
from minilora.experiments.intrinsic import (
    Context,
    Curve,
    Settings,
    format_table,
    measure_curves,
    run_intrinsic,
    run_one,
)
from minilora.experiments.spec import RunSpec
from minilora.plots import draw_intrinsic_figures
from minilora.train import TrainConfig

SKILLS_D = 110_720  # parameters of the shipped skills model


def spec(method="subspace", lr=0.1, **settings):
    """The job of one tiny run (2 steps of 4 sequences); subspace runs default to d = 16."""
    settings = {"d": 16, **settings} if method == "subspace" else settings
    config = TrainConfig(steps=2, batch_size=4, lr=lr, warmup_steps=1, weight_decay=0.0, seed=0)
    return {"run": RunSpec.make("reverse-shift", "skills", method, config, settings).to_json()}


def test_a_subspace_run_trains_only_z():
    result = run_one(spec())
    assert result["trainable"] == 16 and result["D"] == SKILLS_D
    assert not result["diverged"] and 0.0 <= result["metric"] <= 1.0 and 0.0 <= result["validation_metric"] <= 1.0
    said = run_one(spec(said=True))
    assert said["trainable"] > 16  # d plus one scale per weight tensor


def test_a_diverged_run_is_a_miss_not_an_error():
    result = run_one(spec(lr=1e30))
    assert result["diverged"] and result["metric"] is None and result["diverged_at"] is not None


def test_full_and_lora_runs_count_their_trainable_weights():
    assert run_one(spec("full", lr=3e-3))["trainable"] == SKILLS_D
    assert run_one(spec("lora", lr=1e-2, r=1))["trainable"] < SKILLS_D / 10


def test_an_unknown_method_is_a_clear_error():
    job = spec()
    job["run"]["method"] = "no-such-method"
    with pytest.raises(ValueError, match="unknown method 'no-such-method'"):
        run_one(job)


def synthetic_run(job, validation_bonus=None):
    """A stand-in for run_one with a known answer: at lr 0.03, m(d) = 0.1·log2 d − 0.05 + 0.01·(seed − 1);
    lr 0.1 is 0.05 better below d = 256 and diverges from d = 1024; lr 0.01 is always 0.2 worse.  The validation
    metric is the same, plus ``validation_bonus[lr]`` when given."""
    run = job["run"]
    if run["method"] == "full":
        return {"metric": 1.0, "validation_metric": 1.0, "diverged": False, "seconds": 0.0, "trainable": 1000,
                "D": 1000}
    d, lr, seed = run["settings"]["d"], run["train"]["lr"], run["train"]["seed"]
    m = 0.1 * math.log2(d) - 0.05 + 0.01 * (seed - 1)
    diverged = lr == 0.1 and d >= 1024
    m += {0.01: -0.2, 0.03: 0.0, 0.1: 0.05 if d < 256 else -0.1}[lr]
    v = None if diverged else m + (validation_bonus or {}).get(lr, 0.0)
    return {"metric": None if diverged else m, "validation_metric": v, "diverged": diverged, "seconds": 0.0,
            "trainable": d, "D": 1000}


def test_curves_choose_lr_on_seed_0_search_d_and_interpolate_d90(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(intrinsic, "run_one", lambda s: calls.append(s) or synthetic_run(s))
    settings = Settings(lrs=(0.01, 0.03, 0.1), seeds=3, start=(64, 128), refine=1)
    curve = measure_curves(Context(settings, tmp_path, jobs=1), [Curve("c", "skills", 3, (64, 128))])["c"]
    assert curve["baseline"]["metric"] == 1.0 and curve["target"] == pytest.approx(0.9)
    points = {p["d"]: p for p in curve["points"]}
    assert sorted(points) == [64, 128, 256, 512, 724, 1024]
    assert points[64]["lr"] == points[128]["lr"] == 0.1 and points[512]["lr"] == points[1024]["lr"] == 0.03
    assert points[1024]["diverged_lrs"] == [0.1] and points[1024]["metric_by_lr"]["0.1"] is None
    assert points[512]["per_seed"] == pytest.approx([0.84, 0.85, 0.86])
    # the seed mean is linear in log d, so the interpolation is exact: 2^9.5; seed s crosses at 2^(9.6 − 0.1 s)
    assert curve["d90"] == pytest.approx(2**9.5)
    assert curve["d90_per_seed"] == pytest.approx([2**9.6, 2**9.5, 2**9.4])
    assert curve["d90_median"] == pytest.approx(2**9.5)
    # runs: the baseline's 3 lrs on seed 0 and 2 more seeds + per d: 3 lrs on seed 0, then 2 more seeds
    assert len(calls) == (3 + 2) + 6 * (3 + 2)
    table = format_table({"demo": {"curves": {"c": curve}}})
    assert "724" in table and "0.900" in table and "1.000" in table
    calls.clear()  # a rerun resumes from the run cache: nothing runs again, the answer is the same
    again = measure_curves(Context(settings, tmp_path, jobs=1), [Curve("c", "skills", 3, (64, 128))])["c"]
    assert calls == [] and again["d90"] == curve["d90"]


def test_a_baseline_that_learned_nothing_has_no_d90(monkeypatch, tmp_path):
    calls = []

    def nothing_learned(s):
        calls.append(s)
        return {"metric": 0.0, "validation_metric": 0.0, "diverged": False, "seconds": 0.0, "trainable": 10, "D": 10}

    monkeypatch.setattr(intrinsic, "run_one", nothing_learned)
    curve = measure_curves(Context(Settings(seeds=2), tmp_path, jobs=1), [Curve("c", "skills", 2, (64,))])["c"]
    assert curve["target"] is None and curve["d90"] is None and curve["points"] == []
    assert [s["run"]["method"] for s in calls] == ["full"] * 4  # 3 lrs on seed 0, then seed 1 at the chosen lr
    assert "not reached" in format_table({"demo": {"curves": {"c": curve}}})


def test_the_learning_rate_is_chosen_on_validation_and_reported_on_test(monkeypatch, tmp_path):
    """Validation prefers lr 0.01 at every d (a bonus of 0.5 there): it is chosen, though test prefers 0.03."""
    monkeypatch.setattr(intrinsic, "run_one", lambda s: synthetic_run(s, validation_bonus={0.01: 0.5}))
    settings = Settings(lrs=(0.01, 0.03), lrs_full=(3e-3, 1e-2), lrs_lora=(1e-2, 3e-2), seeds=1, start=(512,), refine=0)
    curve = measure_curves(Context(settings, tmp_path, jobs=1), [Curve("c", "skills", 1, (512,))])["c"]
    point = curve["points"][0]
    assert point["lr"] == 0.01 and point["lr_selected_on"] == "validation"
    assert point["mean"] == pytest.approx(0.1 * 9 - 0.05 - 0.01 - 0.2)  # the test metric at lr 0.01


TINY = Settings(steps=2, batch_size=4, lrs=(0.1,), lrs_full=(3e-3,), lrs_lora=(1e-2,), seeds=1, random_seeds=1,
                refine=0, ranks=(1,), dense_dims=(16,), d_min=16, d_max=32, start=(16, 32), start_random=(16, 32),
                snapshots=(250, 9000), snapshot_starts=((16, 32), (16, 32)), widths=(32, 64), pretrain_seeds=(0, 1),
                toy_max_d=12)


def test_every_experiment_writes_its_json_and_figure(tmp_path):
    figures = tmp_path / "figures"
    results = run_intrinsic(runs=tmp_path / "runs", out=figures, jobs=1, settings=TINY)
    assert list(results) == list(intrinsic.EXPERIMENTS)
    for name in intrinsic.EXPERIMENTS:
        saved = json.loads((figures / f"intrinsic-{name}.json").read_text())
        assert saved["experiment"] == f"intrinsic-{name}" and saved["settings"]["steps"] == 2
        assert (saved["selected_on"], saved["reported_on"]) == ("validation", "test")
    assert {p["d"] for p in results["projections"]["curves"]["dense"]["points"]} <= {16}
    assert [r["step"] for r in results["pretraining"]["rows"]] == [250, 9000]
    assert [r["base"] for r in results["pretraining"]["rows"]] == ["skills@step=250", "skills"]
    assert [r["n_embd"] for r in results["width"]["rows"]] == [32, 64]
    assert [r["pretrain_seed"] for r in results["noise-floor"]["rows"]] == [0, 1]
    for name in ("pretrained-vs-random", "pretraining", "width"):
        assert results[name]["noise_floor"]["pretrain_seeds"] == [0, 1] and "holds" in results[name]["trend"]
    assert results["width"]["rows"][0]["parameters"] < results["width"]["rows"][1]["parameters"]
    assert [r["rank"] for r in results["budget"]["lora"]] == [1]
    assert all(t["d_int"] == 10 for t in results["toy"]["toy"].values())
    pngs = draw_intrinsic_figures(figures)
    assert sorted(p.name for p in pngs) == sorted(f"intrinsic-{n}.png" for n in intrinsic.EXPERIMENTS if n != "toy")
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    table = format_table(results)
    assert "pretrained-vs-random" in table and "expected 10" in table


def test_cli_prints_the_table_and_names_bad_experiments(tmp_path, capsys):
    assert main(["intrinsic", "--only", "toy", "--runs", str(tmp_path), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "toy (D=1000)" in out and "expected 10" in out and "baseline" in out
    assert main(["intrinsic", "--only", "nope", "--out", str(tmp_path)]) == 2
    assert "unknown intrinsic experiment(s) ['nope']" in capsys.readouterr().err


def test_every_methods_grid_has_the_same_size():
    with pytest.raises(ValueError, match="same size"):
        Settings(lrs=(0.01, 0.03), lrs_full=(3e-3,), lrs_lora=(1e-2, 3e-2))


def full_disagrees(job, chosen=1e-3, best_on_test=1e-2):
    """Full fine-tuning whose validation split prefers lr ``chosen`` while its test split prefers ``best_on_test``;
    subspace runs as in ``synthetic_run``."""
    run = job["run"]
    if run["method"] != "full":
        return synthetic_run(job)
    lr = run["train"]["lr"]
    return {"metric": 1.0 if lr == best_on_test else 0.9, "validation_metric": 0.95 if lr == chosen else 0.5,
            "diverged": False, "seconds": 0.0, "trainable": 1000, "D": 1000}


def test_full_fine_tunings_lr_is_chosen_on_validation_not_on_test(monkeypatch, tmp_path):
    """The baseline of d90 follows validation (lr 1e-3) though test would prefer 1e-2, and reports test at 1e-3."""
    calls = []
    monkeypatch.setattr(intrinsic, "run_one", lambda s: calls.append(s) or full_disagrees(s))
    settings = Settings(lrs=(0.01, 0.03, 0.1), lrs_full=(1e-3, 3e-3, 1e-2), lrs_lora=(3e-3, 1e-2, 3e-2), seeds=2,
                        start=(512,), refine=0)
    curve = measure_curves(Context(settings, tmp_path, jobs=1), [Curve("c", "skills", 2, (512,))])["c"]
    baseline = curve["baseline"]
    assert baseline["lr"] == 1e-3 and baseline["lr_selected_on"] == "validation"
    assert baseline["metric"] == pytest.approx(0.9) and curve["target"] == pytest.approx(0.81)
    assert baseline["validation_by_lr"] == {"0.001": 0.95, "0.003": 0.5, "0.01": 0.5}
    full = [c["run"]["train"] for c in calls if c["run"]["method"] == "full"]
    assert sorted((t["lr"], t["seed"]) for t in full) == [(1e-3, 0), (1e-3, 1), (3e-3, 0), (1e-2, 0)]


def test_loras_lr_is_chosen_per_rank_on_validation(monkeypatch, tmp_path):
    def run(job):
        r = job["run"]
        if r["method"] != "lora":
            return synthetic_run(job)
        lr = r["train"]["lr"]  # validation prefers 3e-3, test 3e-2
        return {"metric": 0.99 if lr == 3e-2 else 0.7, "validation_metric": 0.9 if lr == 3e-3 else 0.1,
                "diverged": False, "seconds": 0.0, "trainable": 10 * r["settings"]["r"], "D": 1000}

    monkeypatch.setattr(intrinsic, "run_one", run)
    settings = Settings(lrs=(0.01, 0.03, 0.1), lrs_full=(1e-3, 3e-3, 1e-2), lrs_lora=(3e-3, 1e-2, 3e-2), seeds=1,
                        ranks=(1, 2), start=(512,), dense_dims=(), refine=0)
    lora = intrinsic.budget(Context(settings, tmp_path, jobs=1))["lora"]
    assert [(x["rank"], x["lr"], x["mean"]) for x in lora] == [(1, 3e-3, 0.7), (2, 3e-3, 0.7)]


def by_base(offsets):
    """``synthetic_run`` with its metric lowered by ``offsets[base]``: −0.1 doubles a curve's d90 (0.1 per octave)."""
    def run(job):
        result = synthetic_run(job)
        if job["run"]["method"] == "subspace" and result["metric"] is not None:
            drop = offsets.get(job["run"]["base"], 0.0)
            result = {**result, "metric": result["metric"] - drop, "validation_metric": result["metric"] - drop}
        return result
    return run


def test_the_noise_floor_and_every_trend_against_it_are_computed(monkeypatch, tmp_path):
    """Replica seed 1 has twice the shipped model's d90 (floor 2x); random has 16x (8x beyond the floor); along
    pretraining the snapshot has 1.5x (not beyond the floor)."""
    jobs = []
    offsets = {"skills-seed-1": 0.1, "random": 0.4, "skills@step=250": 0.1 * math.log2(1.5)}
    monkeypatch.setattr(intrinsic, "run_one", lambda s: jobs.append(s) or by_base(offsets)(s))
    settings = Settings(lrs=(0.03,), lrs_full=(3e-3,), lrs_lora=(1e-2,), seeds=1, random_seeds=1, refine=1,
                        start=(512, 1024), snapshots=(250, 9000), snapshot_starts=((512, 1024), (512, 1024)),
                        pretrain_seeds=(0, 1), dense_dims=())
    ctx = Context(settings, tmp_path, jobs=1)
    floor = intrinsic.noise_floor_experiment(ctx)
    assert floor["noise_floor"]["ratio"] == pytest.approx(2.0)
    assert [r["d90"] for r in floor["rows"]] == pytest.approx([2**9.6, 2**10.6])  # seed 0: 0.01 below the mean
    versus = intrinsic.pretrained_vs_random(ctx)["trend"]
    assert versus["ratio"] == pytest.approx(16.0) and versus["beyond"] == pytest.approx(8.0) and versus["holds"]
    along = intrinsic.along_pretraining(ctx)["trend"]
    assert along["ratio"] == pytest.approx(1.5) and along["beyond"] == pytest.approx(0.75) and not along["holds"]
    table = format_table({"pretraining": intrinsic.along_pretraining(ctx)})
    assert "noise floor" in table and "does NOT hold beyond it (0.75x the floor)" in table
    # every run is a fine-tuning run of a zoo model (or of the random initialisation): nothing is pretrained here
    assert {j["run"]["method"] for j in jobs} == {"full", "subspace"} and all(set(j) == {"run"} for j in jobs)
    assert {j["run"]["base"] for j in jobs} == {"skills", "skills-seed-1", "random", "skills@step=250"}


def test_zoo_bases_name_the_zoos_models():
    import numpy as np

    from minilora.models.zoo import pretrained

    assert intrinsic.zoo_base() == intrinsic.zoo_base(n_embd=64, step=9000, pretrain_seed=0) == "skills"
    assert intrinsic.zoo_base(n_embd=32) == "skills-width-32" and intrinsic.zoo_base(pretrain_seed=2) == "skills-seed-2"
    assert intrinsic.zoo_base(step=500) == "skills@step=500"
    loaded, snapshot = intrinsic.base_model("skills@step=500", 0).state_dict(), pretrained("skills", step=500)
    assert all(np.array_equal(v, snapshot.state_dict()[k]) for k, v in loaded.items())
    assert intrinsic.pretrain_metric("skills@step=250") == pytest.approx(0.0265)  # the zoo's snapshot: 53 of 2000
    with pytest.raises(ValueError, match="no 'skills' model"):
        intrinsic.zoo_base(n_embd=48)
