"""A fine-tuned run folder of every adapter-like method (QLoRA, bottleneck adapters, prefix-tuning) loads back as the
model that was trained: ``load_trained``, ``minilora evaluate`` and ``minilora generate`` agree with the in-memory
model; and a QLoRA model's parameter count includes its 4-bit base weights."""

import shutil

import numpy as np
import pytest

from minilora import backend, no_grad
from minilora.cli import main
from minilora.data import get_task
from minilora.experiments.methods import get_method
from minilora.experiments.runs import finetune, load_base, load_trained, summarize
from minilora.lora import AdapterBaseMismatch, count_parameters, load_adapter
from minilora.lora.accounting import stored_weights
from minilora.quant import quantize_model, quantized_layers
from minilora.train import TrainConfig

SETTINGS = {"qlora": {"r": 2, "blocksize": 128, "double_quant": False}, "adapter": {"bottleneck": 4},
            "prefix": {"num_virtual_tokens": 2}}
PROMPT = "78-75="


def _logits(model, seed=0):
    idx, _ = get_task("subtract").sample_batch(np.random.default_rng(seed), 4)
    with no_grad():
        logits, _ = model(idx)
    return backend.to_host(logits.data)


def _greedy(model, prompt=PROMPT, n=8):
    """What ``minilora generate MODEL --prompt PROMPT --max-new-tokens n`` prints (greedy decoding)."""
    tok = get_task("subtract").tokenizer
    ids = np.array([tok.encode(prompt)], dtype=np.int64)
    row = list(model.generate(ids, n, temperature=0.0, rng=0, stop_token=tok.eos_id)[0, ids.shape[1]:])
    ended = row.index(tok.eos_id) + 1 if tok.eos_id in row else len(row)
    return prompt + tok.decode(row[:ended])


@pytest.fixture(scope="module", params=list(SETTINGS))
def trained(request, tmp_path_factory):
    """(method, folder, in-memory model) after a 3-step run on the skills model, lr high enough to move it."""
    method, folder = request.param, tmp_path_factory.mktemp(request.param) / "run"
    config = TrainConfig(steps=3, batch_size=4, lr=3e-2)
    model, _ = finetune("skills", "subtract", method, config, out=folder, settings=SETTINGS[method])
    return method, folder, model.eval()


def test_the_loaded_run_computes_what_the_trained_model_computes(trained):
    method, folder, model = trained
    loaded, task = load_trained(str(folder))
    assert task == "subtract"
    assert np.array_equal(_logits(loaded), _logits(model))
    assert get_task("subtract").evaluate(loaded) == get_task("subtract").evaluate(model)
    if method == "qlora":  # on the base it was trained on (4-bit, blocksize 128, no double quantisation)
        assert {layer.quant.blocksize for _, layer in quantized_layers(loaded)} == {128}
        assert all(layer.quant.double is None for _, layer in quantized_layers(loaded))


def test_a_qlora_adapter_on_the_full_precision_base_is_another_model(trained):
    method, folder, model = trained
    if method != "qlora":
        pytest.skip("only QLoRA's adapter needs a quantised base")
    with pytest.raises(AdapterBaseMismatch):  # the adapter records the fingerprint of the 4-bit base
        load_adapter(load_base("skills"), folder)
    full_precision = load_adapter(load_base("skills"), folder, check_base=False).eval()
    assert not np.allclose(_logits(full_precision), _logits(model), atol=1e-6)


def test_a_qlora_adapter_without_its_run_json_loads_on_the_4bit_base_its_file_records(trained, tmp_path):
    """Adapter files copied without run.json: the weights file records the 4-bit format of its base (blocksize 128,
    no double quantisation here), so load_trained and evaluate rebuild that base."""
    method, folder, model = trained
    if method != "qlora":
        pytest.skip("only QLoRA's adapter needs a quantised base")
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        shutil.copy(folder / name, tmp_path / name)
    loaded, task = load_trained(str(tmp_path))
    assert task is None and np.array_equal(_logits(loaded), _logits(model))
    assert {(layer.quant.blocksize, layer.quant.double) for _, layer in quantized_layers(loaded)} == {(128, None)}
    assert main(["evaluate", str(tmp_path), "--task", "subtract"]) == 0


def test_a_qlora_adapter_on_a_base_quantised_otherwise_is_refused(trained):
    method, folder, _ = trained
    if method != "qlora":
        pytest.skip("only QLoRA's adapter needs a quantised base")
    other = quantize_model(load_base("skills"), blocksize=64, double_quant=True)  # same fingerprint, other format
    with pytest.raises(AdapterBaseMismatch, match="NF4, blocksize 128, without double quantisation, but this "
                                                  "model's base is NF4, blocksize 64, with double quantisation"):
        load_adapter(other, folder)


def test_evaluate_and_generate_on_the_run_folder_agree_with_the_trained_model(trained, capsys):
    _, folder, model = trained
    capsys.readouterr()
    assert main(["evaluate", str(folder)]) == 0
    assert capsys.readouterr().out.strip() == f"{folder} on subtract (test): " \
                                              f"{summarize(get_task('subtract').evaluate(model))}"
    assert main(["generate", str(folder), "--prompt", PROMPT, "--max-new-tokens", "8"]) == 0
    assert capsys.readouterr().out.strip() == _greedy(model)


def test_a_qlora_model_counts_its_4bit_weights_as_frozen_parameters():
    lora = get_method("lora").prepare(load_base("skills"), {"r": 2}, seed=0)
    qlora = get_method("qlora").prepare(load_base("skills"), {"r": 2}, seed=0)
    layers = quantized_layers(qlora)
    assert layers and stored_weights(qlora) == sum(layer.out_features * layer.in_features for _, layer in layers)
    assert stored_weights(lora) == 0
    assert count_parameters(qlora).total == count_parameters(lora).total
    assert count_parameters(qlora).trainable == count_parameters(lora).trainable
    assert count_parameters(qlora).total == qlora.num_parameters() + stored_weights(qlora)


def test_finetune_prints_the_same_total_for_qlora_as_for_lora(tmp_path, capsys):
    lines = {}
    for method in ("lora", "qlora"):
        assert main(["finetune", "--task", "subtract", "--method", method, "--r", "2", "--steps", "1",
                     "--batch-size", "2", "--out", str(tmp_path / method)]) == 0
        lines[method] = next(line for line in capsys.readouterr().out.splitlines() if "trainable" in line)
    assert lines["qlora"].replace("qlora", "lora") == lines["lora"]
