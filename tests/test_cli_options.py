"""The option vocabulary from the shell's side: options that do not apply are refused, generate stops where a sample
ends, a stopped sweep says what it kept, bench prints JSON with --json and writes it with --out, and the errors a user
can cause are one line that names CLI options."""

import json
import subprocess
import sys

import pytest

from minilora.cli import main
from minilora.cli.methods import METHOD_OPTIONS


def one_line_error(capsys) -> str:
    captured = capsys.readouterr()
    assert captured.out == "" and "Traceback" not in captured.err
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize("option", [["--r", "8"], ["-r", "8"], ["--lora-alpha", "16"], ["--use-rslora"],
                                    ["--target-modules", "q_proj"], ["--init-lora-weights", "true"]])
def test_an_option_of_another_method_is_refused_before_any_work(option, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["finetune", "--task", "subtract", "--method", "full", *option]) == 2
    line = one_line_error(capsys)
    named = "--r" if option[0] == "-r" else option[0]
    assert line.startswith(f"minilora finetune: error: argument {named}: does not apply to --method full")
    assert list(tmp_path.iterdir()) == []


def test_every_method_option_is_a_setting_of_some_method():
    from minilora.experiments.methods import METHODS

    settings = {name for method in METHODS.values() for name in method.settings}
    assert set(METHOD_OPTIONS.values()) <= settings


def test_method_settings_reach_the_run(tmp_path):
    out = tmp_path / "run"
    assert main(["finetune", "--task", "subtract", "--steps", "1", "--batch-size", "4", "-r", "2", "--lora-alpha", "8",
                 "--use-rslora", "--target-modules", "q_proj,v_proj", "--out", str(out)]) == 0
    config = json.loads((out / "adapter_config.json").read_text())
    assert (config["r"], config["lora_alpha"], config["use_rslora"]) == (2, 8, True)
    assert sorted(config["target_modules"]) == ["q_proj", "v_proj"]


def test_generate_stops_at_the_end_of_the_sample(monkeypatch, capsys):
    from minilora.models import GPT

    calls = []
    real = GPT.__call__
    monkeypatch.setattr(GPT, "__call__", lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    assert main(["generate", "skills", "--prompt", "Rabc=", "--max-new-tokens", "1000"]) == 0
    assert capsys.readouterr().out == "Rabc=cba.\n"
    assert len(calls) <= 5  # "c", "b", "a", "." and no more: not 1000 forward passes


@pytest.mark.parametrize("value", ["0", "10001", "100000", "x"])
def test_max_new_tokens_is_bounded_and_named(value, capsys):
    assert main(["generate", "skills", "--prompt", "Rab=", "--max-new-tokens", value]) == 2
    line = one_line_error(capsys)
    assert "argument --max-new-tokens: expected an integer from 1 to 10,000" in line


def test_an_adapter_folder_passed_as_base_is_recognised(tmp_path, capsys):
    adapter = tmp_path / "adapter"
    assert main(["finetune", "--task", "subtract", "--steps", "1", "--batch-size", "4", "--out", str(adapter)]) == 0
    capsys.readouterr()
    assert main(["finetune", "--task", "subtract", "--steps", "1", "--base", str(adapter), "--out",
                 str(tmp_path / "b")]) == 2
    line = one_line_error(capsys)
    assert "is a LoRA adapter folder, not a base model" in line and "--base" in line


def test_an_adapter_on_the_wrong_base_names_cli_options(tmp_path, capsys):
    base = tmp_path / "base"
    assert main(["pretrain", "--task", "add", "--steps", "1", "--batch-size", "4", "--out", str(base)]) == 0
    adapter = tmp_path / "adapter"
    assert main(["finetune", "--task", "subtract", "--steps", "1", "--batch-size", "4", "--out", str(adapter)]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(adapter), "--base", str(base)]) == 2  # trained on skills, loaded onto another GPT
    line = one_line_error(capsys)
    assert "made for another base model" in line and "check_base" not in line and "with --base" in line


def test_cuda_without_cupy_says_how_to_install_it(capsys):
    from minilora.backend import cuda_available

    if cuda_available():
        pytest.skip("this machine has a GPU")
    assert main(["evaluate", "skills", "--device", "cuda"]) == 2
    line = one_line_error(capsys)
    assert "cuda" in line and "[gpu]" in line


def test_a_stopped_sweep_says_what_it_kept_and_how_to_continue(monkeypatch, capsys):
    from minilora.experiments import lora_paper
    from minilora.experiments.sweep import SweepInterrupted

    def stopped(**kwargs):
        raise SweepInterrupted(finished=12, total=49, runs="runs/lora-paper-fast")

    monkeypatch.setattr(lora_paper, "lora_paper", stopped)
    assert main(["lora-paper", "--fast", "--jobs", "2"]) == 130
    captured = capsys.readouterr()
    assert captured.err.strip() == ("minilora lora-paper: interrupted; 12 of 49 runs finished and are kept in "
                                    "runs/lora-paper-fast; resume with: minilora lora-paper --fast --jobs 2")


def test_bench_prints_json_with_json_and_writes_it_with_out(tmp_path, capsys):
    args = ["bench", "--configs", "bench-tiny", "--methods", "lora", "--steps", "1", "--untimed-steps", "0",
            "--no-torch", "--threads", "0"]
    out = tmp_path / "bench.json"
    assert main([*args, "--json", "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert [r["method"] for r in printed["results"]] == ["lora"]
    assert json.loads(out.read_text())["results"][0]["config"] == "bench-tiny"
    assert main([*args, "--out", str(tmp_path)]) == 2
    assert "argument --out: " in one_line_error(capsys)


def test_python_dash_m_minilora_bench_is_the_bench_command():
    done = subprocess.run([sys.executable, "-m", "minilora.bench", "--configs", "nonsense", "--no-torch",
                           "--threads", "0"], capture_output=True, text=True, check=False)
    assert done.returncode == 2 and done.stderr.startswith("minilora bench: error:") and "nonsense" in done.stderr
    done = subprocess.run([sys.executable, "-m", "minilora.bench", "--warmup", "1"], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 2 and "unrecognized arguments: --warmup 1" in done.stderr


def test_help_shows_one_vocabulary():
    from minilora.cli import build_parser

    texts = {name: parser.format_help() for name, parser in build_parser().commands.items()}
    for name, text in texts.items():
        assert "--warmup " not in text and "--rank " not in text and "--targets " not in text, name
        assert "--jobs" not in text or "default 1" in text, name
    for sweep in ("compare", "lora-paper", "intrinsic", "figures"):
        assert "--scheduler" in texts[sweep]


@pytest.mark.parametrize("argv, module, function, expected", [
    (["lora-paper", "--fast", "--runs", "R"], "lora_paper", "lora_paper",
     {"out": "R", "runs": "R", "fast": True, "only": None, "jobs": 1, "executor": None}),
    (["intrinsic", "--out", "O", "--only", "toy,said", "--jobs", "2"], "intrinsic", "run_intrinsic",
     {"out": "O", "runs": None, "only": ["toy", "said"], "fast": False, "jobs": 2, "executor": None}),
    (["figures", "--rerun", "--out", "F", "--jobs", "2"], "figures", "rerun_figures",
     {"out": "F", "jobs": 2, "executor": None}),
    (["demo", "--out", "D"], "demo", "run_demo", {"out": "D", "jobs": 1}),
])
def test_options_reach_the_python_api_under_the_same_names(argv, module, function, expected, monkeypatch, capsys):
    import importlib

    seen = {}

    def fake(**kwargs):
        seen.update(kwargs)
        raise ValueError("stopped by the test")

    monkeypatch.setattr(importlib.import_module(f"minilora.experiments.{module}"), function, fake)
    assert main(argv) == 2 and "stopped by the test" in capsys.readouterr().err
    assert seen == expected


def test_bench_subspace_and_profile_are_one_or_the_other(capsys):
    assert main(["bench", "--subspace", "--profile", "--threads", "0"]) == 2
    assert "argument --profile: not allowed with argument --subspace" in one_line_error(capsys)


def test_bench_profile_runs_every_config_and_method(monkeypatch, capsys):
    from minilora.bench import profile

    def fake(config, method, steps, untimed_steps, torch):
        return {"config": config, "method": method, "steps": steps, "untimed_steps": untimed_steps, "torch": torch}

    monkeypatch.setattr(profile, "profile_step", fake)
    assert main(["bench", "--profile", "--configs", "bench-tiny,bench-small", "--methods", "lora", "--steps", "2",
                 "--untimed-steps", "1", "--threads", "0", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [fake("bench-tiny", "lora", 2, 1, True),
                                                   fake("bench-small", "lora", 2, 1, True)]
    assert main(["bench", "--profile", "--configs", "bench-tiny", "--methods", "full", "--threads", "0", "--json",
                 "--no-torch"]) == 0
    assert json.loads(capsys.readouterr().out) == [fake("bench-tiny", "full", 20, 3, False)]  # no PyTorch products


def test_a_new_method_gets_an_option_per_setting_named_after_it(monkeypatch):
    from minilora.cli.methods import add_method, method_settings
    from minilora.cli.options import Parser
    from minilora.experiments import methods

    new = methods.Method("new", "a method the CLI was not written for", {"d_initial": 0.1, "shared": False, "r": 256})
    monkeypatch.setitem(methods.METHODS, "new", new)
    parser = Parser(prog="test")
    add_method(parser, ["new", "full"], default="new")
    args = parser.parse_args(["--d-initial", "0.5", "--shared", "--r", "8"])
    assert method_settings(args) == {"d_initial": 0.5, "shared": True, "r": 8}
    with pytest.raises(ValueError, match=r"argument --d-initial: does not apply to --method full"):
        method_settings(parser.parse_args(["--method", "full", "--d-initial", "0.5"]))


def test_evaluate_scores_the_split_it_is_asked_for(monkeypatch, capsys):
    from minilora.data import get_task

    splits = []
    task_class = type(get_task("reverse"))
    real = task_class.evaluate
    monkeypatch.setattr(task_class, "evaluate", lambda self, model, split="test": splits.append(split)
                        or real(self, model, split))
    assert main(["evaluate", "skills", "--task", "reverse", "--split", "validation"]) == 0
    assert capsys.readouterr().out.startswith("skills on reverse (validation): accuracy ") and splits == ["validation"]


def test_evaluate_n_eval_gives_a_small_task_its_validation_split(capsys):
    """subtract holds 497 held-out inputs: at the default 500 the test split takes them all, and the error names
    the option that fixes it; --n-eval 200 scores 200 validation inputs.  A task without n_eval is one line."""
    assert main(["evaluate", "skills", "--task", "subtract", "--split", "validation"]) == 2
    err = capsys.readouterr().err
    assert "pass --n-eval 248 or less" in err and len(err.strip().splitlines()) == 1
    assert main(["evaluate", "skills", "--task", "subtract", "--split", "validation", "--n-eval", "200"]) == 0
    assert capsys.readouterr().out.startswith("skills on subtract (validation): accuracy ")
    assert main(["evaluate", "names", "--split", "validation", "--n-eval", "100"]) == 2
    err = capsys.readouterr().err
    assert "argument --n-eval: task 'surnames' has fixed held-out sets" in err and len(err.strip().splitlines()) == 1
