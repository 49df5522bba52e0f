"""CharTokenizer: round trip, padding id, and clear errors."""

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
    "chars, pad, message",
    [("abca", "_", "repeated: 'a'"), ("ab_", "_", "must not also be in chars"), ("ab", "__", "one character")],
)
def test_bad_vocabularies_are_rejected(chars, pad, message):
    with pytest.raises(ValueError, match=message):
        CharTokenizer(chars, pad=pad)


def test_vocabulary_sizes():
    assert SKILL_TOKENIZER.vocab_size == 67  # pad . = + - 0-9 a-z A-Z
    assert NAMES_TOKENIZER.vocab_size == 28  # pad . a-z
