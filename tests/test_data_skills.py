"""Synthetic skills: answers, batch format and targets, held-out split, greedy evaluation, registry."""

from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minilora as ml
from minilora.data import SKILL_TOKENIZER, SKILLS, SkillTask, get_task, is_heldout, list_tasks, register_task
from minilora.data import registry
from minilora.data.evaluation import greedy_complete, inference
from minilora.data.skills import LETTERS, LetterStrings, Skill, skill_for_tag

TOK = SKILL_TOKENIZER
ALL_SKILL_TASKS = [*SKILLS, "pretrain", "skills-mix"]


class FakeModel:
    """A model with the GPT contract that reads each row as ``<TAG><input>=...`` and predicts a continuation.

    ``continuation(skill, text)`` gives the characters it writes after ``=``; the logits put all
    mass on them (and on '.' everywhere past them).
    """

    device = "cpu"  # as nn.Module.device

    def __init__(self, continuation, block_size=32):
        self.continuation = continuation
        self.config = SimpleNamespace(block_size=block_size)
        self.training = True
        self.batch_rows = []

    def eval(self):
        self.training = False

    def train(self):
        self.training = True

    def __call__(self, idx, targets=None):
        assert not self.training and not ml.is_grad_enabled()
        ids = np.asarray(idx)
        self.batch_rows.append(len(ids))
        logits = np.zeros((*ids.shape, TOK.vocab_size), dtype=np.float32)
        for b, row in enumerate(ids):
            text = TOK.decode(row)
            prompt_len = text.index("=") + 1
            full = text[:prompt_len] + self.continuation(skill_for_tag(text[0]), text[1 : prompt_len - 1])
            for t in range(ids.shape[1]):
                logits[b, t, TOK.stoi[full[t + 1] if t + 1 < len(full) else "."]] = 1.0
        return ml.tensor(logits), None


def oracle(skill, text):
    return skill.answer(text) + "."


def inputs_of(x):
    """(tag, input) of every row of a batch."""
    rows = [TOK.decode(r) for r in x]
    return [(r[0], r[1 : r.index("=")]) for r in rows]


# -- answers and format ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, text, output",
    [
        ("copy", "abc", "abc"), ("reverse", "abc", "cba"), ("shift", "z", "a"), ("shift", "abz", "bca"),
        ("add", "12+34", "46"), ("add", "99+99", "198"), ("add", "0+7", "7"),
        ("reverse-shift", "abz", "acb"), ("subtract", "57-23", "34"), ("subtract", "5-5", "0"),
        ("sort", "cab", "abc"), ("sort", "zza", "azz"),
    ],
)
def test_answers(name, text, output):
    assert SKILLS[name].answer(text) == output


def test_examples_are_tag_input_equals_output_dot():
    assert SKILLS["reverse"].example("abc") == "Rabc=cba."
    assert SKILLS["add"].example("12+34") == "A12+34=46."
    assert SKILLS["subtract"].example("57-23") == "D57-23=34."


def test_tags_are_distinct_upper_case_letters_and_examples_short():
    tags = [skill.tag for skill in SKILLS.values()]
    assert len(set(tags)) == len(tags) and all(t.isupper() and len(t) == 1 for t in tags)
    assert all(skill.max_seq_len < 20 for skill in SKILLS.values())


@given(st.text(alphabet=LETTERS, min_size=1, max_size=8))
def test_letter_skill_properties(text):
    shifted = SKILLS["shift"].answer(text)
    assert [(ord(b) - ord(a)) % 26 for a, b in zip(text, shifted)] == [1] * len(text)
    assert SKILLS["reverse-shift"].answer(text) == shifted[::-1]
    assert list(SKILLS["sort"].answer(text)) == sorted(text)


@given(st.integers(0, 99), st.integers(0, 99))
def test_arithmetic_matches_python(a, b):
    assert SKILLS["add"].answer(f"{a}+{b}") == str(a + b)
    hi, lo = max(a, b), min(a, b)
    assert SKILLS["subtract"].answer(f"{hi}-{lo}") == str(hi - lo)


# -- batches --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_SKILL_TASKS)
def test_targets_are_shifted_outputs_and_ignore_prompt_and_padding(name):
    x, y = get_task(name).sample_batch(np.random.default_rng(0), 64)
    assert x.dtype == np.int64 and y.dtype == np.int64 and x.shape == y.shape
    for xr, yr, (tag, text) in zip(x, y, inputs_of(x)):
        skill = skill_for_tag(tag)
        full = TOK.encode(skill.example(text))
        n, start = len(full) - 1, len(skill.prompt(text)) - 1
        assert (xr[:n] == full[:-1]).all() and (xr[n:] == TOK.pad_id).all()
        assert (yr[:start] == -1).all() and (yr[n:] == -1).all()
        assert (yr[start:n] == full[start + 1 :]).all()
        if name not in ("pretrain", "skills-mix"):
            assert skill.name == name


def test_batches_are_padded_to_their_own_longest_example():
    task, rng = get_task("pretrain"), np.random.default_rng(0)
    widths = []
    for _ in range(20):
        x, _ = task.sample_batch(rng, 3)
        longest = max(len(skill_for_tag(tag).example(text)) for tag, text in inputs_of(x))
        assert x.shape[1] == longest - 1 and (x[:, -1] != TOK.pad_id).any()
        widths.append(x.shape[1])
    assert min(widths) < task.block_size  # not padded to the block size


@pytest.mark.parametrize("name", ["reverse", "pretrain"])
def test_batches_are_deterministic_per_seed(name):
    task = get_task(name)
    a = task.sample_batch(np.random.default_rng(3), 16)
    b = task.sample_batch(np.random.default_rng(3), 16)
    c = task.sample_batch(np.random.default_rng(4), 16)
    assert all((u == v).all() for u, v in zip(a, b))
    assert inputs_of(a[0]) != inputs_of(c[0])


def test_mixture_draws_every_pretraining_skill_about_uniformly():
    x, _ = get_task("pretrain").sample_batch(np.random.default_rng(0), 4000)
    tags = [tag for tag, _ in inputs_of(x)]
    assert {t: tags.count(t) for t in set(tags)}.keys() == {"C", "R", "S", "A"}
    assert all(850 < tags.count(t) < 1150 for t in "CRSA")


# -- held-out split -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(SKILLS))
def test_eval_inputs_are_distinct_held_out_and_fixed(name):
    task = get_task(name)
    inputs = task.eval_inputs
    assert len(inputs) == len(set(inputs)) and all(is_heldout(t) for t in inputs)
    assert len(inputs) == (497 if name == "subtract" else 500)  # subtraction has 497 held-out pairs
    assert get_task(name).eval_inputs == inputs
    assert get_task(name, eval_seed=99).eval_inputs != inputs


@pytest.mark.parametrize("name", ALL_SKILL_TASKS)
def test_training_batches_never_contain_held_out_inputs(name):
    task, rng = get_task(name), np.random.default_rng(0)
    evaluation = {t for sub in getattr(task, "tasks", [task]) for t in sub.eval_inputs}
    for _ in range(100):
        x, _ = task.sample_batch(rng, 64)
        for _, text in inputs_of(x):
            assert not is_heldout(text) and text not in evaluation


# -- evaluation -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(SKILLS))
def test_oracle_scores_everything_and_wrong_model_nothing(name):
    task = get_task(name, n_eval=60)
    result = task.evaluate(FakeModel(oracle))
    assert result["accuracy"] == 1.0 and result["n"] == 60
    assert set(result["by_length"].values()) == {1.0}
    assert sum(1 for _ in result["by_length"]) >= 2
    assert task.evaluate(FakeModel(lambda skill, text: "."))["accuracy"] == 0.0


def test_accuracy_by_length_and_no_stop_token():
    task = get_task("reverse", n_eval=200)
    wrong_when_odd = FakeModel(lambda skill, text: oracle(skill, text) if len(text) % 2 == 0 else "x.")
    result = task.evaluate(wrong_when_odd)
    assert all(acc == (1.0 if length % 2 == 0 else 0.0) for length, acc in result["by_length"].items())
    evens = sum(len(t) % 2 == 0 for t in task.eval_inputs)
    assert result["accuracy"] == pytest.approx(evens / 200)
    rambling = FakeModel(lambda skill, text: "a" * 40)  # never writes '.', stops at the length limit
    assert task.evaluate(rambling)["accuracy"] == 0.0


def test_evaluation_batches_by_prompt_length_restores_train_mode():
    model = FakeModel(oracle)
    result = get_task("copy", n_eval=100).evaluate(model, batch_size=16)
    assert result["accuracy"] == 1.0 and model.training
    assert max(model.batch_rows) <= 16


def test_mixture_reports_every_skill():
    result = get_task("pretrain", n_eval=40).evaluate(FakeModel(oracle))
    assert set(result["by_skill"]) == {"copy", "reverse", "shift", "add"}
    assert result["accuracy"] == 1.0 and result["n"] == 160
    assert all(r["accuracy"] == 1.0 and r["n"] == 40 for r in result["by_skill"].values())


def test_mixture_accuracy_pools_the_skills():
    only_copy = FakeModel(lambda skill, text: oracle(skill, text) if skill.name == "copy" else ".")
    result = get_task("pretrain", n_eval=40).evaluate(only_copy)
    assert result["accuracy"] == 0.25 and result["by_skill"]["copy"]["accuracy"] == 1.0


def test_too_short_model_context_is_rejected():
    with pytest.raises(ValueError, match="block_size=10 is smaller than the 18 tokens"):
        get_task("copy", n_eval=5).evaluate(FakeModel(oracle, block_size=10))


def test_greedy_complete_keeps_input_order_and_stops_at_the_stop_token():
    prompts = [TOK.encode(SKILLS["copy"].prompt(t)) for t in ["abc", "a", "xyzw", "b"]]
    model = FakeModel(oracle)
    with inference(model):
        out = greedy_complete(model, prompts, TOK.stoi["."], max_total_len=19, batch_size=2)
    assert [TOK.decode(o) for o in out] == ["abc.", "a.", "xyzw.", "b."]


# -- registry -------------------------------------------------------------------------------------


def test_registry_lists_every_task():
    assert set(list_tasks()) >= {*SKILLS, "pretrain", "skills-mix", "surnames", "first-names"}


def test_unknown_task_is_named_with_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown task 'juggle'; known tasks: copy, reverse"):
        get_task("juggle")


def test_new_tasks_can_be_registered_once(monkeypatch):
    monkeypatch.setattr(registry, "_TASKS", dict(registry._TASKS))
    double = Skill("double", "W", LetterStrings(1, 4), lambda s: s + s, 8)
    register_task("double", lambda **kwargs: SkillTask(double, **kwargs))
    task = get_task("double", n_eval=10)
    assert task.name == "double" and "double" in list_tasks()
    with pytest.raises(ValueError, match="already registered"):
        register_task("double", lambda: task)


# -- a real model on every device -----------------------------------------------------------------


def test_a_real_gpt_decodes_the_same_on_every_device(device):
    from minilora.models import GPT, GPTConfig

    task = get_task("pretrain", n_eval=20)
    config = GPTConfig(vocab_size=TOK.vocab_size, block_size=task.block_size, n_layer=1, n_head=2, n_embd=16)
    prompts = [TOK.encode(t.skill.prompt(text)) for t in task.tasks for text in t.eval_inputs]
    completions = {}
    for where in ("cpu", device):
        model = GPT(config, seed=0, device=where)
        with inference(model):
            completions[where] = greedy_complete(model, prompts, TOK.stoi["."], task.block_size + 1)
        assert task.evaluate(model)["n"] == 80 and model.training
    assert completions["cpu"] == completions[device]
