"""`minilora compare` re-uses its folder only when told to, and resumes: finished runs are skipped."""

import json

import pytest

import minilora.train
from minilora.cli import main

ARGS = ["compare", "--task", "subtract", "--ranks", "1", "--steps", "2", "--batch-size", "4"]


@pytest.fixture
def counted_steps(monkeypatch):
    """Count the steps of the training loop (its learning-rate lookups), and raise KeyboardInterrupt at the step
    numbers put in ``interrupt_at`` (as Ctrl-C between two steps would)."""
    real = minilora.train.warmup_cosine
    state = {"calls": 0, "interrupt_at": set()}

    def lr_of_step(*args, **kwargs):
        state["calls"] += 1
        if state["calls"] in state["interrupt_at"]:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(minilora.train, "warmup_cosine", lr_of_step)
    return state


def test_interrupted_compare_resumes_skipping_finished_runs(tmp_path, capsys, counted_steps):
    out = tmp_path / "cmp"
    counted_steps["interrupt_at"] = {4}  # full fine-tuning's 2 steps finish; LoRA's second step is interrupted
    assert main([*ARGS, "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip().endswith(f"resume with: minilora {' '.join(ARGS)} "
                                                           f"--out {out} --resume")
    assert (out / "full" / "row.json").is_file() and not (out / "compare.json").exists()
    counted_steps["calls"], counted_steps["interrupt_at"] = 0, set()
    assert main([*ARGS, "--out", str(out), "--resume"]) == 0
    assert counted_steps["calls"] == 2  # only the LoRA run trained again
    rows = json.loads((out / "compare.json").read_text())["rows"]
    assert [r["run"] for r in rows] == ["full", "lora-r1"]
    assert main([*ARGS, "--out", str(out), "--resume"]) == 0 and counted_steps["calls"] == 2  # all finished: no step


def test_an_existing_compare_is_kept_unless_resumed_or_overwritten(tmp_path, capsys, counted_steps):
    out = tmp_path / "cmp"
    assert main([*ARGS, "--out", str(out)]) == 0
    before = (out / "compare.json").read_bytes()
    capsys.readouterr()
    counted_steps["calls"] = 0
    assert main([*ARGS, "--out", str(out)]) == 2
    assert "already holds a compare run" in capsys.readouterr().err and counted_steps["calls"] == 0
    assert (out / "compare.json").read_bytes() == before
    assert main([*ARGS, "--out", str(out), "--resume", "--lr-lora", "0.02"]) == 2
    assert "lr = 0.01, not 0.02" in capsys.readouterr().err and counted_steps["calls"] == 0
    assert main([*ARGS, "--out", str(out), "--overwrite"]) == 0 and counted_steps["calls"] == 4


def test_compare_prints_a_legend_and_figures_draws_its_folder(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main([*ARGS, "--out", str(out)]) == 0
    assert "columns: r the rank" in capsys.readouterr().out
    assert main(["figures", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out / 'full-vs-lora.png'}"
    assert (out / "full-vs-lora.png").stat().st_size > 10_000
    assert main([*ARGS, "--out", str(out), "--overwrite"]) == 0  # the figure is compare's own file: cleared too
    assert not (out / "full-vs-lora.png").exists()


def test_lr_of_a_method_reaches_its_runs_and_only_theirs(tmp_path, capsys, monkeypatch):
    """--lr-dora is the peak lr the training loop of every DoRA run (one per rank) is given; the other runs keep
    theirs (VeRA: --lr-lora's, as every --lr-METHOD left out)."""
    peaks = []
    real = minilora.train.warmup_cosine

    def lr_of_step(step, lr, *args, **kwargs):
        peaks.append(lr)
        return real(step, lr, *args, **kwargs)

    monkeypatch.setattr(minilora.train, "warmup_cosine", lr_of_step)
    argv = [*ARGS[:4], "1,2", *ARGS[5:], "--methods", "dora,vera", "--lr-dora", "0.05", "--out", str(tmp_path / "c")]
    assert main([*argv, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [(r["run"], r["lr"]) for r in rows] == [("full", 3e-3), ("lora-r1", 1e-2), ("lora-r2", 1e-2),
                                                   ("dora-r1", 0.05), ("dora-r2", 0.05), ("vera", 1e-2)]
    assert peaks == [3e-3] * 2 + [1e-2] * 4 + [0.05] * 4 + [1e-2] * 2  # 2 steps a run, in the rows' order


def test_vera_rank_sets_the_rank_of_veras_shared_pair(tmp_path, capsys):
    argv = [*ARGS, "--methods", "vera", "--vera-rank", "16", "--out", str(tmp_path / "c"), "--json"]
    assert main(argv) == 0
    rows = {r["run"]: r for r in json.loads(capsys.readouterr().out)["rows"]}
    assert rows["vera"]["rank"] == 16 and rows["lora-r1"]["rank"] == 1  # --ranks stay LoRA's


@pytest.mark.parametrize("argv, message", [
    (["--methods", "dora", "--d-initial", "0.2"], "argument --d-initial: applies to method vera, which is not in "
                                                  "--methods"),
    (["--methods", "vera", "--loraplus-lr-ratio", "4"], "argument --loraplus-lr-ratio: applies to method lora-plus"),
    (["--methods", "vera", "--lr-lora-fa", "0.1"], "argument --lr-lora-fa: applies to method lora-fa"),
    (["--methods", "dora", "--vera-rank", "16"], "argument --vera-rank: applies to method vera, which is not in"),
    (["--methods", "vera", "--vera-rank", "0"], "argument --vera-rank: expected an integer >= 1, got '0'"),
    (["--methods", "dora,subspace"], "argument --methods: 'subspace' is not one compare adds: its z in θ = θ0 + P z "
                                     "is measured by `minilora intrinsic`"),
])
def test_an_option_of_a_method_not_compared_is_refused_before_training(argv, message, tmp_path, capsys,
                                                                       counted_steps):
    assert main([*ARGS, "--out", str(tmp_path / "c"), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and counted_steps["calls"] == 0
