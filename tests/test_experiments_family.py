"""The LoRA-family comparison: parameter matching against real counts, its run specs, the lr chosen on validation
only (made-up outcomes where validation and test disagree), the extra measurements of a run, the table, and a tiny
end-to-end sweep that trains for real and resumes."""

from __future__ import annotations

import json

import pytest
from family_fakes import LRS, TINY, fake_family_result, fake_outcomes

from minilora.data import PRETRAIN_SKILLS
from minilora.experiments import adaptation
from minilora.experiments.adaptation import adaptation_spec, run_adaptation
from minilora.experiments.family import (
    ARMS,
    FULL,
    LR_GRID,
    LoraFamily,
    ModelShape,
    choose_lr,
    format_family,
    lora_family,
    matched_size,
    model_shape,
    trainable_count,
)
from minilora.experiments.methods import METHODS, get_method
from minilora.experiments.runs import load_base
from minilora.train import TrainingDiverged

SKILLS_SHAPE = ModelShape(2, 64, ((64, 64), (64, 64), (256, 64), (64, 256)) * 2)
EXPECTED = {"lora": 4, "dora": 4, "pissa": 4, "lora-fa": 8, "lora-plus": 4, "vera": 784, "qlora": 4,
            "adapter-houlsby": 13, "adapter-lin": 27, "prefix": 28}


def test_the_budget_is_lora_r4_and_each_arm_is_sized_to_it():
    assert model_shape(load_base("skills")) == SKILLS_SHAPE == model_shape(load_base("names"))
    budget = trainable_count("lora", 4, SKILLS_SHAPE)
    assert budget == 7168 == FULL.budget("skills")
    for arm, size in EXPECTED.items():
        assert matched_size(arm, budget, SKILLS_SHAPE) == size, arm
        here, lower, higher = (abs(trainable_count(arm, s, SKILLS_SHAPE) - budget) for s in (size, size - 1, size + 1))
        assert here <= lower and here <= higher, arm
    assert trainable_count("dora", 4, SKILLS_SHAPE) == 7168 + 896  # a tie (±896) goes to the larger r
    with pytest.raises(ValueError, match="no formula for arm 'full'"):
        trainable_count("full", 1, SKILLS_SHAPE)


@pytest.mark.parametrize("arm", [a for a in ARMS if a != "full"])
def test_each_formula_is_the_real_trainable_count(arm):
    method = ARMS[arm][0]
    if method not in METHODS:
        pytest.skip(f"method {method!r} is not in the registry yet")
    for size in (EXPECTED[arm], 3):
        settings = {**FULL.arm_settings(arm, "skills"), ARMS[arm][1]: size}
        model = get_method(method).prepare(load_base("skills"), settings, seed=0)
        assert get_method(method).trainable(model) == trainable_count(arm, size, SKILLS_SHAPE), (arm, size)


def test_choose_lr_maximises_accuracy_minimises_bits_and_skips_diverged_runs():
    assert choose_lr({1e-3: 0.5, 1e-2: 0.9, 1e-1: None}, lower_is_better=False) == 1e-2
    assert choose_lr({1e-3: 2.5, 1e-2: 2.9, 1e-1: None}, lower_is_better=True) == 1e-3
    assert choose_lr({1e-2: 0.7, 1e-3: 0.7}, lower_is_better=False) == 1e-3  # a tie: the smaller lr
    assert choose_lr({1e-3: None, 1e-2: float("nan")}, lower_is_better=False) is None


def test_the_grid_then_the_seeds_at_the_chosen_lr():
    grid = TINY.grid_specs()
    # per task: none, 3 arms × 3 lrs, LoRA r=1 × 3 lrs (r=4 is the lora arm's own runs)
    assert len(grid) == 2 * (1 + 3 * 3 + 1 * 3)
    assert {s["run"]["train"]["seed"] for s in grid} == {0}
    assert all(s["measure"]["validation"] for s in grid)
    kept = {s["run"]["task"]: s["measure"]["retained_n_eval"] for s in grid}
    assert kept == {"reverse-shift": 5, "first-names": 0}  # forgetting is measured on skill tasks only
    seeds = TINY.seed_specs(fake_outcomes())
    assert len(seeds) == 2 * (3 + 1) * 2  # per task: 3 arms + LoRA r=1, seeds 1 and 2
    lrs = {(s["run"]["method"], s["run"]["task"]): s["run"]["train"]["lr"] for s in seeds}
    assert lrs[("full", "reverse-shift")] == 1e-3 and lrs[("lora", "reverse-shift")] == 1e-2
    assert FULL.lrs == LR_GRID and len(FULL.arms) == 11


def test_summarize_chooses_on_validation_and_reports_test_over_seeds():
    result = fake_family_result()
    rows = {(r["task"], r["kind"], r["arm"], r["rank"]): r for r in result["rows"]}
    lora = rows[("reverse-shift", "method", "lora", None)]
    assert lora["lr"] == 1e-2  # validation's best; test is best at 1e-1, which must not be chosen
    assert lora["test"]["values"] == pytest.approx([0.6, 0.61, 0.62]) and lora["test"]["n"] == 3
    assert lora["validation"] == 0.9 and lora["lr_at_edge"] is None
    full = rows[("reverse-shift", "method", "full", None)]
    assert full["lr"] == 1e-3 and full["lr_at_edge"] == "low"
    names = rows[("first-names", "method", "lora-fa", None)]
    assert names["lr"] == 1e-2 and names["retained"] is None and names["metric"] == "bits_per_char"
    assert lora["retained"]["mean"] == pytest.approx(1 - 1e-2) and set(lora["retained"]["by_skill"]) == set(
        PRETRAIN_SKILLS)
    assert rows[("reverse-shift", "rank", "lora", 4)]["test"] == lora["test"]  # one run, two rows
    assert lora["trainable_params"] == 400 and lora["formula_params"] == 7168 and lora["budget"] == 7168
    assert len(result["lr_grid"]) == 2 * (3 + 2) * len(LRS)
    # every grid run keeps its mean retained accuracy (the fake: 1 − lr on the skill task, nothing for names)
    for g in result["lr_grid"]:
        assert g["retained"] == (None if g["task"] == "first-names" else pytest.approx(1.0 - g["lr"]))
    assert result["none"]["reverse-shift"]["retained"]["mean"] == 1.0 and result["chosen_on"] == "validation"
    assert json.loads(json.dumps(result))["rows"] == result["rows"]  # JSON-able, nothing lost


def test_a_diverged_lr_is_never_chosen_and_a_missing_seed_is_named():
    outcomes = fake_outcomes(diverge=("lora", 1e-2))
    rows = {(r["task"], r["kind"], r["arm"], r["rank"]): r for r in TINY.summarize(outcomes)["rows"]}
    assert rows[("reverse-shift", "method", "lora", None)]["lr"] == 1e-3  # 1e-2 diverged: the next best
    grid = [o for o in fake_outcomes() if o["spec"]["run"]["train"]["seed"] == 0]
    with pytest.raises(ValueError, match="run seed_specs"):
        TINY.summarize(grid)


def test_unknown_arms_are_named():
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        LoraFamily(arms=("lora", "nope"))


def test_the_table_names_every_row_and_marks_an_edge_lr():
    text = format_family(fake_family_result())
    assert "reverse-shift (accuracy; no fine-tuning: test 0.200, retained 1.000)" in text
    assert "lora r=1" in text and "lora-fa" in text
    full = next(line for line in text.splitlines() if line.strip().startswith("full"))
    assert "1e-03*" in full and "0.610 ± 0.010" in full  # at the grid's low edge; seeds 0.6, 0.61, 0.62
    assert "sweep: " in text


def test_a_job_without_measure_is_unchanged_and_a_bad_measure_is_one_line():
    job = adaptation_spec("sort", "skills", "lora", seed=0, steps=2, lr=1e-2)
    assert set(job) == {"run", "keep"}  # the cached keys of every earlier sweep stay the same
    with pytest.raises(ValueError, match="unknown key 'test'"):
        adaptation_spec("sort", "skills", "lora", seed=0, steps=2, lr=1e-2, measure={"test": True})
    with pytest.raises(ValueError, match="retained_n_eval needs a skill task"):
        adaptation_spec("first-names", "names", "lora", seed=0, steps=2, lr=1e-2, measure={"retained_n_eval": 5})


def _measured(method: str, settings: dict | None = None) -> dict:
    return run_adaptation(adaptation_spec("reverse-shift", "skills", method, seed=0, steps=2, lr=1e-2,
                                          settings=settings, task_kwargs={"n_eval": 10},
                                          measure={"validation": True, "retained_n_eval": 5}))


def test_a_measured_run_reports_validation_retained_and_its_real_cost():
    lora, fa = _measured("lora", {"r": 4}), _measured("lora-fa", {"r": 4})
    assert 0.0 <= lora["validation"] <= 1.0 and set(lora["retained"]) == set(PRETRAIN_SKILLS)
    assert lora["optimizer_bytes"] == 2 * 4 * lora["trainable_params"] == 2 * 4 * 7168  # m and v, float32
    assert fa["trainable_params"] == 4 * 896 and fa["optimizer_bytes"] == 2 * 4 * 4 * 896  # no state for A
    assert lora["step_ms"] > 0 and lora["diverged"] is False
    none = _measured("none")
    assert none["optimizer_bytes"] == 0 and none["step_ms"] is None and none["retained"]["copy"] > 0.9


def test_a_diverged_measured_run_is_a_result_and_an_unmeasured_one_still_raises(monkeypatch):
    def diverge(*args, **kwargs):
        raise TrainingDiverged("the loss is nan")

    monkeypatch.setattr(adaptation, "train", diverge)
    result = _measured("lora", {"r": 4})
    assert result["diverged"] is True and result["value"] is None and result["validation"] is None
    with pytest.raises(TrainingDiverged):
        run_adaptation(adaptation_spec("sort", "skills", "lora", seed=0, steps=2, lr=1e-2))


def test_a_tiny_family_trains_for_real_writes_its_json_and_resumes(tmp_path):
    tiny = LoraFamily(tasks=(("reverse-shift", "skills"),), arms=("full", "lora"), lrs=(1e-3, 1e-2), ranks=(4,),
                      seeds=(0, 1), steps=2, skill_task_kwargs=(("n_eval", 10),), retained_n_eval=5)
    result = lora_family(out=tmp_path / "out", runs=tmp_path / "runs", settings=tiny)
    assert (tmp_path / "out" / "lora-family.json").is_file()
    assert result["sweep"]["grid_specs"] == 1 + 2 * 2 and result["sweep"]["seed_specs"] == 2
    assert result["sweep"]["computed"] == 7
    again = lora_family(out=tmp_path / "out", runs=tmp_path / "runs", settings=tiny)
    assert again["sweep"]["computed"] == 0 and again["rows"] == result["rows"]
    only = lora_family(out=tmp_path / "out", runs=tmp_path / "runs", settings=tiny, methods=["lora"])
    assert {r["arm"] for r in only["rows"]} == {"lora"} and only["sweep"]["computed"] == 0


def test_the_command_prints_the_table_and_draws_the_three_figures(tmp_path, monkeypatch, capsys):
    from minilora.cli import main
    from minilora.experiments import family

    tiny = LoraFamily(tasks=(("reverse-shift", "skills"),), arms=("full", "lora"), lrs=(1e-3, 1e-2), ranks=(1, 4),
                      seeds=(0, 1), steps=2, skill_task_kwargs=(("n_eval", 10),), retained_n_eval=5)
    monkeypatch.setattr(family, "FAST", tiny)
    assert main(["lora-family", "--fast", "--out", str(tmp_path / "out"), "--runs", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert "lora r=1" in out and "opt KiB" in out and "retained" in out
    assert {p.name for p in (tmp_path / "out").glob("*.png")} == {
        "lora-family.png", "lora-family-lr-grid.png", "lora-family-forgetting.png"}
    assert main(["lora-family", "--fast", "--out", str(tmp_path / "out"), "--methods", "lora,nope"]) == 2
    assert "unknown method 'nope'" in capsys.readouterr().err


def test_an_unwritable_results_folder_is_refused_before_any_run(tmp_path, monkeypatch):
    from minilora.experiments import family

    def no_runs(*args, **kwargs):
        raise AssertionError("a run started")

    monkeypatch.setattr(family, "run_sweep", no_runs)
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    with pytest.raises(ValueError, match="a-file"):
        lora_family(out=blocked, runs=tmp_path / "runs", fast=True)


def test_the_options_reach_the_python_api_under_the_same_names(monkeypatch, capsys):
    from minilora.cli import main
    from minilora.experiments import family

    seen = {}

    def fake(**kwargs):
        seen.update(kwargs)
        raise ValueError("stopped by the test")

    monkeypatch.setattr(family, "lora_family", fake)
    assert main(["lora-family", "--fast", "--runs", "R", "--methods", "lora,vera", "--jobs", "2"]) == 2
    assert "stopped by the test" in capsys.readouterr().err
    assert seen == {"out": "R", "runs": "R", "fast": True, "methods": ["lora", "vera"], "jobs": 2, "executor": None}
