"""What surrounds the training loop (RunState): checkpoints by steps and by wall time, on_checkpoint, every stop
signal saving, signal handlers installed only where and while they may be, resuming across setting changes."""

import json
import os
import pickle
import signal
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from copy_tasks import SIGNAL_RUN, FewEvalTask, tiny_model

from minilora import train_state
from minilora.io import load_arrays, save_arrays
from minilora.train import (
    CHECKPOINT_FILE,
    HISTORY_FILE,
    TrainConfig,
    TrainingDiverged,
    TrainingInterrupted,
    checkpoint_state,
    train,
)
from minilora.train_state import STOP_SIGNALS, read_training_state

COPY_TASKS = Path(__file__).parent / "copy_tasks.py"


def weights(model):
    return {k: v.copy() for k, v in model.state_dict().items()}


def assert_same_weights(a, b):
    for (name, wa), wb in zip(weights(a).items(), weights(b).values()):
        assert np.array_equal(wa, wb), name


def straight_run(config=SIGNAL_RUN):
    model = tiny_model(FewEvalTask(), dropout=0.1)
    train(model, FewEvalTask(), config)
    return model


def resume(folder, config=SIGNAL_RUN):
    model = tiny_model(FewEvalTask(), seed=99, dropout=0.1)  # another init: everything comes from the checkpoint
    train(model, FewEvalTask(), config, out_dir=folder, resume=True)
    return model


# -- checkpoints and on_checkpoint -------------------------------------------------------------------------


def test_on_checkpoint_follows_every_write_with_its_status(tmp_path):
    calls = []

    def run(folder, task):
        def on_checkpoint(done, status):  # the files on disk already say what the callback is told
            calls.append((done, status))
            assert read_training_state(folder / CHECKPOINT_FILE)["step"] == done
            assert len(json.loads((folder / HISTORY_FILE).read_text())["history"]) == done

        config = TrainConfig(steps=5, batch_size=4, warmup_steps=1, checkpoint_every=2, checkpoint_seconds=0)
        train(tiny_model(FewEvalTask()), task, config, out_dir=folder, on_checkpoint=on_checkpoint)

    run(tmp_path / "a", FewEvalTask())
    assert calls == [(2, "running"), (4, "running"), (5, "finished")]
    calls.clear()
    with pytest.raises(TrainingInterrupted):
        run(tmp_path / "b", FewEvalTask(fail_after=3))
    assert calls == [(2, "running"), (3, "interrupted")]


def test_wall_time_checkpoints_change_no_number(tmp_path):
    """A checkpoint after every step (checkpoint_seconds tiny) ends with the weights of a run that writes none."""
    calls = []
    config = replace(SIGNAL_RUN, checkpoint_seconds=1e-9)
    model = tiny_model(FewEvalTask(), dropout=0.1)
    train(model, FewEvalTask(), config, out_dir=tmp_path, on_checkpoint=lambda *call: calls.append(call))
    assert calls == [(s, "running") for s in range(1, 9)] + [(8, "finished")]
    assert_same_weights(straight_run(), model)


def test_no_wall_time_checkpoint_before_checkpoint_seconds_have_passed(tmp_path):
    calls = []
    config = replace(SIGNAL_RUN, checkpoint_seconds=3600)
    train(tiny_model(FewEvalTask()), FewEvalTask(), config, out_dir=tmp_path, on_checkpoint=lambda *c: calls.append(c))
    assert calls == [(8, "finished")]


# -- resuming across setting changes and old checkpoints ---------------------------------------------------


def test_resume_may_change_how_often_it_evaluates_and_checkpoints(tmp_path):
    config = replace(SIGNAL_RUN, checkpoint_seconds=0)
    with pytest.raises(TrainingInterrupted):
        train(tiny_model(FewEvalTask(), dropout=0.1), FewEvalTask(fail_after=5), config, out_dir=tmp_path)
    other = replace(config, eval_every=2, checkpoint_every=1, checkpoint_seconds=5.0)
    assert_same_weights(straight_run(), resume(tmp_path, other))


def test_a_checkpoint_written_before_checkpoint_seconds_existed_still_resumes(tmp_path):
    old, new = tmp_path / "old", tmp_path / "new"
    for folder in (old, new):  # 4 steps, then extended to 8
        train(tiny_model(FewEvalTask(), dropout=0.1), FewEvalTask(), replace(SIGNAL_RUN, steps=4), out_dir=folder)
    arrays, meta = load_arrays(old / CHECKPOINT_FILE)
    del meta["train_config"]["checkpoint_seconds"]
    save_arrays(old / CHECKPOINT_FILE, arrays, meta)
    assert checkpoint_state(old)["train_config"]["checkpoint_seconds"] == 60.0  # read as its default
    assert_same_weights(resume(new), resume(old))


def test_both_exceptions_survive_pickling_with_their_fields():
    """A run in a process-pool worker sends its exception back pickled."""
    stop = pickle.loads(pickle.dumps(TrainingInterrupted(3, Path("run/checkpoint.safetensors"), signal.SIGTERM)))
    assert (stop.step, stop.checkpoint, stop.signal) == (3, Path("run/checkpoint.safetensors"), 15)
    assert "SIGTERM after 3 steps" in str(stop)
    diverged = pickle.loads(pickle.dumps(TrainingDiverged("the loss is nan", step=7)))
    assert diverged.step == 7 and str(diverged) == "the loss is nan"


# -- signal handlers: only while a run is on, only in the main thread, never over SIG_IGN or someone's ---------


def _handlers():
    return {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}


def _handlers_during_a_run(**kwargs):
    seen = []
    config = TrainConfig(steps=2, batch_size=4, warmup_steps=1, eval_every=1)
    train(tiny_model(FewEvalTask()), FewEvalTask(), config, on_eval=lambda *_: seen.append(_handlers()), **kwargs)
    return seen[0]


def test_stop_handlers_are_installed_for_the_run_only():
    before = _handlers()
    during = _handlers_during_a_run()
    assert all(during[sig] is not before[sig] and callable(during[sig]) for sig in STOP_SIGNALS)
    assert _handlers() == before


def test_a_run_in_a_worker_thread_leaves_signals_alone():
    before, seen = _handlers(), []
    worker = threading.Thread(target=lambda: seen.append(_handlers_during_a_run()))
    worker.start()
    worker.join()
    assert seen == [before]


@pytest.mark.parametrize("sig", STOP_SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_an_ignored_signal_stays_ignored_and_someone_elses_handler_stays_theirs(sig):
    previous = signal.signal(sig, signal.SIG_IGN)
    try:
        assert _handlers_during_a_run()[sig] is signal.SIG_IGN
        os.kill(os.getpid(), sig)  # ignored: the run below is not stopped
        def mine(signum, frame):
            pass

        signal.signal(sig, mine)
        assert _handlers_during_a_run()[sig] is mine and signal.getsignal(sig) is mine
    finally:
        signal.signal(sig, previous)


def test_a_signal_during_the_last_checkpoint_write_stops_a_run_saved_as_finished(tmp_path, monkeypatch):
    real_save, calls = train_state.save_training_state, []

    def save_then_sigterm(path, model, optimizer, state):
        if state["finished"]:
            os.kill(os.getpid(), signal.SIGTERM)
        real_save(path, model, optimizer, state)

    monkeypatch.setattr(train_state, "save_training_state", save_then_sigterm)
    config = replace(SIGNAL_RUN, steps=2)
    with pytest.raises(TrainingInterrupted) as info:
        train(tiny_model(FewEvalTask()), FewEvalTask(), config, out_dir=tmp_path,
              on_checkpoint=lambda *c: calls.append(c))
    assert (info.value.step, info.value.signal, calls) == (2, signal.SIGTERM, [(2, "finished")])  # not re-saved
    monkeypatch.undo()
    assert checkpoint_state(tmp_path)["finished"]
    result = train(tiny_model(FewEvalTask()), FewEvalTask(), config, out_dir=tmp_path, resume=True)
    assert result.already_finished


# -- real processes: SIGTERM saves, kill -9 loses at most the steps since the last wall-time checkpoint ---------


def _stopped_child(folder, sig, wait_at=5, checkpoint_seconds=60.0, ignore=None):
    """Start copy_tasks.py training into ``folder``; at batch ``wait_at`` send it ``sig``; return (exit status,
    its JSON line or None).  ``ignore``: a signal the child inherits as ignored (a script's background job)."""
    command = [sys.executable, str(COPY_TASKS), str(folder), str(wait_at), repr(checkpoint_seconds)]
    if ignore is not None:  # as a shell starts a background job: the signal ignored, then exec
        command = ["sh", "-c", f'trap "" {signal.Signals(ignore).name[3:]}; exec "$@"', "sh", *command]
    env = {**os.environ, "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert child.stdout.readline().strip() == "waiting", child.stderr.read()
        child.send_signal(sig)
        (folder / "go").touch()
        out, _ = child.communicate(timeout=120)
    finally:
        child.kill()
    lines = out.strip().splitlines()
    return child.returncode, (json.loads(lines[-1]) if lines else None)


def test_sigterm_finishes_the_step_saves_and_resumes_bit_for_bit(tmp_path):
    status, stop = _stopped_child(tmp_path, signal.SIGTERM)
    assert status == 128 + signal.SIGTERM
    assert stop == {"step": 5, "signal": signal.SIGTERM, "checkpoint": str(tmp_path / CHECKPOINT_FILE)}
    assert checkpoint_state(tmp_path)["step"] == 5 and not checkpoint_state(tmp_path)["finished"]
    assert_same_weights(straight_run(), resume(tmp_path))


def test_a_run_killed_with_sigkill_resumes_from_its_last_wall_time_checkpoint(tmp_path):
    status, _ = _stopped_child(tmp_path, signal.SIGKILL, checkpoint_seconds=1e-9)
    assert status == -signal.SIGKILL
    assert checkpoint_state(tmp_path)["step"] == 4  # the checkpoint after the last finished step
    assert_same_weights(straight_run(), resume(tmp_path))  # with checkpoint_seconds back at its default


def test_a_process_that_inherited_sigint_ignored_keeps_ignoring_it(tmp_path):
    status, line = _stopped_child(tmp_path, signal.SIGINT, ignore=signal.SIGINT)
    assert status == 0 and line is None and checkpoint_state(tmp_path)["finished"]
