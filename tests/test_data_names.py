"""The census names corpus: loading, the deterministic three-way split, batches, and bits per character."""

import hashlib
import math
from types import SimpleNamespace

import numpy as np
import pytest

import minilora as ml
from minilora.data import NAMES_TOKENIZER, get_task, load_names, split_names
from minilora.data import names as names_module

V = NAMES_TOKENIZER.vocab_size


class FakeModel:
    """A model with the GPT contract whose logits come from ``logits_for(x)`` (host, (B, T, V))."""

    device = "cpu"  # as nn.Module.device

    def __init__(self, logits_for, block_size=16):
        self.logits_for = logits_for
        self.config = SimpleNamespace(block_size=block_size)
        self.training = True

    def eval(self):
        self.training = False

    def train(self):
        self.training = True

    def __call__(self, idx, targets=None):
        assert not self.training and not ml.is_grad_enabled()
        return ml.tensor(self.logits_for(np.asarray(idx))), None


def uniform(x):
    return np.zeros((*x.shape, V), dtype=np.float32)


def cheating_oracle(x):
    """All mass on the true next character: x = '.name' (+ pad), so the row itself gives 'name.'."""
    logits = np.zeros((*x.shape, V), dtype=np.float32)
    for b, row in enumerate(x):
        text = NAMES_TOKENIZER.decode(row).rstrip("_") + "."
        for t in range(len(text) - 1):
            logits[b, t, NAMES_TOKENIZER.stoi[text[t + 1]]] = 50.0
    return logits


@pytest.fixture(scope="module")
def first_names():
    return get_task("first-names")


def test_corpora_load_lowercase_distinct_and_sorted():
    surnames, first = load_names("surnames"), load_names("first-names")
    assert len(surnames) == 88799 and len(first) == 5163
    for corpus in (surnames, first):
        assert list(corpus) == sorted(set(corpus))
        assert all(name.isalpha() and name.islower() and name.isascii() for name in corpus)
    assert "smith" in surnames and "mary" in first and "james" in first


def test_unknown_corpus_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown names corpus 'pets'.*first-names"):
        load_names("pets")


def test_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(names_module.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match="pip install names"):
        names_module.names_package_dir()


def fingerprint(names):
    return hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]


def test_split_is_deterministic_disjoint_and_complete():
    corpus = load_names("first-names")
    train, validation, test = split_names(corpus, 0.1, seed=0)
    assert (train, validation, test) == split_names(corpus, 0.1, seed=0)
    assert split_names(corpus, 0.1, seed=1)[2] != test
    assert not set(train) & set(test) and not set(train) & set(validation) and not set(validation) & set(test)
    assert sorted(train + validation + test) == list(corpus)
    assert len(test) == len(validation) == round(0.1 * len(corpus))


@pytest.mark.parametrize("corpus, test_set, old_train", [
    ("first-names", "b225c7c72f5ab411", "fe71d4b2cf522cbf"), ("surnames", "bbbde7845643ca63", "f0c2cb58df9622c1"),
])
def test_the_test_set_is_the_held_out_set_of_before_the_validation_split(corpus, test_set, old_train):
    """Fingerprints taken before validation existed: the test set is unchanged, and validation_fraction=0 gives
    back the training set (and so the training batches) of that time."""
    names = load_names(corpus)
    assert fingerprint(split_names(names)[2]) == test_set
    train, validation, _ = split_names(names, validation_fraction=0.0)
    assert validation == [] and fingerprint(train) == old_train


@pytest.mark.parametrize("kwargs, message", [
    ({"test_fraction": 0.0}, "test_fraction must be between 0 and 1, got 0.0"),
    ({"validation_fraction": -0.1}, r"validation_fraction must be in \[0, 0.9\) beside test_fraction=0.1, got -0.1"),
    ({"test_fraction": 0.5, "validation_fraction": 0.5}, r"validation_fraction must be in \[0, 0.5\)"),
])
def test_bad_fractions_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        split_names(load_names("first-names"), **kwargs)


def test_both_name_tasks_share_one_vocabulary(first_names):
    assert get_task("surnames").tokenizer is first_names.tokenizer
    assert first_names.block_size == 12 and get_task("surnames").block_size == 14


def test_batch_rows_are_whole_names_with_shifted_targets(first_names):
    x, y = first_names.sample_batch(np.random.default_rng(0), 64)
    assert x.dtype == np.int64 and y.dtype == np.int64 and x.shape == y.shape
    longest = 0
    for xr, yr in zip(x, y):
        text = NAMES_TOKENIZER.decode(xr).rstrip("_")
        name = text[1:]
        longest = max(longest, len(name))
        assert text[0] == "." and name in first_names.train_names
        n = len(name) + 1
        assert NAMES_TOKENIZER.decode(yr[:n]) == name + "."
        assert (yr[n:] == -1).all() and (xr[n:] == NAMES_TOKENIZER.pad_id).all()
    assert x.shape[1] == longest + 1  # padded to this batch's longest name, not to block_size


def test_batches_are_deterministic_per_seed(first_names):
    a = first_names.sample_batch(np.random.default_rng(7), 32)
    b = first_names.sample_batch(np.random.default_rng(7), 32)
    c = first_names.sample_batch(np.random.default_rng(8), 32)
    assert all((u == v).all() for u, v in zip(a, b))
    assert a[0].shape != c[0].shape or not (a[0] == c[0]).all()


def test_training_batches_never_show_validation_or_test_names(first_names):
    rng = np.random.default_rng(0)
    held = set(first_names.validation_names) | set(first_names.test_names)
    for _ in range(50):
        x, _ = first_names.sample_batch(rng, 64)
        assert not {NAMES_TOKENIZER.decode(r).strip("._") for r in x} & held


def test_uniform_model_scores_log2_vocab(first_names):
    model = FakeModel(uniform)
    result = first_names.evaluate(model, batch_size=100)
    assert result["bits_per_char"] == pytest.approx(math.log2(V), abs=1e-5)
    assert result["n_names"] == len(first_names.test_names)
    assert result["n_chars"] == sum(len(name) + 1 for name in first_names.test_names)
    assert model.training  # train mode restored


def test_oracle_scores_zero_bits_and_max_names_limits(first_names):
    result = first_names.evaluate(FakeModel(cheating_oracle), max_names=50)
    assert result["bits_per_char"] < 1e-6 and result["n_names"] == 50


@pytest.mark.parametrize("max_names", [0, -1, 2.5, True])
def test_max_names_must_be_a_positive_count(first_names, max_names):
    with pytest.raises(ValueError, match=rf"max_names must be an integer >= 1 or None, got {max_names!r}"):
        first_names.evaluate(FakeModel(uniform), max_names=max_names)


def test_evaluate_scores_the_split_it_is_asked_for(first_names):
    validation = set(first_names.validation_names)

    def oracle_on_validation(x):  # the oracle's logits on validation names, uniform ones elsewhere
        known = np.array([NAMES_TOKENIZER.decode(row).strip("._") in validation for row in x])
        return np.where(known[:, None, None], cheating_oracle(x), uniform(x))

    on_validation = first_names.evaluate(FakeModel(oracle_on_validation), split="validation")
    assert on_validation["bits_per_char"] < 1e-6 and on_validation["n_names"] == len(first_names.validation_names)
    default = first_names.evaluate(FakeModel(oracle_on_validation))
    assert default == first_names.evaluate(FakeModel(oracle_on_validation), split="test")
    assert default["bits_per_char"] == pytest.approx(math.log2(V), abs=1e-5)  # the default split is "test"
    assert first_names.evaluate(FakeModel(uniform), split="validation", max_names=7)["n_names"] == 7


def test_an_unknown_split_is_named_with_the_known_ones(first_names):
    with pytest.raises(ValueError, match=r"unknown split 'dev'; expected one of 'validation', 'test'$"):
        first_names.evaluate(FakeModel(uniform), split="dev")


def test_no_validation_split_when_asked_for_none():
    task = get_task("first-names", validation_fraction=0.0)
    with pytest.raises(ValueError, match="task 'first-names' has no validation names: it was built with "
                                         "validation_fraction=0"):
        task.evaluate(FakeModel(uniform), split="validation")


def test_the_shipped_names_model_scores_what_it_scored_before_the_validation_split():
    result = get_task("surnames").evaluate(ml.pretrained("names"), max_names=2000)  # measured before validation
    assert result["bits_per_char"] == pytest.approx(3.109996188849076, rel=1e-6) and result["n_chars"] == 15666


def test_too_short_model_context_is_rejected(first_names):
    with pytest.raises(ValueError, match="block_size=8 is smaller than the 12 tokens"):
        first_names.evaluate(FakeModel(uniform, block_size=8))


def test_a_real_gpt_scores_the_same_on_every_device(device, first_names):
    from minilora.models import GPT, GPTConfig

    config = GPTConfig(vocab_size=V, block_size=first_names.block_size, n_layer=1, n_head=2, n_embd=16)
    bpc = {where: first_names.evaluate(GPT(config, seed=0, device=where), max_names=100)["bits_per_char"]
           for where in ("cpu", device)}
    assert bpc[device] == pytest.approx(bpc["cpu"], rel=1e-4)
    assert abs(bpc["cpu"] - math.log2(V)) < 0.5  # an untrained model is close to uniform


@pytest.mark.parametrize("kwargs, empty", [
    ({"test_fraction": 0.1}, "test"), ({"test_fraction": 0.4, "validation_fraction": 0.1}, "validation"),
    ({"test_fraction": 0.5, "validation_fraction": 0.49}, "training"),
])
def test_a_split_that_leaves_a_side_empty_is_refused(kwargs, empty):
    with pytest.raises(ValueError, match=f"of 3 names leave an empty {empty} set"):
        split_names(("ann", "bob", "cy"), **kwargs)
