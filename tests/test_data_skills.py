"""Synthetic skills: answers, batch format and targets, the three splits, greedy evaluation, registry."""

import hashlib
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minilora as ml
from minilora.data import (
    FINETUNE_SKILLS,
    PRETRAIN_SKILLS,
    SKILL_TOKENIZER,
    SKILLS,
    SPLITS,
    TASK_ROLES,
    NamesTask,
    SkillTask,
    get_task,
    is_heldout,
    list_tasks,
    register_task,
    registry,
    task_info,
)
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


# -- the three splits ----------------------------------------------------------------------------

# sha256 of "\n".join(inputs) of each skill's test set, computed before the validation split existed:
# the test set every shipped number was measured on has not moved.
TEST_SET_BEFORE_VALIDATION = {
    "letters": "f644b1fa63e87b89", "add": "d1308ec832583fa3", "subtract": "233a25a974261ab7",
}


def fingerprint(texts):
    return hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]


@pytest.mark.parametrize("name", list(SKILLS))
def test_test_inputs_are_distinct_held_out_fixed_and_unchanged(name):
    task = get_task(name)
    inputs = task.test_inputs
    assert len(inputs) == len(set(inputs)) and all(is_heldout(t) for t in inputs)
    assert len(inputs) == (497 if name == "subtract" else 500)  # subtraction has 497 held-out pairs
    assert get_task(name).test_inputs == inputs
    assert get_task(name, eval_seed=99).test_inputs != inputs
    assert fingerprint(inputs) == TEST_SET_BEFORE_VALIDATION.get(name, TEST_SET_BEFORE_VALIDATION["letters"])


@pytest.mark.parametrize("name", list(SKILLS))
def test_validation_inputs_are_held_out_fixed_and_disjoint_from_test(name):
    task = get_task(name, n_eval=200)
    validation = task.validation_inputs
    assert len(validation) == len(set(validation)) == 200 and all(is_heldout(t) for t in validation)
    assert not set(validation) & set(task.test_inputs)
    assert get_task(name, n_eval=200).validation_inputs == validation
    assert get_task(name, n_eval=200, eval_seed=99).validation_inputs != validation


@pytest.mark.parametrize("name", ALL_SKILL_TASKS)
def test_training_batches_never_contain_validation_or_test_inputs(name):
    task, rng = get_task(name, n_eval=100), np.random.default_rng(0)
    held = {t for sub in getattr(task, "tasks", [task]) for split in SPLITS for t in sub.inputs(split)}
    for _ in range(100):
        x, _ = task.sample_batch(rng, 64)
        for _, text in inputs_of(x):
            assert not is_heldout(text) and text not in held


def test_every_registered_task_has_three_pairwise_disjoint_splits():
    for name in list_tasks():
        task = get_task(name)
        if isinstance(task, NamesTask):
            splits = [task.train_names, task.validation_names, task.test_names]
            assert all(splits) and sum(map(len, splits)) == len(set().union(*splits))
            continue
        for sub in getattr(task, "tasks", [task]):
            validation, test = set(sub.validation_inputs), set(sub.test_inputs)
            assert test and not validation & test, name
            assert all(map(is_heldout, validation | test)), name  # and training inputs never are held out


def test_subtraction_has_too_few_held_out_pairs_for_two_full_splits():
    task = get_task("subtract")  # n_eval=500: the test set takes all 497 held-out pairs
    assert task.validation_inputs == []
    with pytest.raises(ValueError, match=r"task 'subtract' has no validation inputs: its test set \(n_eval=500\) "
                                         r"holds all 497 held-out inputs; pass n_eval=248 or less"):
        task.evaluate(FakeModel(oracle), split="validation")
    assert len(get_task("subtract", n_eval=248).validation_inputs) == 248
    assert len(get_task("subtract", n_eval=300).validation_inputs) == 197  # what the test set leaves


def test_a_space_without_held_out_inputs_is_named():
    class Always:  # one input, never held out
        max_len = 3

        def sample(self, rng, n):
            return ["abc"] * n

    assert not is_heldout("abc")
    with pytest.raises(ValueError, match="task 'abc' has no held-out inputs"):
        SkillTask(Skill("abc", "W", Always(), str.upper, 3), n_eval=5).evaluate(FakeModel(oracle))


@pytest.mark.parametrize("n_eval", [0, -3, 2.5, True])
def test_n_eval_must_be_a_positive_count(n_eval):
    with pytest.raises(ValueError, match=rf"n_eval must be an integer >= 1, got {n_eval!r}"):
        get_task("copy", n_eval=n_eval)


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
    evens = sum(len(t) % 2 == 0 for t in task.test_inputs)
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


def test_evaluate_scores_the_split_it_is_asked_for():
    task = get_task("sort", n_eval=50)
    validation = set(task.validation_inputs)
    knows_validation = FakeModel(lambda skill, text: oracle(skill, text) if text in validation else ".")
    assert task.evaluate(knows_validation, split="validation")["accuracy"] == 1.0
    assert task.evaluate(knows_validation, split="test")["accuracy"] == 0.0
    assert task.evaluate(knows_validation)["accuracy"] == 0.0  # the default split is "test"


def test_mixture_evaluates_every_skill_on_the_split():
    task = get_task("pretrain", n_eval=30)
    validation = {t for sub in task.tasks for t in sub.validation_inputs}
    knows_validation = FakeModel(lambda skill, text: oracle(skill, text) if text in validation else ".")
    result = task.evaluate(knows_validation, split="validation")
    assert result["accuracy"] == 1.0 and result["n"] == 120
    assert all(r["n"] == 30 for r in result["by_skill"].values())
    assert task.evaluate(knows_validation)["accuracy"] == 0.0


@pytest.mark.parametrize("name", ["copy", "pretrain"])
@pytest.mark.parametrize("split", ["dev", "train", "Test", None])
def test_an_unknown_split_is_named_with_the_known_ones(name, split):
    with pytest.raises(ValueError, match=rf"unknown split {split!r}; expected one of 'validation', 'test'$"):
        get_task(name, n_eval=5).evaluate(FakeModel(oracle), split=split)


def test_the_shipped_skills_model_scores_what_it_scored_before_the_validation_split():
    result = get_task("pretrain").evaluate(ml.pretrained("skills"))  # measured before validation existed
    assert result["accuracy"] == 0.9975 and result["n"] == 2000
    assert {k: v["accuracy"] for k, v in result["by_skill"].items()} == {"copy": 1.0, "reverse": 0.99, "shift": 1.0,
                                                                         "add": 1.0}


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
    monkeypatch.setattr(registry, "_INFOS", dict(registry._INFOS))
    double = Skill("double", "W", LetterStrings(1, 4), lambda s: s + s, 8)
    register_task("double", lambda **kwargs: SkillTask(double, **kwargs), "fine-tuning", "write it twice", "Wab=abab.")
    task = get_task("double", n_eval=10)
    assert task.name == "double" and "double" in list_tasks()
    assert task_info("double") == registry.TaskInfo("double", "fine-tuning", "write it twice", "Wab=abab.")
    with pytest.raises(ValueError, match="already registered"):
        register_task("double", lambda: task, "fine-tuning", "again")
    with pytest.raises(ValueError, match=r"unknown role 'finetune' for task 'triple'; expected one of 'pretraining', "
                                         r"'fine-tuning'"):
        register_task("triple", lambda: task, "finetune", "three times")
    assert "triple" not in list_tasks()


def test_every_task_says_what_it_is_for_with_an_example_in_its_vocabulary():
    for name in list_tasks():
        info, task = task_info(name), get_task(name)
        assert info.name == name and info.role in TASK_ROLES
        assert info.description and "\n" not in info.description and len(info.description) < 80
        assert all(task.tokenizer.decode(task.tokenizer.encode(sample)) == sample for sample in info.example.split())
    assert {name for name in list_tasks() if task_info(name).role == "fine-tuning"} == {*FINETUNE_SKILLS, "first-names"}
    assert {*PRETRAIN_SKILLS, "pretrain", "skills-mix", "surnames"} <= set(list_tasks())
    for name in SKILLS:  # a skill's example is a true one
        tag, rest = task_info(name).example[0], task_info(name).example[1:]
        assert tag == SKILLS[name].tag and SKILLS[name].example(rest[: rest.index("=")]) == task_info(name).example


def test_task_info_of_an_unknown_task_is_named_with_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown task 'juggle'; known tasks: copy, reverse"):
        task_info("juggle")


# -- a real model on every device -----------------------------------------------------------------


def test_a_real_gpt_decodes_the_same_on_every_device(device):
    from minilora.models import GPT, GPTConfig

    task = get_task("pretrain", n_eval=20)
    config = GPTConfig(vocab_size=TOK.vocab_size, block_size=task.block_size, n_layer=1, n_head=2, n_embd=16)
    prompts = [TOK.encode(t.skill.prompt(text)) for t in task.tasks for text in t.test_inputs]
    completions = {}
    for where in ("cpu", device):
        model = GPT(config, seed=0, device=where)
        with inference(model):
            completions[where] = greedy_complete(model, prompts, TOK.eos_id, task.block_size + 1)
        assert task.evaluate(model)["n"] == 80 and model.training
    assert completions["cpu"] == completions[device]
