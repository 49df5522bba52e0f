"""The registry of what trains: settings checked once, each method prepares a model and counts what trains."""

import pytest

from minilora.experiments.methods import METHODS, get_method
from minilora.experiments.runs import load_base

SKILLS_D = 110_720


def test_the_registry_holds_every_method_and_names_unknown_ones():
    assert list(METHODS)[:10] == ["none", "full", "lora", "subspace", "dora", "pissa", "olora", "lora-fa",
                                  "lora-plus", "vera"]  # later METHODS.update blocks add more (adapter, prefix, ...)
    with pytest.raises(ValueError, match="unknown method 'galore'; expected one of none, full, lora, subspace, dora"):
        get_method("galore")


def test_a_setting_of_another_method_is_refused_in_one_line():
    with pytest.raises(ValueError, match="r does not apply to method 'full'"):
        get_method("full").check({"r": 8})
    with pytest.raises(ValueError, match="d does not apply to method 'lora'"):
        get_method("lora").check({"d": 8})
    with pytest.raises(ValueError, match="method 'subspace' needs d"):
        get_method("subspace").check({})


def test_defaults_are_filled_and_values_validated():
    lora = get_method("lora").check({"r": 8, "target_modules": ("q_proj",)})
    assert lora == {"r": 8, "lora_alpha": None, "use_rslora": False, "target_modules": ["q_proj"],
                    "init_lora_weights": "gaussian"}
    with pytest.raises(ValueError, match="r must be an integer >= 1"):
        get_method("lora").check({"r": 0})
    assert get_method("subspace").check({"d": 16}) == {"d": 16, "projection": "fastfood", "said": False}
    with pytest.raises(ValueError, match="projection must be one of"):
        get_method("subspace").check({"d": 16, "projection": "magic"})


def test_each_method_prepares_the_model_and_counts_what_trains():
    assert get_method("none").trainable(load_base("skills")) == 0
    full = get_method("full").prepare(load_base("skills"))
    assert get_method("full").trainable(full) == SKILLS_D
    lora = get_method("lora").prepare(load_base("skills"), {"r": 2, "target_modules": ["q_proj"]})
    assert get_method("lora").trainable(lora) == 2 * 2 * (64 + 64)  # two layers, W_q 64×64: r(d + k) each
    sub = get_method("subspace").prepare(load_base("skills"), {"d": 16})
    assert get_method("subspace").trainable(sub) == 16 and sub.D == SKILLS_D
