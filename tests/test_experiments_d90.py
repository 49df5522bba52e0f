"""d90 and its search on synthetic metric curves, where the answer is known exactly."""

import math

import pytest

from minilora.experiments.d90 import (
    choose_lr,
    crossing,
    describe_trend,
    effective_metric,
    median_d90,
    next_dims,
    noise_floor,
    target_of,
    trend,
)


def linear_in_log(d, offset=0.05):
    """m(d) = 0.1·log2(d) − offset, capped at 1: crosses 0.9 at log2 d = 9 + 10·offset."""
    return min(1.0, 0.1 * math.log2(d) - offset)


def search(metric, target, start, lo=16, hi=65536, refine=1):
    """Drive next_dims to the end against ``metric``; the evaluated points in order of evaluation."""
    done, order = {}, []
    while dims := next_dims(done, target, start, lo, hi, refine):
        for d in dims:
            done[d] = metric(d)
            order.append(d)
    return done, order


def test_target_is_the_fraction_of_the_baseline():
    assert target_of(0.8) == pytest.approx(0.72)
    assert target_of(1.0, fraction=0.5) == 0.5
    with pytest.raises(ValueError, match="fraction"):
        target_of(1.0, fraction=1.5)
    with pytest.raises(ValueError, match="baseline"):
        target_of(float("nan"))


def test_crossing_interpolates_on_log_d_between_last_miss_and_first_hit():
    # m = 0.5 at d = 100 and 1.0 at d = 400: the target 0.75 is half way on log d, at d = 200
    assert crossing([100, 400], [0.5, 1.0], 0.75) == pytest.approx(200.0)
    assert crossing([400, 100, 50], [1.0, 0.5, 0.1], 0.75) == pytest.approx(200.0)  # any order
    # the first hit decides, even if a larger d misses again
    assert crossing([64, 128, 256, 512], [0.1, 0.95, 0.5, 1.0], 0.9) == pytest.approx(64 * 2 ** (0.8 / 0.85))


def test_crossing_edge_cases():
    assert crossing([64, 128], [0.95, 1.0], 0.9) == 64.0  # already reached at the first d: an upper bound
    assert crossing([64, 128], [0.1, 0.2], 0.9) is None
    assert crossing([64, 128], [-math.inf, 0.95], 0.9) == 128.0  # a diverged miss has no slope
    with pytest.raises(ValueError, match="2 dims but 1 values"):
        crossing([1, 2], [0.5], 0.9)


def test_a_diverged_run_is_a_miss_and_never_chosen():
    assert effective_metric(0.7, diverged=True) == -math.inf
    assert effective_metric(None, diverged=False) == -math.inf
    assert effective_metric(float("nan"), diverged=False) == -math.inf
    assert effective_metric(0.7, diverged=False) == 0.7
    assert choose_lr({0.01: 0.5, 0.03: 0.8, 0.1: -math.inf}) == 0.03
    assert choose_lr({0.01: 0.8, 0.03: 0.8, 0.1: 0.2}) == 0.01  # ties: the smaller lr
    with pytest.raises(ValueError, match="no learning rates"):
        choose_lr({})


def test_median_counts_a_seed_that_never_reached_as_infinite():
    assert median_d90([700.0, None, 900.0]) == 900.0
    assert median_d90([700.0, None, None]) is None
    assert median_d90([100.0, 300.0]) == 200.0


def test_search_goes_up_in_powers_of_two_then_refines_the_octave():
    done, order = search(linear_in_log, 0.9, start=(64, 128))
    # 64 .. 512 miss (m(512) = 0.85), 1024 hits (0.95); refine: round(512·√2) = 724 misses (0.89998)
    assert order == [64, 128, 256, 512, 1024, 724]
    d90 = crossing(list(done), list(done.values()), 0.9)
    assert d90 == pytest.approx(2 ** 9.5)  # m is linear in log d, so the interpolation is exact: 724.08


def test_search_goes_down_from_a_hit_and_refines_with_more_points():
    done, order = search(lambda d: linear_in_log(d, offset=-0.25), 0.9, start=(1024, 2048), refine=3)
    # crossing at log2 d = 6.5: down to 64 (miss, 0.85), first hit 128; refine at 64·2^(j/4)
    assert order[:2] == [1024, 2048] and order[2:6] == [512, 256, 128, 64]
    assert sorted(order[6:]) == [76, 91, 108]
    assert crossing(list(done), list(done.values()), 0.9) == pytest.approx(2 ** 6.5, rel=1e-3)


def test_search_stops_at_the_limits():
    done, order = search(lambda d: 0.0, 0.9, start=(16, 32), hi=256)
    assert order == [16, 32, 64, 128, 256]  # never reached within hi
    assert crossing(list(done), list(done.values()), 0.9) is None
    done, order = search(lambda d: 1.0, 0.9, start=(64, 128), lo=16)
    assert order == [64, 128, 32, 16]  # reached already at lo: d90 <= 16
    assert crossing(list(done), list(done.values()), 0.9) == 16.0


def test_search_is_a_pure_function_of_the_results():
    done, _ = search(linear_in_log, 0.9, start=(64, 128))
    assert next_dims(done, 0.9, (64, 128), 16, 65536) == []  # replaying finished results asks for nothing
    partial = {d: linear_in_log(d) for d in (64, 128, 256)}
    assert next_dims(partial, 0.9, (64, 128), 16, 65536) == [512]


def test_next_dims_rejects_bad_arguments():
    with pytest.raises(ValueError, match="powers of two"):
        next_dims({}, 0.9, (100,), 16, 1024)
    with pytest.raises(ValueError, match="within"):
        next_dims({}, 0.9, (8,), 16, 1024)
    with pytest.raises(ValueError, match="lo <= hi"):
        next_dims({}, 0.9, (16,), 32, 16)


def test_the_noise_floor_is_the_largest_over_the_smallest_replica_d90():
    assert noise_floor({"0": 1000.0, "1": 1700.0, "2": 1200.0})["ratio"] == pytest.approx(1.7)
    assert noise_floor({"0": 1000.0, "1": None})["ratio"] is None  # a replica that never reached: spread unknown
    assert noise_floor({"0": 1000.0})["ratio"] is None


def test_a_trend_holds_only_beyond_the_noise_floor():
    t = trend(["random", "pretrained"], [12000.0, 1000.0], 1.5)
    assert t["ratio"] == pytest.approx(12.0) and t["beyond"] == pytest.approx(8.0) and t["holds"]
    along = trend([250, 1000, 9000], [4000.0, 3000.0, 600.0], 1.7)
    assert along["ratio"] == pytest.approx(4000 / 600) and along["holds"] and along["monotone"]
    assert [s["holds"] for s in along["steps"]] == [False, True]  # 4000 → 3000 is 1.33x: inside the floor
    assert trend(["a", "b"], [1000.0, 2000.0], 1.5)["holds"] is False  # d90 rises: no trend
    assert trend(["a", "b"], [None, 2000.0], 1.5)["holds"] is None
    assert trend(["a", "b"], [1.0, 2.0], None)["holds"] is None
    line = describe_trend("pretraining", along)
    assert "6.67x" in line and "holds beyond it (3.92x the floor)" in line and "1/2 steps beyond" in line
    with pytest.raises(ValueError, match="at least two"):
        trend(["a"], [1.0], 1.5)
