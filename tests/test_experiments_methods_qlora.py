"""The ``qlora`` method: LoRA's settings plus the NF4 block size and double quantisation; it prepares a 4-bit base
with LoRA on top, trains through ``train`` and ``minilora finetune``, and saves a LoRA adapter."""

import argparse
import json

import numpy as np
import pytest

from minilora import nn
from minilora.cli import main
from minilora.cli.methods import add_method, method_settings
from minilora.data.registry import get_task
from minilora.experiments.methods import METHODS, get_method
from minilora.experiments.runs import FINETUNE_METHODS, load_base
from minilora.lora import LoRALinear, load_adapter
from minilora.quant import Linear4bit, quantize_model
from minilora.train import TrainConfig, train


def test_qlora_has_loras_settings_plus_the_block_size_and_double_quantisation():
    qlora = get_method("qlora")
    assert dict(qlora.settings) == {**METHODS["lora"].settings, "blocksize": 64, "double_quant": True}
    assert qlora.adapter and qlora.trains and "qlora" in FINETUNE_METHODS
    assert qlora.check({"r": 8, "blocksize": 128, "double_quant": False}) == {
        **get_method("lora").check({"r": 8}), "blocksize": 128, "double_quant": False}


@pytest.mark.parametrize("settings,message", [
    ({"blocksize": 48}, "blocksize must be one of 32, 64, 128"),
    ({"double_quant": "yes"}, "double_quant must be True or False"),
    ({"init_lora_weights": "pissa"}, "changes the base weight"),
    ({"d": 4}, "d does not apply to method 'qlora'"),
    ({"r": 0}, "r must be an integer >= 1"),
])
def test_bad_settings_are_refused_in_one_line(settings, message):
    with pytest.raises(ValueError, match=message):
        get_method("qlora").check(settings)


def test_prepare_quantises_every_linear_but_the_head_and_puts_lora_on_top():
    qlora = get_method("qlora")
    model = qlora.prepare(load_base("skills"), {"r": 2, "target_modules": ["q_proj"]}, seed=0)
    layers = {n: m for n, m in model.named_modules()}
    assert isinstance(layers["blocks.0.attn.q_proj"], LoRALinear)
    assert isinstance(layers["blocks.0.attn.q_proj.base"], Linear4bit)
    assert isinstance(layers["blocks.0.mlp.fc_in"], Linear4bit) and type(layers["head"]) is nn.Linear
    assert qlora.trainable(model) == 2 * 2 * (64 + 64)  # as LoRA's: two layers, W_q 64×64, r(d + k) each
    lora = get_method("lora").prepare(load_base("skills"), {"r": 2, "target_modules": ["q_proj"]}, seed=0)
    assert all(np.array_equal(a.data, b.data) for (_, a), (_, b) in zip(
        ((n, p) for n, p in model.named_parameters() if "lora_" in n),
        ((n, p) for n, p in lora.named_parameters() if "lora_" in n)))  # the same A draws for the same seed


def test_qlora_trains_through_the_training_loop():
    model = get_method("qlora").prepare(load_base("skills"), {"r": 2}, seed=0)
    result = train(model, get_task("subtract"), TrainConfig(steps=3, batch_size=8, eval_every=0))
    assert len(result.history) == 3 and all(np.isfinite(h["loss"]) for h in result.history)


def test_the_cli_options_are_blocksize_and_double_quant():
    parser = argparse.ArgumentParser()
    add_method(parser, ["lora", "qlora"], "lora")
    args = parser.parse_args(["--method", "qlora", "--blocksize", "256", "--no-double-quant"])
    assert method_settings(args)["blocksize"] == 256 and method_settings(args)["double_quant"] is False
    assert method_settings(parser.parse_args(["--method", "qlora"]))["double_quant"] is True
    with pytest.raises(ValueError, match="argument --blocksize: does not apply to --method lora"):
        method_settings(parser.parse_args(["--method", "lora", "--blocksize", "128"]))


def test_finetune_method_qlora_saves_a_lora_adapter_for_the_quantised_base(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["finetune", "--task", "subtract", "--method", "qlora", "--r", "2", "--steps", "2",
                 "--batch-size", "8", "--blocksize", "128", "--out", str(out)]) == 0
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and config["r"] == 2
    model = load_adapter(quantize_model(load_base("skills"), blocksize=128), out)  # the base it was trained on
    assert isinstance(dict(model.named_modules())["blocks.0.attn.q_proj.base"], Linear4bit)


def test_compare_runs_qlora_beside_lora_without_a_merged_latency(tmp_path):
    from minilora.experiments.compare import compare

    rows = compare("subtract", ranks=[2], steps=2, batch_size=8, out=tmp_path / "cmp", memory_steps=1,
                   latency_repeats=1, methods={"qlora": {"blocksize": 128}})
    qlora = next(r for r in rows if r["method"] == "qlora")
    lora = next(r for r in rows if r["method"] == "lora")
    assert qlora["trainable_params"] == lora["trainable_params"] and qlora["rank"] == 2
    assert qlora["infer_merged_ms"] is None and qlora["infer_unmerged_ms"] > 0  # a 4-bit base refuses to merge
    assert main(["compare", "--task", "subtract", "--blocksize", "128", "--out", str(tmp_path / "x")]) == 2
