"""A small copy task for training tests: a short evaluation, and a simulated crash on demand.

Run as a script (``python copy_tasks.py OUT WAIT_AT [CHECKPOINT_SECONDS]``), it is the training process that the
signal tests stop from outside: see ``main``.
"""

import json
import sys
import time
from pathlib import Path

from minilora.data import get_task
from minilora.models import GPT, GPTConfig
from minilora.train import TrainConfig

# the run the signal tests stop and resume (dropout on: its generators' states must survive the stop too)
SIGNAL_RUN = TrainConfig(steps=8, batch_size=8, lr=5e-3, warmup_steps=2, seed=4)


def tiny_model(task, seed=0, device=None, dropout=0.0):
    config = GPTConfig(task.tokenizer.vocab_size, task.block_size, n_layer=1, n_head=2, n_embd=16, dropout=dropout)
    return GPT(config, seed=seed, device=device)


class FewEvalTask:
    """The copy task with an ``n_eval``-prompt evaluation; with ``fail_after`` it raises KeyboardInterrupt
    ("simulated crash") when batch number ``fail_after + 1`` is asked for."""

    def __init__(self, fail_after=None, n_eval=20):
        self.inner = get_task("copy", n_eval=n_eval)
        self.tokenizer, self.block_size = self.inner.tokenizer, self.inner.block_size
        self.calls, self.fail_after = 0, fail_after

    def sample_batch(self, rng, batch_size):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise KeyboardInterrupt("simulated crash")
        return self.inner.sample_batch(rng, batch_size)

    def evaluate(self, model):
        return self.inner.evaluate(model)


class WaitingTask(FewEvalTask):
    """At batch number ``wait_at`` it prints "waiting" and waits (up to a minute) for the file ``go`` to exist:
    the test that reads the line sends its signal, then creates ``go`` (or kills the process)."""

    def __init__(self, wait_at, go):
        super().__init__()
        self.wait_at, self.go = wait_at, Path(go)

    def sample_batch(self, rng, batch_size):
        if self.calls + 1 == self.wait_at:
            print("waiting", flush=True)
            deadline = time.monotonic() + 60
            while not self.go.exists() and time.monotonic() < deadline:
                time.sleep(0.01)
        return super().sample_batch(rng, batch_size)


def main(out, wait_at, checkpoint_seconds):
    """Train ``SIGNAL_RUN`` into ``out`` (stopping at batch ``wait_at``, see WaitingTask); a TrainingInterrupted is
    printed as one JSON line (step, signal, checkpoint) and exits with 128 + signal, as the CLI does."""
    from dataclasses import replace

    from minilora.train import TrainingInterrupted, train

    config = replace(SIGNAL_RUN, checkpoint_seconds=checkpoint_seconds)
    task = WaitingTask(wait_at, Path(out) / "go")
    try:
        train(tiny_model(task, dropout=0.1), task, config, out_dir=out)
    except TrainingInterrupted as err:
        print(json.dumps({"step": err.step, "signal": err.signal, "checkpoint": str(err.checkpoint)}), flush=True)
        sys.exit(128 + err.signal)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]) if len(sys.argv) > 3 else 60.0)
