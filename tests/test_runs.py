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


# -- run folders: one run each, checked before any work --------------------------------------------


def test_prepare_run_folder_refuses_what_it_must(tmp_path):
    from minilora.experiments.runs import prepare_run_folder

    assert prepare_run_folder(tmp_path / "new") == tmp_path / "new"  # nothing created before the first write
    assert not (tmp_path / "new").exists()
    with pytest.raises(ValueError, match="nothing to resume"):
        prepare_run_folder(tmp_path / "new", resume=True)
    with pytest.raises(ValueError, match="exclude each other"):
        prepare_run_folder(tmp_path, resume=True, overwrite=True)
    (tmp_path / "mine.txt").write_text("x")
    with pytest.raises(ValueError, match=r"no minilora run writes \(mine.txt\)"):
        prepare_run_folder(tmp_path, overwrite=True)


def test_a_run_folder_records_its_status(tmp_path):
    import json

    from minilora.experiments.runs import RUN_FILE

    finetune("skills", "subtract", "lora", QUICK, out_dir=tmp_path, rank=2)
    run = json.loads((tmp_path / RUN_FILE).read_text())
    assert run["status"] == "finished" and run["steps_done"] == QUICK.steps and run["kind"] == "finetune"
    assert run["rank"] == 2 and run["extensions"] == []
    with pytest.raises(ValueError, match="pass --resume to continue it, --overwrite to replace it"):
        finetune("skills", "subtract", "full", QUICK, out_dir=tmp_path)
    assert not (tmp_path / "model.safetensors").exists()  # nothing of the refused run was written


def test_default_run_folders_are_named_and_never_reused(tmp_path):
    from minilora.experiments.runs import default_run_folder

    first = default_run_folder("subtract", "lora", 4, 0, root=tmp_path)
    assert first == tmp_path / "finetune-subtract-lora-r4-s0"
    first.mkdir()
    assert default_run_folder("subtract", "lora", 4, 0, root=tmp_path) == tmp_path / "finetune-subtract-lora-r4-s0-2"
    assert default_run_folder("subtract", "lora", 4, 0, root=tmp_path, fresh=False) == first
    assert default_run_folder("sort", "full", None, 3, root=tmp_path).name == "finetune-sort-full-s3"


def test_load_trained_finds_the_model_and_its_task(tmp_path):
    from minilora.experiments.runs import load_trained

    model, task = load_trained("names")
    assert task == "surnames" and model.config == minilora.pretrained("names").config
    finetune("skills", "subtract", "lora", QUICK, out_dir=tmp_path / "lora", rank=2)
    adapted, task = load_trained(str(tmp_path / "lora"))
    assert task == "subtract" and any(name.endswith("lora_A") for name, _ in adapted.named_parameters())
    finetune("skills", "sort", "full", QUICK, out_dir=tmp_path / "full")
    _, task = load_trained(str(tmp_path / "full"))
    assert task == "sort"
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds neither model.safetensors nor an adapter"):
        load_trained(str(tmp_path / "empty"))
