"""minilora.validation: the one integer / real check and the one seed-or-Generator coercion of the package."""

import numpy as np
import pytest

from minilora.validation import as_rng, is_int, is_real


@pytest.mark.parametrize("value, integer, real", [
    (3, True, True), (np.int64(3), True, True), (np.uint8(3), True, True),
    (2.5, False, True), (np.float32(2.5), False, True), (float("nan"), False, True),
    (True, False, False), (np.bool_(False), False, False), ("3", False, False), (None, False, False),
    (3 + 0j, False, False), (np.array(3), False, False),
])
def test_is_int_and_is_real_take_numbers_but_never_bools(value, integer, real):
    assert is_int(value) is integer and is_real(value) is real


def test_as_rng_uses_a_generator_as_is_and_seeds_a_new_one_otherwise():
    rng = np.random.default_rng(0)
    assert as_rng(rng) is rng                                          # the caller's stream advances
    assert as_rng(7).random() == as_rng(7).random() == np.random.default_rng(7).random()
    assert isinstance(as_rng(None), np.random.Generator) and as_rng(None).random() != as_rng(None).random()


def test_every_layer_of_the_package_uses_the_one_coercion():
    """The copies that existed (creation, nn, lora, gpt) are gone: a Generator passed in is drawn from."""
    import minilora as ml
    from minilora import nn
    from minilora.lora import LoRALinear
    from minilora.models import GPT, GPTConfig

    def drawn(make):
        rng = np.random.default_rng(1)
        make(rng)
        return rng.random() != np.random.default_rng(1).random()      # the stream moved on

    assert drawn(lambda rng: ml.randn(3, rng=rng))
    assert drawn(lambda rng: nn.Linear(2, 3, rng=rng))
    assert drawn(lambda rng: LoRALinear(nn.Linear(2, 3, rng=0), r=1, rng=rng))
    assert drawn(lambda rng: GPT(GPTConfig(5, 4, 1, 1, 4)).generate(np.zeros((1, 1), dtype=np.int64), 2, rng=rng))
