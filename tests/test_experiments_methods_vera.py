"""The "vera" entry of the method registry (minilora/experiments/methods.py): settings checked, only the λ's train."""

import numpy as np
import pytest

from minilora.experiments.methods import get_method
from minilora.experiments.runs import load_base
from minilora.lora import vera_layers


def test_vera_settings_are_checked_and_foreign_ones_refused():
    vera = get_method("vera")
    assert vera.adapter and vera.check({"r": 32, "target_modules": "q_proj"}) == {
        "r": 32, "d_initial": 0.1, "target_modules": ["q_proj"]}
    with pytest.raises(ValueError, match="lora_alpha does not apply to method 'vera'"):
        vera.check({"lora_alpha": 8})
    with pytest.raises(ValueError, match="VeraConfig: r must be an integer >= 1"):
        vera.check({"r": 0})


def test_vera_prepare_trains_only_the_lambdas_and_the_seed_draws_the_projections():
    vera = get_method("vera")
    model = vera.prepare(load_base("skills"), {"r": 96, "target_modules": ["q_proj", "fc_in"]}, seed=3)
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(name.rsplit(".", 1)[1] in ("vera_lambda_b", "vera_lambda_d") for name in trainable)
    assert len(vera_layers(model)) == len(trainable) // 2 == 4  # q_proj and fc_in in each of the two blocks
    assert vera.trainable(model) == 2 * ((96 + 64) + (96 + 256))  # Σ (r + out_features): W_q 64×64, fc_in 256×64
    assert model.vera_config.r == 96 and model.vera_config.projection_prng_key == 3
    other = vera.prepare(load_base("skills"), {"r": 96, "target_modules": ["q_proj", "fc_in"]}, seed=4)
    assert not np.allclose(vera_layers(model)[0][1].vera_A.numpy(), vera_layers(other)[0][1].vera_A.numpy())
