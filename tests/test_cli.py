"""The ``minilora`` command: help, self-check, and a pretrain → finetune round trip from the shell's point of view."""

import json

import numpy as np
import pytest

from minilora.cli import main
from minilora.models.checkpoint import load_model


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for name in ("selfcheck", "pretrain", "finetune", "tasks"):
        assert name in out


def test_selfcheck_gradchecks_and_learns(capsys):
    assert main(["selfcheck", "--steps", "60"]) == 0
    out = capsys.readouterr().out
    assert "gradcheck" in out and "match finite differences" in out
    assert "training: loss" in out


def test_pretrain_then_finetune_full(tmp_path, capsys):
    base = tmp_path / "base"
    assert main(["pretrain", "--task", "add", "--size", "tiny", "--steps", "6", "--batch-size", "8",
                 "--out", str(base)]) == 0
    model = load_model(base)
    assert model.config.n_embd == 64
    ft = tmp_path / "ft"
    assert main(["finetune", "--base", str(base), "--task", "subtract", "--method", "full", "--steps", "4",
                 "--batch-size", "8", "--lr", "1e-3", "--out", str(ft)]) == 0
    tuned = load_model(ft)
    changed = [k for k, v in tuned.state_dict().items() if not np.array_equal(v, model.state_dict()[k])]
    assert changed, "full fine-tuning changed no weight"
    history = json.loads((ft / "history.json").read_text())
    assert len(history["history"]) == 4
    assert "full fine-tuning" in capsys.readouterr().out


def test_unknown_task_is_a_clean_error(tmp_path, capsys):
    assert main(["pretrain", "--task", "nonsense", "--steps", "1", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown task 'nonsense'" in err


def test_vocabulary_mismatch_is_a_clean_error(tmp_path, capsys):
    base = tmp_path / "base"
    assert main(["pretrain", "--task", "surnames", "--steps", "2", "--batch-size", "4", "--out", str(base)]) == 0
    assert main(["finetune", "--base", str(base), "--task", "subtract", "--method", "full", "--steps", "1"]) == 2
    assert "vocabulary" in capsys.readouterr().err


def test_params_prints_the_per_layer_table_and_gpt3_counts(capsys):
    assert main(["params", "--r", "2", "--target-modules", "q_proj,v_proj"]) == 0
    out = capsys.readouterr().out
    assert "blocks.1.attn.v_proj" in out and "fc_in" not in out
    assert "1,024" in out  # 4 adapted 64x64 matrices × r(d + k) = 4 · 2 · 128
    assert "4,718,592" in out and "37,748,736" in out


def test_bench_subcommand_prints_the_table(capsys):
    assert main(["bench", "--configs", "bench-tiny", "--methods", "full", "--steps", "1", "--untimed-steps", "0",
                 "--no-torch", "--threads", "0"]) == 0
    out = capsys.readouterr().out
    assert "bench-tiny" in out and "GFLOP/s" in out


def test_version_and_python_dash_m(capsys):
    import subprocess
    import sys

    import minilora

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out.strip() == f"minilora {minilora.__version__}"
    done = subprocess.run([sys.executable, "-m", "minilora", "selfcheck", "--steps", "0"], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 2  # the command's exit code, not 0
    assert done.stderr.strip() == ("minilora selfcheck: error: argument --steps: expected an integer >= 1, got '0' "
                                   "(see minilora selfcheck --help)")


def test_generate_from_a_shipped_model_and_from_an_adapter_folder(tmp_path, capsys):
    assert main(["generate", "skills", "--prompt", "Rabc="]) == 0
    assert capsys.readouterr().out == "Rabc=cba.\n"  # greedy: the skills model reverses
    assert main(["generate", "names", "--prompt", ".ma", "--temperature", "1", "--top-k", "5", "--samples", "3",
                 "--seed", "3"]) == 0
    names = capsys.readouterr().out.split()
    assert len(names) == 3 and all(n.startswith(".ma") for n in names)
    out = tmp_path / "adapter"
    assert main(["finetune", "--task", "reverse-shift", "--steps", "2", "--batch-size", "4", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["generate", str(out), "--prompt", "Tabc=", "--max-new-tokens", "3"]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed.startswith("Tabc=") and len(printed) <= len("Tabc=") + 3
    assert main(["generate", str(tmp_path / "nothing"), "--prompt", "a"]) == 2
    assert "neither a shipped model" in capsys.readouterr().err


def test_evaluate_prints_the_metric_once_rounded(tmp_path, capsys):
    out = tmp_path / "full"
    assert main(["finetune", "--task", "subtract", "--method", "full", "--steps", "2", "--batch-size", "4",
                 "--out", str(out)]) == 0
    trained = capsys.readouterr().out
    assert trained.count("accuracy") == 1  # the final metric once, not an evaluation line and a JSON dump
    assert main(["evaluate", str(out)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{out} on subtract (test): accuracy ") and len(line.splitlines()) == 1
    value = line.rsplit(" ", 1)[1]
    assert len(value.split(".")[1]) == 3  # rounded to 3 decimals
    assert json.loads((out / "run.json").read_text())["metrics"]["accuracy"] == pytest.approx(float(value), abs=5e-4)


def test_tables_print_a_legend(capsys):
    assert main(["params", "--r", "2"]) == 0
    assert "columns: W is d×k" in capsys.readouterr().out


def test_selfcheck_from_python_refuses_zero_steps_before_any_work():
    from minilora.experiments.selfcheck import run_selfcheck

    said = []
    with pytest.raises(ValueError, match="at least 1 training step, got steps=0"):
        run_selfcheck(steps=0, echo=said.append)
    assert said == []  # refused before the gradcheck ran


@pytest.mark.parametrize("argv", [["evaluate", "skills", "--task", "surnames"],
                                  ["generate", "names", "--task", "reverse", "--prompt", ".ma"]])
def test_a_task_in_another_vocabulary_is_refused_not_scored(argv, capsys):
    assert main(argv) == 2  # scoring the 67-token skills model on 28-token names would print a meaningless number
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1
    assert "tokens but" in captured.err and "model's vocabulary" in captured.err


@pytest.mark.parametrize("extra", [["--task", "nonsense"], ["--task", "subtract", "--r", "100", "--out", "x"]])
def test_finetune_bad_input_is_one_line_and_writes_nothing(extra, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["finetune", "--steps", "1", *extra]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1  # no "run folder:" before the error
    assert list(tmp_path.iterdir()) == []


def test_tasks_says_what_each_task_is_for_with_an_example(capsys):
    from minilora.data import SKILLS

    assert main(["tasks"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert lines["sort"].split()[1] == "fine-tuning" and lines["copy"].split()[1] == "pretraining"
    assert "fine-tuning" in lines["first-names"] and "vocab 28" in lines["first-names"]
    assert "far from pretraining" in lines["sort"]  # the task's one-line description
    example = lines["reverse-shift"].split()[-1]  # T<input>=<output>.
    text, answer = example[1:-1].split("=")
    assert example[0] == "T" and answer == SKILLS["reverse-shift"].answer(text)


def test_divergence_from_the_shell_is_not_buried_in_numpy_warnings(tmp_path, capsys):
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main(["finetune", "--task", "subtract", "--steps", "4", "--batch-size", "4", "--method", "full",
                     "--lr", "1e30", "--out", str(tmp_path / "run")])
    assert code == 2 and "diverged at step" in capsys.readouterr().err
    assert [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)] == []


@pytest.mark.parametrize("command", [["finetune", "--task", "subtract"], ["pretrain", "--task", "add", "--out", "run"],
                                     ["compare", "--task", "subtract"]])
def test_a_warmup_longer_than_the_run_is_refused_before_any_work(command, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main([*command, "--steps", "10", "--warmup-steps", "11"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1
    assert "--warmup-steps: 11 warm-up steps exceed --steps 10" in captured.err
    assert list(tmp_path.iterdir()) == []
    assert main([*command, "--steps", "2", "--warmup-steps", "2", "--batch-size", "4",
                 *(["--ranks", "1"] if command[0] == "compare" else [])]) == 0
