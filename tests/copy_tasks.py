"""A small copy task for training tests: a short evaluation, and a simulated crash on demand."""

from minilora.data import get_task


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
