"""Smoke tests of the subspace benchmarks: projection timings and the subspace-vs-full step of the skills model."""

from __future__ import annotations

from minilora.bench import subspace
from minilora.cli import main


def test_projection_times_rows():
    rows = subspace.projection_times(sizes=[(1000, 20), (100_000, 20_000)], repeats=2)
    assert [(r["projection"], r["D"]) for r in rows] == [("fastfood", 1000), ("sparse", 1000), ("dense", 1000),
                                                         ("fastfood", 100_000), ("sparse", 100_000), ("dense", 100_000)]
    for r in rows[:-1]:
        assert r["matvec_ms"] > 0 and r["rmatvec_ms"] > 0 and r["total_ms"] == r["matvec_ms"] + r["rmatvec_ms"]
        assert r["rfft_ms"] > 0 and r["vs_rfft"] == r["total_ms"] / r["rfft_ms"]
    assert rows[0]["rfft_ms"] == rows[1]["rfft_ms"]  # one rfft of 2^10 floats per size, the yardstick of its rows
    assert "7.5 GiB" in rows[-1]["skipped"]  # 10^5 × 2·10^4 float32 does not fit
    table = subspace.format_projection_table(rows)
    assert "dense P would take" in table and "vs rfft" in table and f"{rows[0]['vs_rfft']:.2f}×" in table


def test_subspace_step_against_full_fine_tuning():
    row = subspace.subspace_step(d=100, batch_size=4, steps=2, warmup=1)
    assert row["D"] == 110_720 and row["d"] == 100 and row["steps"] == 2
    assert row["full_ms"] > 0 and row["subspace_ms"] > 0 and row["ratio"] == row["subspace_ms"] / row["full_ms"]
    assert "ratio" in subspace.format_step_table(row) and not row["said"]
    said = subspace.subspace_step(d=100, batch_size=4, steps=1, warmup=0, said=True)
    assert said["said"] and "SAID d = 100" in subspace.format_step_table(said)


def test_the_command_line_runs_the_subspace_suite(monkeypatch, capsys):
    monkeypatch.setattr(subspace, "projection_times", list)
    monkeypatch.setattr(subspace, "subspace_step", lambda steps, warmup: {**FAKE_STEP, "steps": steps})
    assert main(["bench", "--subspace", "--steps", "3", "--threads", "0"]) == 0
    assert "SAID" not in capsys.readouterr().out


FAKE_STEP = {"model": "skills", "D": 10, "d": 2, "projection": "fastfood", "said": False, "batch_size": 1, "seq_len": 1,
             "full_ms": 1.0, "subspace_ms": 1.0, "ratio": 1.0, "cpu_ratio": 1.0}
