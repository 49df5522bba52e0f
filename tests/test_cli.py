"""The ``minilora`` command: help, self-check, and a pretrain → finetune round trip from the shell's point of view."""

import json

import numpy as np
import pytest

from minilora.models.checkpoint import load_model
from minilora.cli import main


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
    assert main(["pretrain", "--task", "add", "--config", "tiny", "--steps", "6", "--batch-size", "8",
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
    assert main(["params", "--rank", "2", "--targets", "q_proj,v_proj"]) == 0
    out = capsys.readouterr().out
    assert "blocks.1.attn.v_proj" in out and "fc_in" not in out
    assert "1,024" in out  # 4 adapted 64x64 matrices × r(d + k) = 4 · 2 · 128
    assert "4,718,592" in out and "37,748,736" in out


def test_bench_subcommand_prints_the_table(capsys):
    assert main(["bench", "--config", "bench-tiny", "--method", "full", "--steps", "1", "--warmup", "0",
                 "--no-torch", "--threads", "0"]) == 0
    out = capsys.readouterr().out
    assert "bench-tiny" in out and "GFLOP/s" in out
