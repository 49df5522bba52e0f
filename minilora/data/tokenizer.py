"""A character-level tokenizer: one integer id per character, id 0 reserved for padding, one end-of-sample id."""

from __future__ import annotations

from typing import Iterable

__all__ = ["CharTokenizer"]


class CharTokenizer:
    """Map characters to integer ids and back.

    The vocabulary is ``pad + chars``: the padding character gets id 0 (``pad_id``) and the
    i-th character of ``chars`` gets id i + 1, so ``vocab_size = len(chars) + 1``.  ``eos``, one
    of ``chars``, ends every sample: generation stops once it writes ``eos_id``.

    >>> tok = CharTokenizer("abc.", eos=".")
    >>> tok.encode("cab.")
    [3, 1, 2, 4]
    >>> tok.decode([3, 1, 2, 4])
    'cab.'
    >>> tok.eos_id
    4
    """

    def __init__(self, chars: str, pad: str = "_", eos: str | None = None) -> None:
        if len(pad) != 1:
            raise ValueError(f"the padding token must be one character, got {pad!r}")
        if eos is not None and (len(eos) != 1 or eos not in chars):
            raise ValueError(f"the end-of-sample token must be one of chars {chars!r}, got {eos!r}")
        if pad in chars:
            raise ValueError(f"the padding character {pad!r} must not also be in chars {chars!r}")
        duplicates = sorted({c for c in chars if chars.count(c) > 1})
        if duplicates:
            raise ValueError(f"chars must be distinct; repeated: {''.join(duplicates)!r}")
        self.pad = pad
        self.eos = eos
        self.itos = pad + chars  # id -> character
        self.stoi = {c: i for i, c in enumerate(self.itos)}  # character -> id

    @property
    def vocab_size(self) -> int:
        """Number of distinct ids, padding included: ``len(chars) + 1``."""
        return len(self.itos)

    @property
    def pad_id(self) -> int:
        """The id used to fill short rows of a batch (always 0)."""
        return 0

    @property
    def eos_id(self) -> int | None:
        """The id of the end-of-sample character ``eos`` (None when the tokenizer has none): a sampler stops there."""
        return None if self.eos is None else self.stoi[self.eos]

    def encode(self, text: str) -> list[int]:
        """The id of each character of ``text``; an unknown character is a ValueError naming it."""
        try:
            return [self.stoi[c] for c in text]
        except KeyError:
            position, char = next((i, c) for i, c in enumerate(text) if c not in self.stoi)
            raise ValueError(
                f"unknown character {char!r} at position {position} of {text!r}; "
                f"the vocabulary is {self.itos[1:]!r} (pad {self.pad!r})"
            ) from None

    def decode(self, ids: Iterable[int]) -> str:
        """The characters of ``ids`` (padding shows as the pad character); an id outside 0..vocab_size-1 is a
        ValueError."""
        chars = []
        for token in ids:
            token = int(token)
            if not 0 <= token < self.vocab_size:
                raise ValueError(f"token id {token} is out of range 0..{self.vocab_size - 1}")
            chars.append(self.itos[token])
        return "".join(chars)

    def __repr__(self) -> str:
        return f"CharTokenizer({self.itos[1:]!r}, pad={self.pad!r}, eos={self.eos!r})"
