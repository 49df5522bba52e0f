"""Tests for minilora.checkpoint: model files, run folders, resumable training state, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from minilora import backend, optim, train_state
from minilora.io import load_arrays, save_arrays
from minilora.models import GPT, GPTConfig, checkpoint
from minilora.train import decay_groups

TINY = GPTConfig(vocab_size=11, block_size=6, n_layer=2, n_head=2, n_embd=8)
IDS = np.random.default_rng(0).integers(0, 11, (2, 6))
TARGETS = np.random.default_rng(1).integers(0, 11, (2, 6))


def _trained(device="cpu", steps=3, seed=0):
    model = GPT(TINY, seed=seed, device=device)
    opt = optim.AdamW(decay_groups(model, 0.1), lr=1e-2)
    for _ in range(steps):
        opt.zero_grad()
        model(IDS, TARGETS)[1].backward()
        opt.step()
    return model, opt


def _rewrite(path, edit):
    """Load a checkpoint's arrays and metadata, let ``edit`` change them, write them back."""
    arrays, meta = load_arrays(path)
    edit(arrays, meta)
    save_arrays(path, arrays, meta)


# -- model checkpoints ---------------------------------------------------------------------------


def test_save_load_model_round_trip_gives_identical_logits(tmp_path, device):
    model, _ = _trained(device)
    path = tmp_path / "model.safetensors"
    checkpoint.save_model(path, model, extra={"note": "hello", "step": 3})
    loaded = checkpoint.load_model(path, device=device)
    assert loaded.config == TINY and loaded.device == device
    np.testing.assert_array_equal(loaded(IDS)[0].numpy(), model(IDS)[0].numpy())
    arrays, meta = load_arrays(path)
    assert meta["format"] == checkpoint.FORMAT and meta["note"] == "hello" and meta["config"] == TINY.to_dict()
    assert set(arrays) == {f"model.{k}" for k in model.state_dict()}
    assert all(type(a) is np.ndarray for a in arrays.values())  # written from host arrays


def test_a_device_checkpoint_loads_on_the_cpu(tmp_path, device):
    model, _ = _trained(device)
    checkpoint.save_model(tmp_path / "m.safetensors", model)
    loaded = checkpoint.load_model(tmp_path / "m.safetensors", device="cpu")
    assert all(type(p.data) is np.ndarray for p in loaded.parameters())
    np.testing.assert_allclose(loaded(IDS)[0].numpy(), model(IDS)[0].numpy(), rtol=1e-6, atol=1e-6)


def test_load_model_from_a_run_folder(tmp_path):
    model, _ = _trained()
    run = tmp_path / "run"
    checkpoint.save_model(run / checkpoint.MODEL_FILE, model)
    assert checkpoint.resolve_model_path(run) == run / "model.safetensors"
    assert checkpoint.resolve_model_path(run / "model.safetensors") == run / "model.safetensors"
    np.testing.assert_array_equal(checkpoint.load_model(run)(IDS)[0].numpy(), model(IDS)[0].numpy())
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match=r"no such file: .*empty.*model\.safetensors"):
        checkpoint.load_model(empty)


def test_missing_key_names_the_file_and_the_key(tmp_path):
    path = tmp_path / "m.safetensors"
    checkpoint.save_model(path, GPT(TINY))
    _rewrite(path, lambda arrays, meta: arrays.pop("model.blocks.1.attn.v_proj.weight"))
    with pytest.raises(ValueError, match=r"m\.safetensors.*missing.*blocks\.1\.attn\.v_proj\.weight"):
        checkpoint.load_model(path)


def test_unexpected_key_names_the_file_and_the_key(tmp_path):
    path = tmp_path / "m.safetensors"
    checkpoint.save_model(path, GPT(TINY))
    _rewrite(path, lambda arrays, meta: arrays.update({"model.blocks.0.attn.q_proj.lora_A": np.zeros((2, 8))}))
    with pytest.raises(ValueError, match=r"m\.safetensors.*unexpected.*blocks\.0\.attn\.q_proj\.lora_A"):
        checkpoint.load_model(path)


def test_misshaped_tensor_names_the_file_the_key_and_the_shapes(tmp_path):
    path = tmp_path / "m.safetensors"
    checkpoint.save_model(path, GPT(TINY))
    _rewrite(path, lambda arrays, meta: arrays.update({"model.head.weight": np.zeros((12, 8), np.float32)}))
    with pytest.raises(ValueError, match=r"m\.safetensors.*head\.weight: checkpoint \(12, 8\) vs model \(11, 8\)"):
        checkpoint.load_model(path)


@pytest.mark.parametrize("edit,match", [
    (lambda meta: meta.update(format="something-else"), "not a minilora model checkpoint.*'something-else'"),
    (lambda meta: meta.pop("config"), "not a minilora model checkpoint"),
    (lambda meta: meta.clear(), "not a minilora model checkpoint.*None"),
    (lambda meta: meta["config"].update(n_head=3), "n_embd=8 must be divisible by n_head=3"),
    (lambda meta: meta["config"].update(n_kv_head=2), "n_kv_head"),
], ids=["other-format", "no-config", "no-metadata", "invalid-config", "unknown-config-key"])
def test_bad_metadata_is_a_clear_value_error_naming_the_file(tmp_path, edit, match):
    path = tmp_path / "weird.safetensors"
    checkpoint.save_model(path, GPT(TINY))
    _rewrite(path, lambda arrays, meta: edit(meta))
    with pytest.raises(ValueError, match=r"weird\.safetensors") as info:
        checkpoint.load_model(path)
    assert info.match(match)


def test_corrupt_or_missing_model_file(tmp_path):
    path = tmp_path / "m.safetensors"
    with pytest.raises(ValueError, match=r"m\.safetensors"):
        checkpoint.load_model(path)
    checkpoint.save_model(path, GPT(TINY))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ValueError, match=r"cannot read .*m\.safetensors"):
        checkpoint.load_model(path)


def test_a_training_checkpoint_is_not_a_model_checkpoint(tmp_path):
    model, opt = _trained()
    train_state.save_training_state(tmp_path / "state.safetensors", model, opt, {"step": 3})
    with pytest.raises(ValueError, match="not a minilora model checkpoint"):
        checkpoint.load_model(tmp_path / "state.safetensors")
    checkpoint.save_model(tmp_path / "m.safetensors", model)
    with pytest.raises(ValueError, match="not a minilora training checkpoint"):
        train_state.load_training_state(tmp_path / "m.safetensors", model, opt)


# -- training state ------------------------------------------------------------------------------


def test_training_state_round_trip_restores_weights_moments_and_step(tmp_path, device):
    model, opt = _trained(device, steps=3)
    path = tmp_path / "state.safetensors"
    rng_state = np.random.default_rng(5).bit_generator.state
    train_state.save_training_state(path, model, opt, {"step": 3, "rng": rng_state, "history": [2.4, 2.1]})

    fresh = GPT(TINY, seed=99, device=device)
    fresh_opt = optim.AdamW(decay_groups(fresh, 0.1), lr=1e-2)
    state = train_state.load_training_state(path, fresh, fresh_opt)
    assert state["step"] == 3 and state["history"] == [2.4, 2.1] and state["rng"] == rng_state

    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(fresh.state_dict()[k], v)
    by_name = dict(fresh.named_parameters())
    for name, p in model.named_parameters():
        old, new = opt.state[id(p)], fresh_opt.state[id(by_name[name])]
        assert new["step"] == old["step"] == 3 and isinstance(new["step"], int)
        for buf in ("exp_avg", "exp_avg_sq"):
            assert backend.device_of(new[buf]) == device
            np.testing.assert_array_equal(backend.to_host(new[buf]), backend.to_host(old[buf]))

    for m, o in ((model, opt), (fresh, fresh_opt)):  # resuming continues where training stopped
        o.zero_grad()
        m(IDS, TARGETS)[1].backward()
        o.step()
    for k, v in model.state_dict().items():  # (GPU scatter-adds may reorder float sums: not bitwise)
        np.testing.assert_allclose(fresh.state_dict()[k], v, rtol=1e-6, atol=1e-7)


def test_training_state_with_frozen_parameters_stores_only_trainable_moments(tmp_path):
    model = GPT(TINY)
    model.requires_grad_(False)
    model.head.requires_grad_(True)
    opt = optim.AdamW(model.parameters(), lr=1e-2)
    model(IDS, TARGETS)[1].backward()
    opt.step()
    path = tmp_path / "state.safetensors"
    train_state.save_training_state(path, model, opt, {"step": 1})
    arrays, _ = load_arrays(path)
    assert sorted(k for k in arrays if k.startswith("optim.")) == [
        "optim.head.weight.exp_avg", "optim.head.weight.exp_avg_sq", "optim.head.weight.step"]
    fresh_opt = optim.AdamW(model.parameters(), lr=1e-2)
    train_state.load_training_state(path, model, fresh_opt)
    assert list(fresh_opt.state) == [id(model.head.weight)]


def test_training_state_for_another_model_names_the_file(tmp_path):
    model, opt = _trained()
    path = tmp_path / "state.safetensors"
    train_state.save_training_state(path, model, opt, {"step": 3})
    other = GPT(GPTConfig(vocab_size=11, block_size=6, n_layer=1, n_head=2, n_embd=8))
    with pytest.raises(ValueError, match=r"state\.safetensors.*unexpected.*blocks\.1"):
        train_state.load_training_state(path, other, optim.AdamW(other.parameters()))


def test_read_training_state_returns_the_state_without_the_arrays(tmp_path):
    model, opt = _trained()
    path = tmp_path / "checkpoint.safetensors"
    train_state.save_training_state(path, model, opt, {"step": 3, "run": {"task": "copy"}})
    state = train_state.read_training_state(path)
    assert state["step"] == 3 and state["run"] == {"task": "copy"} and state["format"] == train_state.TRAIN_STATE_FORMAT
    checkpoint.save_model(tmp_path / "model.safetensors", model)
    with pytest.raises(ValueError, match="not a minilora training checkpoint"):
        train_state.read_training_state(tmp_path / "model.safetensors")
