"""`minilora demo`: tiny settings end to end (seconds), the folder check before any run, its text, and the command."""

from __future__ import annotations

import json

import pytest

from minilora.cli import main
from minilora.experiments import demo
from minilora.experiments.demo import (
    DemoSettings,
    check_demo_folder,
    d90_line,
    format_budget,
    parameter_arithmetic,
    run_demo,
)
from minilora.experiments.intrinsic import Settings

# the base model already reverses, so a 2-step baseline is positive and d = 16 (z = 0 at the start) reaches 90% of it
TINY = DemoSettings(task="reverse-shift", ranks=(1,), steps=2, n_eval=8, latency_repeats=1,
                    intrinsic=Settings(task="reverse", steps=2, batch_size=8, lrs=(0.03,), lrs_full=(3e-3,),
                                       lrs_lora=(1e-2,), seeds=1, ranks=(1,), dense_dims=(), start=(16,), d_min=16,
                                       d_max=32, refine=0))


def test_parameter_arithmetic_counts_r_times_d_plus_k():
    a = parameter_arithmetic("skills", rank=2, targets=("q_proj",))
    # two layers, W_q 64×64: r(d + k) = 2 · 128 per layer
    assert a["trainable"] == 2 * 2 * (64 + 64) and a["base_total"] == 110_720
    assert a["total"] == a["base_total"] + a["trainable"]
    assert a["gpt3"] == {"1": 4_718_592, "8": 37_748_736}
    assert "r(d+k)" in a["table"] and "blocks.1.attn.q_proj" in a["table"]


def test_run_demo_writes_its_json_and_a_rerun_reuses_its_runs(tmp_path):
    out = tmp_path / "demo"
    result = run_demo(out, jobs=1, settings=TINY)
    saved = json.loads((out / "demo.json").read_text())
    assert saved["settings"]["jobs"] == 1 and saved["settings"]["steps"] == 2
    assert [(r["method"], r["rank"]) for r in saved["compare"]] == [("full", None), ("lora", 1)]
    assert all("losses" not in r for r in saved["compare"])
    assert (out / "compare" / "compare.json").is_file() and (out / "intrinsic-budget.json").is_file()
    curve = result["intrinsic"]["subspace"]
    assert curve["d90"] == 16 and curve["d90_bounded"]  # the first d already reached the target
    assert [r["rank"] for r in result["intrinsic"]["lora"]] == [1]
    runs = sorted((out / "intrinsic" / "runs").iterdir())
    stamps = [p.stat().st_mtime_ns for p in runs]
    again = run_demo(out, jobs=1, settings=TINY)
    assert sorted((out / "intrinsic" / "runs").iterdir()) == runs
    assert [p.stat().st_mtime_ns for p in runs] == stamps  # loaded, not rerun
    assert again["compare"] == result["compare"]


def test_a_folder_with_other_files_is_refused_before_any_run(tmp_path, monkeypatch):
    (tmp_path / "notes.txt").write_text("mine")
    monkeypatch.setattr(demo, "compare", lambda *a, **k: pytest.fail("compare ran"))
    with pytest.raises(ValueError, match=r"holds files the demo does not write \(notes.txt\)"):
        run_demo(tmp_path, settings=TINY)
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="is a file"):
        check_demo_folder(tmp_path / "file")
    assert check_demo_folder(tmp_path / "new") == tmp_path / "new" and not (tmp_path / "new").exists()


def _curve(d90, bounded=False, target=0.81):
    return {"subspace": {"d90": d90, "d90_bounded": bounded, "target": target,
                         "points": [{"d": 256, "trainable": 256, "mean": 0.5},
                                    {"d": 1024, "trainable": 1024, "mean": 0.85}]},
            "full": {"D": 110_720, "metric": 0.9}, "lora": [{"rank": 4, "trainable": 7168, "mean": 0.92}]}


def test_the_d90_line_says_what_was_measured():
    assert d90_line(_curve(700.4)) == ("d90 = 700: training 700 numbers z in θ = θ0 + P z (0.63% of D = 110,720) "
                                       "reaches 0.810 = 0.9 × full fine-tuning's 0.900")
    assert "d90 = at most 256" in d90_line(_curve(256.0, bounded=True))
    assert d90_line(_curve(None)).startswith("d90: not reached up to d = 1,024")
    assert "not measured" in d90_line(_curve(None, target=None))
    table = format_budget(_curve(700.4)).splitlines()
    assert [line.split()[0] for line in table[2:]] == ["full", "LoRA", "subspace", "subspace"]
    assert table[3].endswith("7,168    6.47%   0.920")


def test_cli_demo_prints_the_tables_and_the_d90_line_and_draws_its_figures(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(demo, "DEMO", TINY)
    assert main(["demo", "--out", str(tmp_path), "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    for text in ("r(d+k)", "GPT-3 175B", "unmerged ms", "subspace d=16", "d90 = at most 16",
                 "05_rank_and_which_weights"):
        assert text in out
    assert (tmp_path / "full-vs-lora.png").stat().st_size > 0 and (tmp_path / "intrinsic-budget.png").stat().st_size > 0
    (tmp_path / "other").mkdir()
    assert main(["demo", "--out", str(tmp_path)]) == 2
    assert "holds files the demo does not write (other)" in capsys.readouterr().err
    assert main(["demo", "--jobs", "0"]) == 2
