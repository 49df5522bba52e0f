"""CharTokenizer: round trip, padding and end-of-sample ids, and clear errors."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minilora.data import NAMES_TOKENIZER, SKILL_TOKENIZER, CharTokenizer


def test_ids_follow_the_vocabulary_order_after_padding():
    tok = CharTokenizer("abc")
    assert tok.pad_id == 0 and tok.vocab_size == 4
    assert tok.encode("cab") == [3, 1, 2]
    assert tok.decode([0, 1, 2, 3]) == "_abc"


@given(st.text(alphabet=SKILL_TOKENIZER.itos, max_size=40))
def test_round_trip_on_the_skill_vocabulary(text):
    assert SKILL_TOKENIZER.decode(SKILL_TOKENIZER.encode(text)) == text


def test_decode_accepts_numpy_arrays():
    ids = np.array(NAMES_TOKENIZER.encode(".smith."), dtype=np.int64)
    assert NAMES_TOKENIZER.decode(ids) == ".smith."


def test_unknown_character_is_named_in_the_error():
    with pytest.raises(ValueError, match=r"unknown character '!' at position 2"):
        SKILL_TOKENIZER.encode("ab!c")


def test_out_of_range_id_is_named_in_the_error():
    with pytest.raises(ValueError, match=r"token id 28 is out of range 0..27"):
        NAMES_TOKENIZER.decode([1, 28])


@pytest.mark.parametrize(
    "chars, pad, eos, message",
    [("abca", "_", None, "repeated: 'a'"), ("ab_", "_", None, "must not also be in chars"),
     ("ab", "__", None, "one character"), ("ab", "_", "c", "end-of-sample token must be one of chars 'ab', got 'c'"),
     ("ab", "_", "ab", "end-of-sample token must be one of chars 'ab', got 'ab'")],
)
def test_bad_vocabularies_are_rejected(chars, pad, eos, message):
    with pytest.raises(ValueError, match=message):
        CharTokenizer(chars, pad=pad, eos=eos)


def test_the_end_of_sample_id_is_the_character_that_ends_every_example():
    assert CharTokenizer("abc").eos_id is None
    assert CharTokenizer("abc.", eos=".").eos_id == 4
    assert SKILL_TOKENIZER.eos_id == SKILL_TOKENIZER.stoi["."] == SKILL_TOKENIZER.encode("Rabc=cba.")[-1]
    assert NAMES_TOKENIZER.eos_id == NAMES_TOKENIZER.stoi["."] == NAMES_TOKENIZER.encode(".mary.")[-1]


def test_vocabulary_sizes():
    assert SKILL_TOKENIZER.vocab_size == 67  # pad . = + - 0-9 a-z A-Z
    assert NAMES_TOKENIZER.vocab_size == 28  # pad . a-z
