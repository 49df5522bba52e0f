"""The pretrained models shipped inside the package: they load fast and know their skills."""

import pytest

import minilora
from minilora.data import PRETRAIN_SKILLS, get_task
from minilora.models.zoo import RECIPES, weights_path


def test_every_recipe_has_shipped_weights():
    for name in RECIPES:
        assert weights_path(name).is_file(), f"missing {weights_path(name)}: run {RECIPES[name].command(name)}"


def test_skills_model_loads_ready_for_inference():
    model = minilora.pretrained("skills")
    assert not model.training
    assert model.config.vocab_size == get_task("pretrain").tokenizer.vocab_size


def test_skills_model_masters_every_skill_at_every_length():
    """≥ 95% exact match on every pretraining skill, at every input length, on held-out prompts."""
    result = get_task("pretrain").evaluate(minilora.pretrained("skills"))
    assert set(result["by_skill"]) == set(PRETRAIN_SKILLS)
    for skill, scores in result["by_skill"].items():
        assert scores["n"] >= 400, skill
        for length, accuracy in scores["by_length"].items():
            assert accuracy >= 0.95, f"{skill} at input length {length}: {accuracy:.1%}"


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="skills"):
        minilora.pretrained("gpt-5")


def test_names_model_beats_uniform_guessing_on_held_out_surnames():
    """A uniform guess over 28 symbols costs log2(28) ≈ 4.81 bits per character; the shipped model far less."""
    result = get_task("surnames").evaluate(minilora.pretrained("names"), max_names=2000)
    assert result["bits_per_char"] < 3.4


def test_the_names_recipe_pretrains_on_every_surname_outside_the_test_split():
    """The shipped names model saw all 79,919 non-test surnames; the task's validation split (issue: settings are
    chosen on validation) would take some of them, so the recipe asks for none and still rebuilds the same model."""
    from minilora.data import get_task
    from minilora.models.zoo import RECIPES

    recipe = RECIPES["names"]
    task = get_task(recipe.task, **dict(recipe.task_kwargs))
    default = get_task(recipe.task)
    assert len(task.train_names) == 79_919 and not task.validation_names
    assert task.test_names == default.test_names
    assert set(task.train_names) == set(default.train_names) | set(default.validation_names)
