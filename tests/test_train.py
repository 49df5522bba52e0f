"""The training loop: learning, determinism, resumable checkpoints, history files, clear errors."""

import json
import os
import signal

import numpy as np
import pytest
from copy_tasks import FewEvalTask, tiny_model

from minilora.models import GPT, GPTConfig
from minilora.optim import AdamW
from minilora.train import CHECKPOINT_FILE, HISTORY_FILE, TrainConfig, decay_groups, default_warmup_steps, train
from minilora.train_state import STOP_SIGNALS, load_training_state


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


class KilledTask(FewEvalTask):
    """Dies at call ``fail_after + 1`` the way ``kill -9`` would for training: no handler runs, nothing is saved."""

    def sample_batch(self, rng, batch_size):
        self.calls += 1
        if self.calls > self.fail_after:
            raise SystemExit("killed")
        return self.inner.sample_batch(rng, batch_size)


def test_resume_after_a_hard_kill_continues_from_the_last_periodic_checkpoint(tmp_path):
    config = TrainConfig(steps=10, batch_size=8, lr=5e-3, warmup_steps=2, checkpoint_every=3, seed=3)
    straight = tiny_model(FewEvalTask(), dropout=0.1)
    train(straight, FewEvalTask(), config)
    with pytest.raises(SystemExit):
        train(tiny_model(FewEvalTask(), dropout=0.1), KilledTask(fail_after=7), config, out_dir=tmp_path)
    assert json.loads((tmp_path / HISTORY_FILE).read_text())["history"][-1]["step"] == 5  # the checkpoint of step 6
    resumed = tiny_model(FewEvalTask(), seed=99, dropout=0.1)
    train(resumed, FewEvalTask(), config, out_dir=tmp_path, resume=True)
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
    assert decayed == {n for n in names.values() if n.endswith("_proj.weight")
                       or n.endswith(("fc_in.weight", "fc_out.weight"))} | {"head.weight"}
    assert {"tok_emb.weight", "pos_emb.weight", "ln_f.weight", "ln_f.bias", "blocks.0.ln_1.weight",
            "blocks.1.attn.q_proj.bias"} <= kept
    with_emb, _ = decay_groups(model, 0.1, skip_embeddings=False)
    assert {"tok_emb.weight", "pos_emb.weight"} <= {names[id(p)] for p in with_emb["params"]}
    AdamW(decay_groups(model, 0.1), lr=1e-3)  # usable as optimizer groups


# -- check before you spend: every setting, the output folder -----------------------------------------


@pytest.mark.parametrize("field,value", [
    ("lr", float("nan")), ("lr", float("inf")), ("lr", -1e-3), ("grad_clip", -1.0), ("grad_clip", float("nan")),
    ("weight_decay", -0.1), ("warmup_steps", -1), ("eval_every", -1), ("checkpoint_every", -5), ("seed", -1),
    ("steps", 2.5), ("batch_size", True), ("min_lr", -1e-4), ("min_lr", 1.0), ("betas", (1.0, 0.9)), ("betas", (0.9,)),
])
def test_every_bad_setting_is_refused_naming_it(field, value):
    with pytest.raises(ValueError, match=field) as info:
        TrainConfig(**{field: value})
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf"), "60", None])
def test_checkpoint_seconds_is_a_finite_number_not_below_zero(value):
    with pytest.raises(ValueError, match="checkpoint_seconds must be a finite number >= 0"):
        TrainConfig(checkpoint_seconds=value)
    assert TrainConfig(checkpoint_seconds=0).checkpoint_seconds == 0.0 and TrainConfig().checkpoint_seconds == 60.0


def test_the_default_warmup_is_five_percent_of_the_steps_and_at_least_one():
    assert [default_warmup_steps(s) for s in (1, 19, 20, 40, 1000, 1019)] == [1, 1, 1, 2, 50, 50]


def test_settings_become_plain_python_numbers():
    config = TrainConfig(steps=np.int64(3), lr=np.float32(0.5), betas=[0.9, 0.95])
    assert type(config.steps) is int and type(config.lr) is float and config.betas == (0.9, 0.95)


def test_an_output_path_that_is_a_file_is_refused_before_any_step(tmp_path):
    task = FewEvalTask()
    (tmp_path / "taken").write_text("my notes")
    with pytest.raises(ValueError, match="is a file"):
        train(tiny_model(task), task, TrainConfig(steps=2, warmup_steps=1), out_dir=tmp_path / "taken")
    with pytest.raises(ValueError, match="taken is a file"):
        train(tiny_model(task), task, TrainConfig(steps=2, warmup_steps=1), out_dir=tmp_path / "taken" / "sub")
    assert task.calls == 0 and (tmp_path / "taken").read_text() == "my notes"


def test_a_folder_with_another_runs_checkpoint_is_not_overwritten(tmp_path):
    task = FewEvalTask()
    config = TrainConfig(steps=2, batch_size=4, warmup_steps=1)
    train(tiny_model(task), task, config, out_dir=tmp_path)
    before = (tmp_path / CHECKPOINT_FILE).read_bytes()
    task = FewEvalTask()
    with pytest.raises(ValueError, match="already holds a training checkpoint"):
        train(tiny_model(task), task, config, out_dir=tmp_path)
    assert task.calls == 0 and (tmp_path / CHECKPOINT_FILE).read_bytes() == before


def test_stale_temporary_files_are_cleaned_and_nothing_else(tmp_path):
    stale = tmp_path / ".checkpoint.safetensors.0123456789ab.tmp"
    stale.write_bytes(b"half a checkpoint")
    mine = tmp_path / ".notes.tmp"
    mine.write_text("not minilora's")
    task = FewEvalTask()
    train(tiny_model(task), task, TrainConfig(steps=1, batch_size=4, warmup_steps=1), out_dir=tmp_path)
    assert not stale.exists() and mine.exists()


# -- honest resume --------------------------------------------------------------------------------------


def _finished_run(folder, steps=4, **run):
    task = FewEvalTask()
    config = TrainConfig(steps=steps, batch_size=4, lr=5e-3, warmup_steps=1, seed=2)
    train(tiny_model(task), task, config, out_dir=folder, run=run or {"task": "copy"})
    return config


@pytest.mark.parametrize("change,name", [({"lr": 1e-2}, "lr"), ({"seed": 3}, "seed"), ({"batch_size": 8}, "batch_size"),
                                         ({"warmup_steps": 2}, "warmup_steps")])
def test_resume_with_another_setting_is_refused_naming_both_values(tmp_path, change, name):
    config = _finished_run(tmp_path)
    from dataclasses import replace

    other = replace(config, **change)
    task = FewEvalTask()
    with pytest.raises(ValueError, match=name) as info:
        train(tiny_model(task), task, other, out_dir=tmp_path, resume=True, run={"task": "copy"})
    message = str(info.value)
    assert repr(getattr(config, name)) in message and repr(getattr(other, name)) in message
    assert task.calls == 0


def test_resume_for_another_task_is_refused(tmp_path):
    config = _finished_run(tmp_path, task="copy")
    task = FewEvalTask()
    with pytest.raises(ValueError, match="task = 'copy', not 'reverse'"):
        train(tiny_model(task), task, config, out_dir=tmp_path, resume=True, run={"task": "reverse"})


def test_a_refused_resume_names_the_nested_setting_that_differs(tmp_path):
    config = _finished_run(tmp_path, task="copy", settings={"r": 2, "use_rslora": False})
    with pytest.raises(ValueError, match=r"settings\.r = 2, not 4; only steps, eval_every"):
        train(tiny_model(FewEvalTask()), FewEvalTask(), config, out_dir=tmp_path, resume=True,
              run={"task": "copy", "settings": {"r": 4, "use_rslora": False}})


def test_resume_with_fewer_steps_than_done_is_refused(tmp_path):
    config = _finished_run(tmp_path, steps=4)
    from dataclasses import replace

    with pytest.raises(ValueError, match="already done 4 steps; resume with steps >= 4"):
        train(tiny_model(FewEvalTask()), FewEvalTask(), replace(config, steps=2), out_dir=tmp_path, resume=True,
              run={"task": "copy"})


def test_resuming_a_finished_run_changes_nothing(tmp_path):
    config = _finished_run(tmp_path)
    files = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    task = FewEvalTask()
    evaluated = []
    result = train(tiny_model(task), task, config, out_dir=tmp_path, resume=True, run={"task": "copy"},
                   on_eval=lambda step, m: evaluated.append(step))
    assert result.already_finished and task.calls == 0 and not evaluated
    assert len(result.evals) == 1 and "accuracy" in result.final_metrics
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == files


def test_extending_steps_continues_and_is_recorded(tmp_path):
    config = _finished_run(tmp_path, steps=4)
    from dataclasses import replace

    result = train(tiny_model(FewEvalTask()), FewEvalTask(), replace(config, steps=6), out_dir=tmp_path, resume=True,
                   run={"task": "copy"})
    assert [h["step"] for h in result.history] == list(range(6))
    assert result.extensions == [{"at_step": 4, "from_steps": 4, "to_steps": 6}]
    assert json.loads((tmp_path / HISTORY_FILE).read_text())["extensions"] == result.extensions
    assert [e["step"] for e in result.evals] == [4, 6]


# -- divergence ------------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the overflow this test provokes
def test_a_non_finite_loss_stops_at_that_step_and_keeps_the_last_good_checkpoint(tmp_path):
    task = FewEvalTask()
    model = tiny_model(task)
    config = TrainConfig(steps=6, batch_size=4, lr=1e30, warmup_steps=1, checkpoint_every=1)
    with pytest.raises(ValueError, match=r"diverged at step (\d).*learning rate.*dtype") as info:
        train(model, task, config, out_dir=tmp_path)
    step = info.value.step
    assert 0 < step < 6 and "\n" not in str(info.value)
    assert all(np.isfinite(w).all() for w in weights(model).values())  # the failing step updated nothing
    saved = tiny_model(task)
    state = load_training_state(tmp_path / CHECKPOINT_FILE, saved, AdamW(saved.parameters()))
    assert state["step"] == step and all(np.isfinite(w).all() for w in weights(saved).values())


def test_float16_training_is_refused_with_a_reason():
    task = FewEvalTask()
    model = tiny_model(task).astype(np.float16)
    with pytest.raises(ValueError, match="float16.*loss scaling"):
        train(model, task, TrainConfig(steps=2, warmup_steps=1))
    assert task.calls == 0


# -- clean interrupts ------------------------------------------------------------------------------------


class DrawThenFailTask(FewEvalTask):
    """Raises KeyboardInterrupt after drawing the batch of call ``fail_after + 1`` (its random numbers are used up)."""

    def sample_batch(self, rng, batch_size):
        self.calls += 1
        batch = self.inner.sample_batch(rng, batch_size)
        if self.calls > self.fail_after:
            raise KeyboardInterrupt("simulated Ctrl-C")
        return batch


def test_an_interrupt_saves_a_checkpoint_that_resumes_bit_for_bit(tmp_path):
    """No periodic checkpoints: the interrupt itself saves step 5 (undoing the half-drawn batch)."""
    from minilora.train import TrainingInterrupted

    config = TrainConfig(steps=8, batch_size=8, lr=5e-3, warmup_steps=2, seed=4)
    straight = tiny_model(FewEvalTask(), dropout=0.1)
    train(straight, FewEvalTask(), config)
    with pytest.raises(TrainingInterrupted) as info:
        train(tiny_model(FewEvalTask(), dropout=0.1), DrawThenFailTask(fail_after=5), config, out_dir=tmp_path)
    assert info.value.step == 5 and info.value.checkpoint == tmp_path / CHECKPOINT_FILE
    resumed = tiny_model(FewEvalTask(), seed=7, dropout=0.1)
    train(resumed, FewEvalTask(), config, out_dir=tmp_path, resume=True)
    for (name, wa), wb in zip(weights(straight).items(), weights(resumed).values()):
        assert np.array_equal(wa, wb), name


class SignalDuringStep(GPT):
    """A GPT that sends itself ``sig`` (SIGINT = Ctrl-C by default) in the middle of its ``at``-th training forward."""

    def __init__(self, *args, at, sig=signal.SIGINT, **kwargs):
        super().__init__(*args, **kwargs)
        self.at, self.sig, self.forwards = at, sig, 0

    def forward(self, idx, targets=None):
        if targets is not None:
            self.forwards += 1
            if self.forwards == self.at:
                os.kill(os.getpid(), self.sig)
        return super().forward(idx, targets)


@pytest.mark.parametrize("sig", STOP_SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_a_stop_signal_inside_a_step_finishes_that_step_then_saves(tmp_path, sig):
    from minilora.train import TrainingInterrupted

    task = FewEvalTask()
    config = TrainConfig(steps=6, batch_size=4, lr=5e-3, warmup_steps=1, seed=5)
    straight = tiny_model(task)
    train(straight, FewEvalTask(), config)
    gpt_config = tiny_model(task).config
    with pytest.raises(TrainingInterrupted) as info:
        train(SignalDuringStep(gpt_config, at=3, sig=sig), FewEvalTask(), config, out_dir=tmp_path)
    assert info.value.step == 3 and info.value.signal == sig  # the third step ran to its end
    assert signal.Signals(sig).name in str(info.value)
    resumed = tiny_model(task, seed=9)
    result = train(resumed, FewEvalTask(), config, out_dir=tmp_path, resume=True)
    assert [h["step"] for h in result.history] == list(range(6))
    for (name, wa), wb in zip(weights(straight).items(), weights(resumed).values()):
        assert np.array_equal(wa, wb), name


def test_ctrl_c_during_a_checkpoint_write_lets_the_write_finish(tmp_path, monkeypatch):
    from minilora import train_state
    from minilora.train import TrainingInterrupted

    real_save, writes = train_state.save_training_state, []

    def save_with_ctrl_c(*args, **kwargs):
        if not writes:
            os.kill(os.getpid(), signal.SIGINT)  # arrives while the first checkpoint is being written
        real_save(*args, **kwargs)
        writes.append(load_training_state(args[0], tiny_model(FewEvalTask()),
                                          AdamW(tiny_model(FewEvalTask()).parameters())))

    monkeypatch.setattr(train_state, "save_training_state", save_with_ctrl_c)
    config = TrainConfig(steps=6, batch_size=4, warmup_steps=1, checkpoint_every=2)
    with pytest.raises(TrainingInterrupted) as info:
        train(tiny_model(FewEvalTask()), FewEvalTask(), config, out_dir=tmp_path)
    # the write finished, then the interrupt saved
    assert info.value.step == 2 and [w["step"] for w in writes] == [2, 2]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
