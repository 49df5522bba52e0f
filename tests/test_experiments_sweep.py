"""The sweep runner: order, resume, the same results for any number of workers or any executor, failures."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest

from minilora.experiments.sweep import SweepError, run_sweep, spec_key

CALLS: list[dict] = []  # specs seen by _counted (jobs=1 runs in this process, so the list is shared)


def _seeded(spec: dict) -> dict:
    """A tiny run: its result depends on the spec only (seeded random numbers, a square)."""
    rng = np.random.default_rng(spec["seed"])
    return {"square": spec["x"] ** 2, "draws": rng.standard_normal(3).tolist(), "pair": (spec["x"], spec["seed"])}


def _late_first(spec: dict) -> dict:
    """Earlier specs finish later: completion order is the reverse of the spec order."""
    time.sleep(0.05 * (4 - spec["x"]))
    return _seeded(spec)


def _counted(spec: dict) -> dict:
    CALLS.append(spec)
    return _seeded(spec)


def _fails_on_3(spec: dict) -> dict:
    if spec["x"] == 3:
        raise ValueError("x = 3 is not allowed here")
    return _seeded(spec)


def _breaks(spec: dict) -> dict:
    raise KeyError("a bug, not a bad setting")


def _environment(spec: dict) -> dict:
    """What a worker sees: its thread settings and whether progress bars are off."""
    from threadpoolctl import threadpool_info
    from tqdm.auto import tqdm

    with tqdm(total=1) as bar:
        silent = bar.disable
    return {"vars": [os.environ.get(v) for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")],
            "tqdm": os.environ.get("TQDM_DISABLE"), "silent": silent,
            "blas": sorted({p["num_threads"] for p in threadpool_info()})}


def _grid(n: int = 5) -> list[dict]:
    return [{"x": x, "seed": 10 + x} for x in range(n)]


def test_spec_key_is_stable_and_order_free():
    assert spec_key({"a": 1, "b": [1, 2]}) == spec_key({"b": [1, 2], "a": 1})
    assert spec_key({"a": 1, "b": (1, 2)}) == spec_key({"a": 1, "b": [1, 2]})
    assert spec_key({"a": 1}) != spec_key({"a": 2})
    key = spec_key({"a": 1})
    assert len(key) == 12 and int(key, 16) >= 0


def test_results_come_back_in_spec_order_as_plain_json():
    specs = _grid()
    out = run_sweep(specs, _late_first, jobs=2)
    assert [o["spec"] for o in out] == specs
    assert [o["key"] for o in out] == [spec_key(s) for s in specs]
    assert [o["result"]["square"] for o in out] == [0, 1, 4, 9, 16]
    assert out[2]["result"]["pair"] == [2, 12]  # JSON round trip: tuples read back as lists, as from disk


def test_jobs_1_and_jobs_2_give_identical_results():
    specs = _grid(6)
    assert run_sweep(specs, _seeded, jobs=1) == run_sweep(specs, _seeded, jobs=2)


def test_pool_workers_use_one_blas_thread_and_no_progress_bars():
    for out in run_sweep(_grid(2), _environment, jobs=2):
        assert out["result"] == {"vars": ["1", "1", "1"], "tqdm": "1", "silent": True, "blas": [1]}


def test_resume_runs_only_missing_specs(tmp_path):
    CALLS.clear()
    first = run_sweep(_grid(3), _counted, runs=tmp_path, jobs=1)
    assert len(CALLS) == 3
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == sorted(f"{o['key']}.json" for o in first)
    CALLS.clear()
    again = run_sweep(_grid(5), _counted, runs=tmp_path, jobs=1)
    assert [c["x"] for c in CALLS] == [3, 4]  # the three finished runs were loaded, not rerun
    assert again[:3] == first
    assert again == run_sweep(_grid(5), _seeded, jobs=1)
    CALLS.clear()
    run_sweep(_grid(5), _counted, runs=tmp_path, jobs=1)
    assert CALLS == []


def test_identical_specs_run_once():
    CALLS.clear()
    out = run_sweep([{"x": 1, "seed": 0}, {"x": 1, "seed": 0}], _counted, jobs=1)
    assert len(CALLS) == 1 and out[0] == out[1]


def test_a_file_with_another_spec_is_an_error_naming_it(tmp_path):
    out = run_sweep(_grid(2), _seeded, runs=tmp_path, jobs=1)
    path = tmp_path / "runs" / f"{out[0]['key']}.json"
    saved = json.loads(path.read_text())
    saved["spec"]["x"] = 99
    path.write_text(json.dumps(saved))
    with pytest.raises(ValueError, match=out[0]["key"]):
        run_sweep(_grid(2), _seeded, runs=tmp_path, jobs=1)


def test_a_failing_run_raises_one_error_naming_it_and_keeps_finished_runs(tmp_path):
    with pytest.raises(SweepError, match=r'"x": 3') as info:
        run_sweep(_grid(6), _fails_on_3, runs=tmp_path, jobs=1)
    assert isinstance(info.value.__cause__, ValueError)
    assert isinstance(info.value, ValueError)  # a ValueError in a run stays a ValueError (one-line CLI errors)
    assert info.value.spec == {"x": 3, "seed": 13}
    saved = {json.loads(p.read_text())["spec"]["x"] for p in (tmp_path / "runs").iterdir()}
    assert saved == {0, 1, 2}  # in one process the runs after the failure never start
    CALLS.clear()
    run_sweep(_grid(6), _counted, runs=tmp_path, jobs=1)
    assert [c["x"] for c in CALLS] == [3, 4, 5]


def test_a_bug_in_a_run_is_a_sweep_error_but_not_a_value_error():
    with pytest.raises(SweepError, match="KeyError") as info:
        run_sweep(_grid(1), _breaks, jobs=1)
    assert not isinstance(info.value, ValueError) and isinstance(info.value.__cause__, KeyError)


def test_a_failing_run_in_a_pool_keeps_the_runs_that_finished(tmp_path):
    with pytest.raises(SweepError, match=r'"x": 3') as info:
        run_sweep(_grid(6), _fails_on_3, runs=tmp_path, jobs=2)
    assert isinstance(info.value.__cause__, ValueError)
    for path in (tmp_path / "runs").iterdir():
        saved = json.loads(path.read_text())
        assert saved["spec"]["x"] != 3 and saved["result"] == json.loads(json.dumps(_seeded(saved["spec"])))
    assert run_sweep(_grid(6), _seeded, runs=tmp_path, jobs=2) == run_sweep(_grid(6), _seeded, jobs=1)


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="jobs"):
        run_sweep(_grid(1), _seeded, jobs=0)
    with pytest.raises(TypeError, match="JSON-able"):
        run_sweep([{"x": object()}], _seeded, jobs=1)
    with pytest.raises(TypeError, match="must be a dict"):
        run_sweep([[1, 2]], _seeded, jobs=1)


def test_a_dask_cluster_executor_gives_the_same_results():
    distributed = pytest.importorskip("distributed")
    specs = _grid(4)
    with (distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                   dashboard_address=None) as cluster,
          distributed.Client(cluster) as client):
        out = run_sweep(specs, _seeded, executor=client.get_executor())
    assert out == run_sweep(specs, _seeded, jobs=1)


def _interrupts_on_3(spec: dict) -> dict:
    if spec["x"] == 3:
        raise KeyboardInterrupt
    return _seeded(spec)


def test_ctrl_c_says_how_many_runs_finished_and_where_they_are_cached(tmp_path):
    from minilora.experiments.sweep import SweepInterrupted

    with pytest.raises(SweepInterrupted) as info:
        run_sweep(_grid(6), _interrupts_on_3, runs=tmp_path)
    assert (info.value.finished, info.value.total, info.value.runs) == (3, 6, tmp_path)
    assert isinstance(info.value, KeyboardInterrupt) and "3 of 6 runs finished" in str(info.value)
    assert len(list((tmp_path / "runs").glob("*.json"))) == 3  # kept: the same sweep again computes only the rest


def test_an_unwritable_cache_is_refused_before_any_run(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="run cache .* is a file"):
        run_sweep(_grid(2), lambda s: pytest.fail("ran despite an unwritable cache"), runs=tmp_path / "file")


_SLOW_SWEEP = '''
import sys, time
from pathlib import Path

def run_one(spec):
    if spec["x"] >= 2:
        time.sleep(30)  # the sweep is stopped while these run
    return {"x": spec["x"]}

if __name__ == "__main__":
    from minilora.experiments.sweep import SweepInterrupted, run_sweep
    sys.path.insert(0, str(Path(__file__).parent))
    from slow_sweep import run_one as picklable_run_one
    try:
        run_sweep([{"x": i} for i in range(6)], picklable_run_one, runs=sys.argv[1], jobs=int(sys.argv[2]))
    except SweepInterrupted as stop:
        print(stop.signal, stop.finished, stop.total, flush=True)
        sys.exit(128 + stop.signal)
'''


@pytest.mark.parametrize("jobs", [1, 2])
def test_sigterm_stops_a_sweep_like_ctrl_c_and_keeps_the_finished_runs(tmp_path, jobs):
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "slow_sweep.py"
    script.write_text(_SLOW_SWEEP)
    cache = tmp_path / "cache"
    child = subprocess.Popen([sys.executable, str(script), str(cache), str(jobs)], stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while len(list((cache / "runs").glob("*.json"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # the slow runs have started (or, at jobs=1, the first of them)
    child.send_signal(signal.SIGTERM)
    out, _ = child.communicate(timeout=60)
    assert child.returncode == 128 + signal.SIGTERM
    assert out.split() == ["15", "2", "6"]  # signal, finished (runs 0 and 1), total
    assert len(list((cache / "runs").glob("*.json"))) == 2
