"""``--scheduler ADDRESS``: a sweep runs on a Dask cluster with the results of a local run, and a missing package or
an unreachable scheduler is one line."""

import json
import sys

import pytest

import minilora.cli.cluster
from minilora.cli import main

COMPARE = ["compare", "--task", "subtract", "--ranks", "1", "--steps", "2", "--batch-size", "4"]


def _results(folder):
    rows = json.loads((folder / "compare.json").read_text())["rows"]
    return [(r["run"], r["metric_value"], r["losses"]) for r in rows]


def test_a_sweep_on_a_local_cluster_gives_the_local_results(tmp_path, capsys):
    distributed = pytest.importorskip("distributed")
    assert main([*COMPARE, "--out", str(tmp_path / "here")]) == 0
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        assert main([*COMPARE, "--out", str(tmp_path / "there"), "--scheduler", cluster.scheduler_address]) == 0
        ran_there = list(cluster.scheduler.task_prefixes)  # the names of the functions the cluster ran
    assert ran_there and _results(tmp_path / "there") == _results(tmp_path / "here")


def test_an_unreachable_scheduler_is_one_line(tmp_path, monkeypatch, capsys):
    pytest.importorskip("distributed")
    monkeypatch.setattr(minilora.cli.cluster, "CONNECT_TIMEOUT", "1s")
    assert main([*COMPARE, "--out", str(tmp_path / "c"), "--scheduler", "tcp://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "--scheduler tcp://127.0.0.1:9: cannot reach a Dask scheduler there" in err


def test_without_distributed_the_error_names_the_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "distributed", None)  # `import distributed` now raises ImportError
    assert main(["lora-paper", "--fast", "--out", str(tmp_path), "--scheduler", "tcp://127.0.0.1:8786"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("minilora lora-paper: error: --scheduler needs Dask's distributed package: "
                   "pip install 'minilora[cluster]'")
    assert list(tmp_path.iterdir()) == []
