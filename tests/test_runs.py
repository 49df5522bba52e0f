"""Pretraining and fine-tuning runs: LoRA leaves the pretrained weights untouched, adapters reload."""

import json

import numpy as np
import pytest

import minilora
from minilora.experiments.methods import get_method
from minilora.experiments.runs import finetune, load_base
from minilora.lora import load_adapter, lora_parameters
from minilora.train import TrainConfig

QUICK = TrainConfig(steps=5, batch_size=8, lr=1e-2, warmup_steps=1, seed=1)


def test_lora_finetuning_keeps_the_base_weights_bit_identical(tmp_path):
    shipped = minilora.pretrained("skills").state_dict()
    model, result = finetune("skills", "subtract", "lora", QUICK, out=tmp_path,
                             settings={"r": 2, "target_modules": ["q_proj", "v_proj"]})
    tuned = model.state_dict()
    for name, before in shipped.items():
        lora_name = name.replace(".weight", ".base.weight").replace(".bias", ".base.bias")
        after = tuned[name] if name in tuned else tuned[lora_name]
        assert np.array_equal(before, after), name
    assert result.trainable_parameters == 2 * 2 * (64 * 2 + 2 * 64)  # 2 layers × (q, v) × r(d + k)


def test_saved_adapter_reproduces_the_finetuned_model(tmp_path):
    model, _ = finetune("skills", "subtract", "lora", QUICK, out=tmp_path, settings={"r": 2})
    fresh = load_adapter(minilora.pretrained("skills"), tmp_path)
    ids = np.array([[1, 5, 9, 3]])
    with minilora.no_grad():
        expected, _ = model.eval()(ids)
        got, _ = fresh.eval()(ids)
    np.testing.assert_array_equal(expected.numpy(), got.numpy())


@pytest.mark.parametrize("method", ["dora", "pissa", "olora", "lora-fa", "lora-plus", "vera"])
def test_every_adapter_method_finetunes_and_its_saved_files_reproduce_the_model(tmp_path, method):
    from minilora.experiments.runs import FINETUNE_METHODS, load_trained

    assert method in FINETUNE_METHODS
    settings = {"r": 16} if method == "vera" else {"r": 2}
    model, _ = finetune("skills", "subtract", method, QUICK, out=tmp_path, settings=settings)
    fresh, task = load_trained(str(tmp_path))
    ids = np.array([[1, 5, 9, 3]])
    with minilora.no_grad():
        expected, _ = model.eval()(ids)
        got, _ = fresh(ids)
    assert task == "subtract"
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-5, atol=1e-5)


def test_full_preparation_unfreezes_every_weight():
    model = load_base("skills").requires_grad_(False)  # a loaded model is trainable already: start from a frozen one
    assert get_method("full").prepare(model) is model
    assert all(p.requires_grad for p in model.parameters())


def test_lora_preparation_trains_only_the_adapters():
    model = get_method("lora").prepare(load_base("skills"), {"r": 2, "target_modules": ["q_proj"]})
    trainable = [id(p) for p in model.parameters() if p.requires_grad]
    assert trainable and trainable == [id(p) for p in lora_parameters(model)]


def test_full_finetuning_trains_every_weight():
    model, result = finetune("skills", "subtract", "full", QUICK)
    assert result.trainable_parameters == model.num_parameters()


def test_unknown_method_is_a_clear_error():
    with pytest.raises(ValueError, match="'no-such-method'"):
        finetune("skills", "subtract", "no-such-method", QUICK)


def test_load_base_accepts_shipped_names_and_paths(tmp_path):
    from minilora.models.checkpoint import save_model

    save_model(tmp_path / "m.safetensors", minilora.pretrained("names"))
    assert load_base("names").config == load_base(str(tmp_path / "m.safetensors")).config


def test_a_run_folder_says_what_the_run_was_and_evaluations_are_reported(tmp_path):

    from minilora.experiments.runs import RUN_FILE

    seen = []
    finetune("skills", "subtract", "full", QUICK, out=tmp_path, on_eval=lambda step, m: seen.append(step))
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

    from minilora.experiments.runs import RUN_FILE

    finetune("skills", "subtract", "lora", QUICK, out=tmp_path, settings={"r": 2})
    run = json.loads((tmp_path / RUN_FILE).read_text())
    assert run["status"] == "finished" and run["steps_done"] == QUICK.steps and run["kind"] == "finetune"
    assert run["settings"]["r"] == 2 and run["extensions"] == []
    with pytest.raises(ValueError, match="pass --resume to continue it, --overwrite to replace it"):
        finetune("skills", "subtract", "full", QUICK, out=tmp_path)
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
    finetune("skills", "subtract", "lora", QUICK, out=tmp_path / "lora", settings={"r": 2})
    adapted, task = load_trained(str(tmp_path / "lora"))
    assert task == "subtract" and any(name.endswith("lora_A") for name, _ in adapted.named_parameters())
    finetune("skills", "sort", "full", QUICK, out=tmp_path / "full")
    _, task = load_trained(str(tmp_path / "full"))
    assert task == "sort"
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds neither model.safetensors nor an adapter"):
        load_trained(str(tmp_path / "empty"))


def test_run_json_follows_every_checkpoint_and_an_interrupted_run_resumes(tmp_path):
    """run.json is rewritten at each checkpoint (never "step 0" beside a later checkpoint); after a stop the
    refusal says --resume, and --resume finishes the run."""
    from dataclasses import replace

    from minilora.experiments.runs import RUN_FILE, prepare_run_folder

    config = replace(QUICK, steps=8, eval_every=2, checkpoint_every=2, checkpoint_seconds=0)
    seen = []

    def watch(step, metrics):
        seen.append(json.loads((tmp_path / RUN_FILE).read_text())["steps_done"])
        if step == 6:
            raise KeyboardInterrupt  # as Ctrl-C during an evaluation

    with pytest.raises(KeyboardInterrupt):
        finetune("skills", "subtract", "full", config, out=tmp_path, on_eval=watch)
    assert seen == [0, 2, 4]  # at the evaluations of steps 2, 4, 6: the checkpoint of the step before
    run = json.loads((tmp_path / RUN_FILE).read_text())
    assert run["status"] == "interrupted" and run["steps_done"] == 6
    with pytest.raises(ValueError, match="interrupted at step 6 of 8; pass --resume"):
        prepare_run_folder(tmp_path)
    _, result = finetune("skills", "subtract", "full", config, out=tmp_path, resume=True)
    assert json.loads((tmp_path / RUN_FILE).read_text())["status"] == "finished" and len(result.history) == 8


def test_two_finetunes_started_together_on_one_new_folder_one_runs(tmp_path):
    import subprocess
    import sys

    code = ("import sys; from minilora.experiments.runs import finetune; from minilora.train import TrainConfig; "
            "finetune('skills', 'subtract', 'full', TrainConfig(steps=5, batch_size=8, warmup_steps=1), "
            "out=sys.argv[1])")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "run")], stderr=subprocess.PIPE, text=True,
                              env={**__import__("os").environ, "TQDM_DISABLE": "1"}) for _ in range(2)]
    results = [(p.wait(), p.stderr.read()) for p in procs]
    assert sorted(code for code, _ in results) == [0, 1]
    refused = next(err for code, err in results if code == 1)
    assert "is in use by process" in refused or "already holds" in refused
