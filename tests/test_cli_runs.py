"""The run folder from the shell's side: checked before any step, one run per folder, honest resume, Ctrl-C,
divergence."""

import json
import shlex

import numpy as np
import pytest

import minilora.train
from minilora.cli import main
from minilora.io import load_arrays

FAST = ["--steps", "2", "--batch-size", "4"]


def finetune(*args):
    return main(["finetune", "--task", "subtract", *FAST, *args])


def listing(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir()}


@pytest.fixture
def no_training(monkeypatch):
    """Any training step fails the test: the command must stop before it."""

    def forbidden(*args, **kwargs):
        raise AssertionError("a training step ran")

    monkeypatch.setattr(minilora.train, "train_step", forbidden)


def test_finetune_without_out_writes_a_new_named_folder_and_says_where(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert finetune("--method", "lora", "--r", "2") == 0
    out = capsys.readouterr().out
    first = tmp_path / "runs" / "finetune-subtract-lora-r2-s0"
    assert f"run folder: {first.relative_to(tmp_path)}" in out
    assert {"adapter_model.safetensors", "adapter_config.json", "run.json"} <= set(listing(first))
    assert json.loads((first / "run.json").read_text())["status"] == "finished"
    assert finetune("--method", "lora", "--r", "2") == 0  # a second run never lands in the first one's folder
    assert (tmp_path / "runs" / "finetune-subtract-lora-r2-s0-2" / "adapter_model.safetensors").is_file()


def test_an_existing_run_is_kept_unless_resumed_or_overwritten(tmp_path, capsys):
    out = tmp_path / "run"
    assert finetune("--method", "full", "--out", str(out)) == 0
    before = listing(out)
    capsys.readouterr()
    assert finetune("--method", "lora", "--out", str(out)) == 2
    err = capsys.readouterr().err
    assert "already holds finetune full subtract, finished at step 2 of 2" in err and "--overwrite" in err
    assert len(err.strip().splitlines()) == 1 and listing(out) == before
    assert finetune("--method", "lora", "--out", str(out), "--overwrite") == 0
    files = set(listing(out))
    assert "model.safetensors" not in files and "adapter_model.safetensors" in files  # only the new run's files
    assert json.loads((out / "run.json").read_text())["method"] == "lora"


def test_a_folder_of_other_files_is_never_overwritten(tmp_path, capsys, no_training):
    (tmp_path / "thesis.tex").write_text("years of work")
    assert finetune("--method", "full", "--out", str(tmp_path), "--overwrite") == 2
    assert "thesis.tex" in capsys.readouterr().err
    assert listing(tmp_path) == {"thesis.tex": b"years of work"}


@pytest.mark.parametrize("command", [["finetune", "--task", "subtract"], ["pretrain", "--task", "add"],
                                     ["compare", "--task", "subtract", "--ranks", "1"]])
def test_an_out_that_is_a_file_fails_before_any_step(tmp_path, capsys, no_training, command):
    taken = tmp_path / "taken"
    taken.write_text("x")
    for out in (taken, taken / "below"):
        assert main([*command, *FAST, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert "is a file" in err and len(err.strip().splitlines()) == 1
    assert listing(tmp_path) == {"taken": b"x"}


def test_resume_is_honest(tmp_path, capsys):
    out = tmp_path / "run"
    assert finetune("--method", "lora", "--r", "2", "--out", str(out)) == 0
    finished = listing(out)
    capsys.readouterr()
    for change, message in ((["--lr", "0.02"], "lr = 0.01, not 0.02"), (["--r", "4"], "r = 2, not 4"),
                            (["--seed", "1"], "seed = 0, not 1"),
                            (["--task", "sort"], "task = 'subtract', not 'sort'")):
        assert main(["finetune", "--task", "subtract", *FAST, "--method", "lora", "--r", "2", "--out", str(out),
                     "--resume", *change]) == 2  # the last --task wins
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1
    assert main(["finetune", "--task", "subtract", "--steps", "1", "--batch-size", "4", "--method", "lora", "--r", "2",
                 "--out", str(out), "--resume"]) == 2
    assert "already done 2 steps" in capsys.readouterr().err
    assert finetune("--method", "lora", "--r", "2", "--out", str(out), "--resume") == 0
    printed = capsys.readouterr().out
    assert "already finished (2 steps); nothing changed" in printed and "wrote" not in printed
    assert listing(out) == finished


def test_extending_steps_keeps_the_warmup_and_is_recorded(tmp_path):
    out = tmp_path / "run"
    base = ["finetune", "--task", "subtract", "--batch-size", "4", "--method", "lora", "--out", str(out)]
    assert main([*base, "--steps", "40"]) == 0
    assert main([*base, "--steps", "60", "--resume"]) == 0  # default warm-up would be 3 for 60 steps; the run keeps 2
    run = json.loads((out / "run.json").read_text())
    assert (run["status"] == "finished" and run["train_config"]["steps"] == 60
            and run["train_config"]["warmup_steps"] == 2)
    assert run["extensions"] == [{"at_step": 40, "from_steps": 40, "to_steps": 60}]
    assert len(json.loads((out / "history.json").read_text())["history"]) == 60


def test_ctrl_c_saves_prints_the_resume_command_and_exits_130(tmp_path, monkeypatch, capsys):
    straight, out = tmp_path / "straight", tmp_path / "stopped"
    args = ["finetune", "--task", "subtract", "--steps", "5", "--batch-size", "4", "--method", "lora", "--r", "2"]
    assert main([*args, "--out", str(straight)]) == 0
    real_step, calls = minilora.train.train_step, []

    def interrupted_third_step(*a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_step(*a, **k)

    monkeypatch.setattr(minilora.train, "train_step", interrupted_third_step)
    capsys.readouterr()
    assert main([*args, "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    resume = err.split("resume with: ")[1].strip()
    assert json.loads((out / "run.json").read_text())["status"] == "interrupted"
    monkeypatch.setattr(minilora.train, "train_step", real_step)
    command = shlex.split(resume)
    assert command[0] == "minilora" and "--resume" in command
    assert main(command[1:]) == 0
    a, _ = load_arrays(straight / "adapter_model.safetensors")
    b, _ = load_arrays(out / "adapter_model.safetensors")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)  # bit for bit
    assert json.loads((out / "run.json").read_text())["status"] == "finished"


def test_divergence_is_one_line_and_the_run_says_so(tmp_path, capsys):
    out = tmp_path / "run"
    with np.errstate(all="ignore"):
        code = main(["finetune", "--task", "subtract", "--steps", "6", "--batch-size", "4", "--method", "full",
                     "--lr", "1e30", "--checkpoint-every", "1", "--out", str(out)])
    assert code == 2
    err = capsys.readouterr().err
    assert "diverged at step" in err and "learning rate" in err and len(err.strip().splitlines()) == 1
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "diverged" and not (out / "model.safetensors").exists()


def test_stale_temporary_files_are_cleaned_on_the_next_run(tmp_path):
    out = tmp_path / "run"
    assert finetune("--method", "lora", "--out", str(out), "--checkpoint-every", "1") == 0
    killed = out / ".checkpoint.safetensors.0a1b2c3d4e5f.tmp"  # what a kill -9 during a write leaves
    killed.write_bytes(b"half a file")
    assert finetune("--method", "lora", "--out", str(out), "--steps", "3", "--resume") == 0
    assert not killed.exists() and json.loads((out / "run.json").read_text())["steps_done"] == 3


@pytest.mark.parametrize("signum", ["SIGINT", "SIGTERM", "SIGHUP"])
def test_a_real_stop_signal_to_the_process_exits_128_plus_signal_with_one_line(signum, tmp_path):
    """SIGINT (Ctrl-C), SIGTERM (kill, timeout, a batch scheduler) or SIGHUP (a closed terminal) to a real
    `minilora finetune` process while it trains: exit 128 + signal, one line with the resume command, a resumable
    checkpoint."""
    import os
    import signal
    import subprocess
    import sys
    import time

    signum = getattr(signal, signum)

    out = tmp_path / "run"
    env = {**os.environ, "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "minilora", "finetune", "--task", "subtract", "--steps", "100000",
                                "--batch-size", "4", "--checkpoint-every", "1", "--out", str(out)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                               # not ignored, as in a shell
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while not (out / "checkpoint.safetensors").exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signum)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 128 + signum, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and "resume with: minilora finetune" in err
    # other signals are named: "interrupted by SIGTERM"
    assert (signum == signal.SIGINT) == ("interrupted at step" in err)
    assert json.loads((out / "run.json").read_text())["status"] == "interrupted"
    resume = shlex.split(err.split("resume with: ")[1])
    assert resume[:2] == ["minilora", "finetune"] and resume[-1] == "--resume"
