"""Bottleneck adapters and prefix-tuning as methods: registry entries, CLI options named after their settings,
``minilora finetune --method``, the files a run saves, and loading them back."""

from __future__ import annotations

import json

import numpy as np
import pytest

import minilora as ml
from minilora.alternatives import ALT_CONFIG_NAME, ALT_WEIGHTS_NAME, adapter_param_count, prefix_param_count
from minilora.cli import build_parser, main
from minilora.experiments.methods import METHODS, get_method
from minilora.experiments.runs import FINETUNE_METHODS, load_base, load_trained
from minilora.train import TrainConfig


def test_the_registry_holds_both_with_their_defaults():
    assert {"adapter", "prefix"} <= set(METHODS) and {"adapter", "prefix"} <= set(FINETUNE_METHODS)
    assert get_method("adapter").check({}) == {"bottleneck": 16, "placement": "houlsby"}
    assert get_method("prefix").check({}) == {"num_virtual_tokens": 8, "prefix_projection": False,
                                              "encoder_hidden_size": 64}


@pytest.mark.parametrize("method, settings, match", [
    ("adapter", {"bottleneck": 0}, "adapter: bottleneck must be an integer >= 1, got 0"),
    ("adapter", {"placement": "middle"}, "adapter: placement must be one of houlsby, lin, got 'middle'"),
    ("adapter", {"r": 4}, "r does not apply to method 'adapter'"),
    ("prefix", {"num_virtual_tokens": -2}, "prefix: num_virtual_tokens must be an integer >= 1, got -2"),
    ("prefix", {"prefix_projection": 1}, "prefix: prefix_projection must be True or False"),
    ("prefix", {"bottleneck": 4}, "bottleneck does not apply to method 'prefix'"),
])
def test_bad_settings_are_one_line_errors(method, settings, match):
    with pytest.raises(ValueError, match=match):
        get_method(method).check(settings)


def test_each_prepares_the_model_and_counts_what_trains():
    adapter = get_method("adapter").prepare(load_base("skills"), {"bottleneck": 4, "placement": "lin"})
    c, layers = adapter.config.n_embd, adapter.config.n_layer
    assert get_method("adapter").trainable(adapter) == adapter_param_count(c, layers, 4, "lin")
    prefix = get_method("prefix").prepare(load_base("skills"), {"num_virtual_tokens": 3})
    assert get_method("prefix").trainable(prefix) == prefix_param_count(layers, c) // 8 * 3 == 3 * layers * 2 * c


def test_every_setting_is_an_option_of_finetune_named_after_it():
    text = build_parser().commands["finetune"].format_help()
    for option in ("--bottleneck", "--placement", "--num-virtual-tokens", "--prefix-projection",
                   "--encoder-hidden-size"):
        assert option in text
    assert main(["finetune", "--task", "subtract", "--method", "lora", "--placement", "lin", "--steps", "1"]) == 2


@pytest.mark.parametrize("method, argv, settings", [
    ("adapter", ["--bottleneck", "2", "--placement", "lin"], {"bottleneck": 2, "placement": "lin"}),
    ("prefix", ["--num-virtual-tokens", "2", "--prefix-projection", "--encoder-hidden-size", "4"],
     {"num_virtual_tokens": 2, "prefix_projection": True, "encoder_hidden_size": 4}),
])
def test_finetune_saves_its_own_files_and_they_load_back(tmp_path, method, argv, settings):
    out = tmp_path / method
    assert main(["finetune", "--task", "subtract", "--method", method, *argv, "--steps", "2", "--batch-size", "4",
                 "--checkpoint-seconds", "0", "--out", str(out)]) == 0
    config = json.loads((out / ALT_CONFIG_NAME).read_text())
    assert config == {"method": method, "settings": settings, "base_model_name_or_path": "skills"}
    assert json.loads((out / "run.json").read_text())["settings"] == settings
    assert (out / ALT_WEIGHTS_NAME).is_file() and not (out / "model.safetensors").exists()
    # the trained model, rebuilt from the base and the saved files, computes what a fresh Python run computes
    model, task = load_trained(str(out))
    assert task == "subtract"
    base = get_method(method).prepare(load_base("skills"), settings, seed=0)
    idx = np.random.default_rng(0).integers(0, base.config.vocab_size, (2, 6))
    with ml.no_grad():
        trained, fresh = model(idx)[0].numpy(), base(idx)[0].numpy()
    assert not np.array_equal(trained, fresh)  # it learned something in two steps
    assert main(["evaluate", str(out)]) == 0


def test_finetune_through_python_returns_the_trained_model(tmp_path):
    from minilora.experiments.runs import finetune

    model, result = finetune("skills", "subtract", "adapter", TrainConfig(steps=2, batch_size=4, lr=1e-2),
                             out=tmp_path / "run", settings={"bottleneck": 2})
    assert result.final_metrics and (tmp_path / "run" / ALT_WEIGHTS_NAME).is_file()
    assert get_method("adapter").trainable(model) == adapter_param_count(64, 2, 2)


def test_compare_runs_them_beside_full_and_lora(tmp_path):
    from minilora.data import get_task
    from minilora.experiments.compare import COMPARE_FILE, compare, format_table

    rows = compare(get_task("reverse-shift", n_eval=10), base=ml.pretrained("skills"), ranks=(1,), steps=2,
                   batch_size=4, out=tmp_path, memory_steps=1, latency_batch=4, latency_repeats=1,
                   methods={"adapter": {"bottleneck": 2}, "prefix": {}}, lr_methods={"prefix": 0.05})
    assert [r["run"] for r in rows] == ["full", "lora-r1", "adapter", "prefix"]
    adapter, prefix = rows[2], rows[3]
    assert adapter["trainable_params"] == adapter_param_count(64, 2, 2) and adapter["rank"] is None
    assert prefix["trainable_params"] == prefix_param_count(2, 64) and prefix["lr"] == 0.05
    assert adapter["infer_merged_ms"] is None and adapter["file"].endswith(ALT_WEIGHTS_NAME)
    saved = json.loads((tmp_path / COMPARE_FILE).read_text())["settings"]["methods"]
    assert saved == {"adapter": {"settings": {"bottleneck": 2, "placement": "houlsby"}, "lr": 1e-2},
                     "prefix": {"settings": get_method("prefix").check({}), "lr": 0.05}}
    assert "adapter" in format_table(rows)
    for name in ("subspace", "full"):  # nothing is trained before the refusal
        with pytest.raises(ValueError, match=f"{name!r} is not one compare adds"):
            compare("subtract", methods=[name])
    with pytest.raises(ValueError, match="lr_methods names"):
        compare("subtract", methods=["adapter"], lr_methods={"prefix": 0.1})


@pytest.mark.parametrize("argv, message", [
    (["--bottleneck", "2"], "argument --bottleneck: applies to method adapter, which is not in --methods"),
    (["--methods", "adapter", "--lr-prefix", "0.1"], "argument --lr-prefix: applies to method prefix"),
    (["--methods", "subspace"], "argument --methods: 'subspace' is not one compare adds"),
    (["--methods", "prefix", "--num-virtual-tokens", "0"], "argument --num-virtual-tokens: expected an integer >= 1"),
])
def test_compare_options_of_the_alternatives(argv, message, capsys):
    assert main(["compare", "--task", "subtract", "--steps", "1", *argv]) == 2
    assert message in capsys.readouterr().err
