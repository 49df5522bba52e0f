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
    # runs: 3 baselines + per d: 3 lrs on seed 0, then 2 more seeds at the chosen lr
    assert len(calls) == 3 + 6 * (3 + 2)
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
    assert [s["run"]["method"] for s in calls] == ["full", "full"]
    assert "not reached" in format_table({"demo": {"curves": {"c": curve}}})


def test_the_learning_rate_is_chosen_on_validation_and_reported_on_test(monkeypatch, tmp_path):
    """Validation prefers lr 0.01 at every d (a bonus of 0.5 there): it is chosen, though test prefers 0.03."""
    monkeypatch.setattr(intrinsic, "run_one", lambda s: synthetic_run(s, validation_bonus={0.01: 0.5}))
    settings = Settings(lrs=(0.01, 0.03), seeds=1, start=(512,), refine=0)
    curve = measure_curves(Context(settings, tmp_path, jobs=1), [Curve("c", "skills", 1, (512,))])["c"]
    point = curve["points"][0]
    assert point["lr"] == 0.01 and point["lr_selected_on"] == "validation"
    assert point["mean"] == pytest.approx(0.1 * 9 - 0.05 - 0.01 - 0.2)  # the test metric at lr 0.01


TINY = Settings(steps=2, batch_size=4, lrs=(0.1,), seeds=1, random_seeds=1, refine=0, ranks=(1,), dense_dims=(16,),
                d_min=16, d_max=32, start=(16, 32), start_random=(16, 32), snapshots=(2, 4),
                snapshot_starts=((16, 32), (16, 32)), widths=(16, 32), width_steps=2, toy_max_d=12)


def test_every_experiment_writes_its_json_and_figure(tmp_path):
    figures = tmp_path / "figures"
    results = run_intrinsic(runs=tmp_path / "runs", out=figures, jobs=1, settings=TINY)
    assert list(results) == list(intrinsic.EXPERIMENTS)
    for name in intrinsic.EXPERIMENTS:
        saved = json.loads((figures / f"intrinsic-{name}.json").read_text())
        assert saved["experiment"] == f"intrinsic-{name}" and saved["settings"]["steps"] == 2
        assert (saved["selected_on"], saved["reported_on"]) == ("validation", "test")
    assert {p["d"] for p in results["projections"]["curves"]["dense"]["points"]} <= {16}
    assert [r["step"] for r in results["pretraining"]["rows"]] == [2, 4]
    assert [r["n_embd"] for r in results["width"]["rows"]] == [16, 32]
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
