"""The training loop: learning, determinism, resumable checkpoints, history files, clear errors."""

import json

import numpy as np
import pytest

from minilora.train_state import load_training_state
from minilora.data import get_task
from minilora.models import GPT, GPTConfig
from minilora.optim import AdamW
from minilora.train import CHECKPOINT_FILE, HISTORY_FILE, TrainConfig, decay_groups, train


def tiny_model(task, seed=0, device=None, dropout=0.0):
    config = GPTConfig(task.tokenizer.vocab_size, task.block_size, n_layer=1, n_head=2, n_embd=16, dropout=dropout)
    return GPT(config, seed=seed, device=device)


class FewEvalTask:
    """The copy task with a 20-prompt evaluation, to keep tests fast."""

    def __init__(self, fail_after=None):
        self.inner = get_task("copy", n_eval=20)
        self.tokenizer, self.block_size = self.inner.tokenizer, self.inner.block_size
        self.calls, self.fail_after = 0, fail_after

    def sample_batch(self, rng, batch_size):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise KeyboardInterrupt("simulated crash")
        return self.inner.sample_batch(rng, batch_size)

    def evaluate(self, model):
        return self.inner.evaluate(model)


def weights(model):
    return {k: v.copy() for k, v in model.state_dict().items()}


def test_loss_falls(device):
    task = FewEvalTask()
    model = tiny_model(task, device=device)
    result = train(model, task, TrainConfig(steps=60, batch_size=16, lr=1e-2, warmup_steps=5))
    first = np.mean([h["loss"] for h in result.history[:5]])
    last = np.mean([h["loss"] for h in result.history[-5:]])
    assert last < 0.8 * first
    assert set(result.final_metrics) >= {"accuracy", "by_length", "n"}
    assert result.trainable_parameters == model.num_parameters()


def test_same_seed_same_weights():
    task = FewEvalTask()
    config = TrainConfig(steps=8, batch_size=8, warmup_steps=2)
    a, b = tiny_model(task), tiny_model(task)
    train(a, task, config)
    train(b, task, config)
    for (name, wa), wb in zip(weights(a).items(), weights(b).values()):
        assert np.array_equal(wa, wb), name


def test_resume_after_crash_matches_uninterrupted_run(tmp_path):
    """Stop at step 7 (checkpoint at 6), resume: the final weights equal a run that never stopped."""
    config = TrainConfig(steps=10, batch_size=8, lr=5e-3, warmup_steps=2, checkpoint_every=3, seed=3)
    straight = tiny_model(FewEvalTask(), dropout=0.1)
    train(straight, FewEvalTask(), config)

    crashed = tiny_model(FewEvalTask(), dropout=0.1)
    with pytest.raises(KeyboardInterrupt):
        train(crashed, FewEvalTask(fail_after=7), config, out_dir=tmp_path)
    resumed = tiny_model(FewEvalTask(), seed=99, dropout=0.1)  # different init: everything comes from the checkpoint
    result = train(resumed, FewEvalTask(), config, out_dir=tmp_path, resume=True)
    assert [h["step"] for h in result.history] == list(range(10))
    for (name, wa), wb in zip(weights(straight).items(), weights(resumed).values()):
        assert np.array_equal(wa, wb), name


def test_history_and_checkpoint_files(tmp_path):
    task = FewEvalTask()
    model = tiny_model(task)
    train(model, task, TrainConfig(steps=4, batch_size=4, warmup_steps=1, eval_every=2), out_dir=tmp_path)
    history = json.loads((tmp_path / HISTORY_FILE).read_text())
    assert [h["step"] for h in history["history"]] == [0, 1, 2, 3]
    assert [e["step"] for e in history["evals"]] == [2, 4]
    optimizer = AdamW(model.parameters())
    state = load_training_state(tmp_path / CHECKPOINT_FILE, tiny_model(task), optimizer)
    assert state["step"] == 4
    assert all(s["step"] == 4 for s in optimizer.state.values())


def test_frozen_parameters_stay_bit_identical():
    task = FewEvalTask()
    model = tiny_model(task)
    model.requires_grad_(False)
    model.head.weight.requires_grad_(True)
    before = weights(model)
    train(model, task, TrainConfig(steps=3, batch_size=4, warmup_steps=1))
    after = weights(model)
    assert not np.array_equal(before["head.weight"], after["head.weight"])
    for name in before:
        if name != "head.weight":
            assert np.array_equal(before[name], after[name]), name


def test_resume_without_checkpoint_is_a_clear_error(tmp_path):
    task = FewEvalTask()
    with pytest.raises(ValueError, match="no checkpoint"):
        train(tiny_model(task), task, TrainConfig(steps=2), out_dir=tmp_path, resume=True)


def test_corrupt_checkpoint_names_the_file(tmp_path):
    (tmp_path / CHECKPOINT_FILE).write_bytes(b"\x00" * 40)
    task = FewEvalTask()
    with pytest.raises(ValueError, match=CHECKPOINT_FILE):
        train(tiny_model(task), task, TrainConfig(steps=2), out_dir=tmp_path, resume=True)


@pytest.mark.parametrize("field,value", [("steps", 0), ("batch_size", 0), ("lr", 0.0)])
def test_bad_config_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        TrainConfig(**{field: value})


def test_decay_groups_exclude_biases_layer_norms_and_embeddings():
    model = GPT(GPTConfig(vocab_size=11, block_size=6, n_layer=2, n_head=2, n_embd=8))
    names = {id(p): n for n, p in model.named_parameters()}
    decay, no_decay = decay_groups(model, weight_decay=0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    decayed = {names[id(p)] for p in decay["params"]}
    kept = {names[id(p)] for p in no_decay["params"]}
    assert decayed | kept == set(names.values()) and not decayed & kept
    assert decayed == {n for n in names.values() if n.endswith("_proj.weight") or n.endswith(("fc_in.weight", "fc_out.weight"))} | {"head.weight"}
    assert {"tok_emb.weight", "pos_emb.weight", "ln_f.weight", "ln_f.bias", "blocks.0.ln_1.weight",
            "blocks.1.attn.q_proj.bias"} <= kept
    with_emb, _ = decay_groups(model, 0.1, skip_embeddings=False)
    assert {"tok_emb.weight", "pos_emb.weight"} <= {names[id(p)] for p in with_emb["params"]}
    AdamW(decay_groups(model, 0.1), lr=1e-3)  # usable as optimizer groups
