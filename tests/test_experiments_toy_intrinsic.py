"""Li et al.'s toy problem: 10 independent linear constraints on θ ∈ R^1000 give an intrinsic dimension of
exactly 10."""

import json

import numpy as np
import pytest

from minilora.experiments.toy_intrinsic import (
    ToyLoss,
    toy_intrinsic_dimension,
    toy_problem,
    toy_subspace_fit,
    toy_summary,
)
from minilora.subspace import SubspaceModel


def test_the_problem_is_li_et_al_s():
    problem = toy_problem()
    assert problem.A.shape == (10, 1000) and np.linalg.matrix_rank(problem.A) == 10
    theta = np.repeat(np.arange(1, 11) / 100, 100)  # each group of 100 entries sums to its index
    assert problem.residual(theta) < 1e-12
    assert problem.residual(problem.theta0) > 1


@pytest.mark.parametrize("projection", ["dense", "sparse", "fastfood"])
def test_intrinsic_dimension_is_exactly_ten(projection):
    assert toy_intrinsic_dimension(projection) == 10
    assert toy_intrinsic_dimension(projection, seed=3) == 10


def test_d_below_ten_leaves_a_residual_and_ten_solves():
    nine, ten = toy_subspace_fit(9), toy_subspace_fit(10)
    assert not nine.solved and nine.relative_residual > 1e-3
    assert ten.solved and ten.relative_residual < 1e-8


def test_more_constraints_need_more_dimensions():
    problem = toy_problem(D=600, constraints=20, seed=1)
    assert toy_intrinsic_dimension("fastfood", problem=problem) == 20


@pytest.mark.parametrize("projection", ["dense", "fastfood"])
def test_the_least_squares_point_solves_it_through_subspace_model(projection):
    """z* from the closed form, put into SubspaceModel(ToyLoss): the engine's loss L(θ0 + P z*) is 0."""
    problem = toy_problem()
    fit = toy_subspace_fit(10, projection, seed=2, problem=problem)
    sm = SubspaceModel(ToyLoss(problem), 10, projection=projection, seed=2)
    assert sm().item() > 1
    sm.z.data[...] = fit.z
    assert sm().item() < 1e-12


def test_summary_writes_json(tmp_path):
    result = toy_summary(max_d=12, projection="sparse", out=tmp_path / "toy.json")
    assert (result["D"], result["expected"], result["d_int"]) == (1000, 10, 10)
    assert [f["solved"] for f in result["fits"]] == [False] * 9 + [True] * 3
    assert json.loads((tmp_path / "toy.json").read_text()) == result


def test_not_reached_below_max_d_is_none():
    assert toy_intrinsic_dimension("fastfood", max_d=9) is None
    assert toy_summary(max_d=5)["d_int"] is None


def test_bad_problem_is_refused():
    with pytest.raises(ValueError, match="equal groups"):
        toy_problem(D=1000, constraints=7)
