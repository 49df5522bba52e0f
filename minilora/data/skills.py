"""Synthetic skills: small string-to-string functions a tiny GPT can learn, in one shared vocabulary.

Every example is one line ``<TAG><input>=<output>.``; the tag, a single upper-case letter, tells the
model which skill to apply, and the loss is taken on ``<output>.`` only:

    tag  skill           input                      example          used for
    C    copy            1-8 lower-case letters     Cabc=abc.        pretraining
    R    reverse         1-8 lower-case letters     Rabc=cba.        pretraining
    S    shift           1-8 lower-case letters     Sabz=bca.        pretraining   (Caesar +1, z -> a)
    A    add             a+b, 0 <= a, b <= 99       A12+34=46.       pretraining
    T    reverse-shift   1-8 lower-case letters     Tabz=acb.        fine-tuning (close: reverse, then shift)
    D    subtract        a-b, 0 <= b <= a <= 99     D57-23=34.       fine-tuning (close: the inverse of add)
    O    sort            1-8 lower-case letters     Ocab=abc.        fine-tuning (far: a new algorithm)

All 26 upper-case letters are in the vocabulary, so new skills can take a free tag without
resizing a pretrained model's embedding.

Held-out inputs.  An input string ``s`` is held out (for every skill) when

    crc32(s) / 2**32 < HELDOUT_FRACTION

Training batches never contain a held-out input, and evaluation sets are drawn only from them,
so a model is always scored on inputs it has never seen, under any skill.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np

from minilora.data.tokenizer import CharTokenizer

__all__ = [
    "LETTERS",
    "SKILL_TOKENIZER",
    "HELDOUT_FRACTION",
    "is_heldout",
    "InputSpace",
    "LetterStrings",
    "OperandPairs",
    "Skill",
    "SKILLS",
    "PRETRAIN_SKILLS",
    "FINETUNE_SKILLS",
    "skill_for_tag",
]

LETTERS = "abcdefghijklmnopqrstuvwxyz"
DIGITS = "0123456789"
TAGS = LETTERS.upper()
END = "."  # ends every output
SEP = "="  # separates input from output

SKILL_TOKENIZER = CharTokenizer(END + SEP + "+-" + DIGITS + LETTERS + TAGS, eos=END)
"""The one vocabulary of every skill: pad ``_`` (id 0), ``. = + -``, digits, a-z, A-Z (67 ids); ``.`` ends a sample."""

HELDOUT_FRACTION = 0.1


def is_heldout(text: str) -> bool:
    """True when input ``text`` belongs to the evaluation pool: ``crc32(text) / 2**32 < HELDOUT_FRACTION``."""
    return zlib.crc32(text.encode("ascii")) < HELDOUT_FRACTION * 2**32


# -- input spaces ---------------------------------------------------------------------------------


class InputSpace(Protocol):
    """Where a skill's inputs come from."""

    max_len: int  # the longest input string, in characters

    def sample(self, rng: np.random.Generator, n: int) -> list[str]:
        """``n`` inputs drawn independently (held-out ones included)."""
        ...


@dataclass(frozen=True)
class LetterStrings:
    """Lower-case strings: length uniform in min_len..max_len, then each letter uniform in a-z."""

    min_len: int = 1
    max_len: int = 8

    def sample(self, rng: np.random.Generator, n: int) -> list[str]:
        """``n`` random letter strings."""
        lengths = rng.integers(self.min_len, self.max_len + 1, size=n)
        letters = rng.integers(0, 26, size=(n, self.max_len))
        return ["".join(LETTERS[j] for j in row[:length]) for row, length in zip(letters, lengths, strict=True)]


@dataclass(frozen=True)
class OperandPairs:
    """Strings ``"a<op>b"`` with a, b uniform in 0..99; with ``ordered=True`` they are swapped so a >= b."""

    op: str
    ordered: bool = False
    max_len: int = 5  # "99+99"

    def sample(self, rng: np.random.Generator, n: int) -> list[str]:
        """``n`` random operand pairs."""
        a, b = rng.integers(0, 100, size=(2, n))
        if self.ordered:
            a, b = np.maximum(a, b), np.minimum(a, b)
        return [f"{i}{self.op}{j}" for i, j in zip(a.tolist(), b.tolist(), strict=True)]


# -- answers --------------------------------------------------------------------------------------

_SHIFT = str.maketrans(LETTERS, LETTERS[1:] + LETTERS[0])


def copy(s: str) -> str:
    """The input unchanged: copy("abc") = "abc"."""
    return s


def reverse(s: str) -> str:
    """The letters in reverse order: reverse("abc") = "cba"."""
    return s[::-1]


def shift(s: str) -> str:
    """Caesar shift by one, letter i -> letter (i + 1) mod 26: shift("abz") = "bca"."""
    return s.translate(_SHIFT)


def reverse_shift(s: str) -> str:
    """Reverse, then shift by one: reverse_shift("abz") = shift("zba") = "acb"."""
    return shift(reverse(s))


def sort(s: str) -> str:
    """The letters in alphabetical order: sort("cab") = "abc"."""
    return "".join(sorted(s))


def add(s: str) -> str:
    """The decimal sum of ``"a+b"``: add("12+34") = "46"."""
    a, b = s.split("+")
    return str(int(a) + int(b))


def subtract(s: str) -> str:
    """The decimal difference of ``"a-b"`` (a >= b, so never negative): subtract("57-23") = "34"."""
    a, b = s.split("-")
    return str(int(a) - int(b))


# -- skills ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Skill:
    """A named string function, its tag character, where its inputs come from, and its longest answer."""

    name: str
    tag: str
    space: InputSpace
    answer: Callable[[str], str]
    max_output_len: int

    def prompt(self, text: str) -> str:
        """What the model is given: ``<TAG><input>=``."""
        return f"{self.tag}{text}{SEP}"

    def example(self, text: str) -> str:
        """A whole training line: ``<TAG><input>=<output>.``."""
        return f"{self.prompt(text)}{self.answer(text)}{END}"

    @property
    def max_seq_len(self) -> int:
        """Tokens in the longest example: tag + input + '=' + output + '.'."""
        return self.space.max_len + self.max_output_len + 3


_WORDS = LetterStrings()

SKILLS: dict[str, Skill] = {
    skill.name: skill
    for skill in (
        Skill("copy", "C", _WORDS, copy, _WORDS.max_len),
        Skill("reverse", "R", _WORDS, reverse, _WORDS.max_len),
        Skill("shift", "S", _WORDS, shift, _WORDS.max_len),
        Skill("add", "A", OperandPairs("+"), add, 3),
        Skill("reverse-shift", "T", _WORDS, reverse_shift, _WORDS.max_len),
        Skill("subtract", "D", OperandPairs("-", ordered=True), subtract, 2),
        Skill("sort", "O", _WORDS, sort, _WORDS.max_len),
    )
}
"""The built-in skills by name."""

PRETRAIN_SKILLS = ("copy", "reverse", "shift", "add")
FINETUNE_SKILLS = ("reverse-shift", "subtract", "sort")


def skill_for_tag(tag: str) -> Skill:
    """The built-in skill whose tag is ``tag``; an unknown tag is a ValueError listing the known ones."""
    for skill in SKILLS.values():
        if skill.tag == tag:
            return skill
    known = ", ".join(f"{s.tag}={s.name}" for s in SKILLS.values())
    raise ValueError(f"unknown skill tag {tag!r}; known tags: {known}")
