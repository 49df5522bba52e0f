"""The typed run spec: JSON round trip, a stable key, settings checked by the registry."""

import json

import pytest

from minilora.experiments.spec import RunSpec
from minilora.train import TrainConfig


def _spec(**train):
    return RunSpec.make("sort", "skills", "lora", TrainConfig(steps=10, **train), {"r": 2}, {"n_eval": 5})


def test_a_spec_round_trips_through_json():
    spec = _spec()
    data = json.loads(json.dumps(spec.to_json()))
    assert RunSpec.from_json(data) == spec and data["settings"]["r"] == 2 and data["train"]["steps"] == 10


def test_the_key_is_stable_and_changes_with_any_value():
    assert _spec().key() == _spec().key() == RunSpec.from_json(_spec().to_json()).key()
    assert len(_spec().key()) == 12
    assert _spec(seed=1).key() != _spec().key()


def test_settings_are_checked_and_bad_json_is_named():
    with pytest.raises(ValueError, match="r does not apply to method 'full'"):
        RunSpec.make("sort", "skills", "full", TrainConfig(), {"r": 2})
    with pytest.raises(ValueError, match="needs exactly the fields"):
        RunSpec.from_json({"task": "sort"})
    data = _spec().to_json()
    data["train"]["warmup"] = 3
    with pytest.raises(ValueError, match="'warmup' is not one"):
        RunSpec.from_json(data)
