"""Pretraining and fine-tuning runs: LoRA leaves the pretrained weights untouched, adapters reload."""

import numpy as np
import pytest

import minilora
from minilora.lora import load_adapter, lora_parameters
from minilora.experiments.runs import finetune, load_base, prepare
from minilora.train import TrainConfig

QUICK = TrainConfig(steps=5, batch_size=8, lr=1e-2, warmup_steps=1, seed=1)


def test_lora_finetuning_keeps_the_base_weights_bit_identical(tmp_path):
    shipped = minilora.pretrained("skills").state_dict()
    model, result = finetune("skills", "subtract", "lora", QUICK, out_dir=tmp_path, rank=2, targets=("q_proj", "v_proj"))
    tuned = model.state_dict()
    for name, before in shipped.items():
        lora_name = name.replace(".weight", ".base.weight").replace(".bias", ".base.bias")
        after = tuned[name] if name in tuned else tuned[lora_name]
        assert np.array_equal(before, after), name
    assert result.trainable_parameters == 2 * 2 * (64 * 2 + 2 * 64)  # 2 layers × (q, v) × r(d + k)


def test_saved_adapter_reproduces_the_finetuned_model(tmp_path):
    model, _ = finetune("skills", "subtract", "lora", QUICK, out_dir=tmp_path, rank=2)
    fresh = load_adapter(minilora.pretrained("skills"), tmp_path)
    ids = np.array([[1, 5, 9, 3]])
    with minilora.no_grad():
        expected, _ = model.eval()(ids)
        got, _ = fresh.eval()(ids)
    np.testing.assert_array_equal(expected.numpy(), got.numpy())


def test_full_preparation_unfreezes_every_weight():
    model = load_base("skills").requires_grad_(False)  # a loaded model is trainable already: start from a frozen one
    assert prepare(model, "full") is model
    assert all(p.requires_grad for p in model.parameters())


def test_lora_preparation_trains_only_the_adapters():
    model = prepare(load_base("skills"), "lora", rank=2, targets=("q_proj",))
    trainable = [id(p) for p in model.parameters() if p.requires_grad]
    assert trainable and trainable == [id(p) for p in lora_parameters(model)]


def test_full_finetuning_trains_every_weight():
    model, result = finetune("skills", "subtract", "full", QUICK)
    assert result.trainable_parameters == model.num_parameters()


def test_unknown_method_is_a_clear_error():
    with pytest.raises(ValueError, match="'prefix'"):
        finetune("skills", "subtract", "prefix", QUICK)


def test_load_base_accepts_shipped_names_and_paths(tmp_path):
    from minilora.models.checkpoint import save_model

    save_model(tmp_path / "m.safetensors", minilora.pretrained("names"))
    assert load_base("names").config == load_base(str(tmp_path / "m.safetensors")).config


def test_a_run_folder_says_what_the_run_was_and_evaluations_are_reported(tmp_path):
    import json

    from minilora.experiments.runs import RUN_FILE

    seen = []
    finetune("skills", "subtract", "full", QUICK, out_dir=tmp_path, on_eval=lambda step, m: seen.append(step))
    run = json.loads((tmp_path / RUN_FILE).read_text())
    assert {run["base"], run["task"], run["method"]} == {"skills", "subtract", "full"}
    assert run["train_config"]["steps"] == QUICK.steps and "accuracy" in run["metrics"]
    assert seen == [QUICK.steps]  # the final evaluation
