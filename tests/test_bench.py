"""Smoke tests of the benchmark: a tiny model runs a few steps and every number comes back sensible."""

from __future__ import annotations

import importlib.util
import json

import pytest

from minilora.bench import steps as bench
from minilora.cli import main
from minilora.models import GPTConfig

TINY = bench.BenchConfig("test-tiny", GPTConfig(vocab_size=16, block_size=8, n_layer=1, n_head=2, n_embd=16),
                         batch_size=2)
KEYS = {"config", "method", "ms_per_step", "gflops", "flops_per_step", "peak_step_mb", "state_mb",
        "parameters", "trainable_parameters", "first_loss", "torch_ms_per_step", "ratio"}


def _check_row(row: dict, method: str) -> None:
    assert KEYS <= set(row)
    assert row["config"] == "test-tiny" and row["method"] == method
    assert row["steps"] == 2
    for key in ("ms_per_step", "gflops", "flops_per_step", "peak_step_mb", "state_mb", "first_loss"):
        assert row[key] > 0, key


def test_full_step_without_torch():
    (row,) = bench.run_benchmarks([TINY], ["full"], steps=2, untimed_steps=1, torch=False)
    _check_row(row, "full")
    assert row["trainable_parameters"] == row["parameters"]
    assert row["torch_ms_per_step"] is None and row["ratio"] is None


def test_step_flops_formula():
    cfg = TINY.model
    n = 12 * 16 * 16 + 16 * 16  # L·12·C² + C·V
    tokens = 2 * 8
    assert bench.step_flops(cfg, 2, 8) == tokens * (6 * n + 12 * 1 * 8 * 16)
    assert bench.step_flops(cfg, 2, 8, adapter_weights=10) == tokens * (4 * (n + 10) + 2 * 10 + 12 * 8 * 16)


def test_torch_twin_matches_minilora():
    pytest.importorskip("torch")
    (row,) = bench.run_benchmarks([TINY], ["full"], steps=2, untimed_steps=1, torch=True)
    _check_row(row, "full")
    assert row["torch_ms_per_step"] > 0 and row["ratio"] > 0
    assert row["first_loss_diff"] < 1e-4
    assert row["torch_state_mb"] == pytest.approx(row["state_mb"], rel=1e-2)  # torch also keeps a step tensor


def test_lora_method_trains_fewer_parameters():
    torch_ok = importlib.util.find_spec("torch") is not None
    (row,) = bench.run_benchmarks([TINY], ["lora"], steps=2, untimed_steps=1, torch=torch_ok)
    _check_row(row, "lora")
    assert 0 < row["trainable_parameters"] < row["parameters"]
    if torch_ok:
        assert row["first_loss_diff"] < 1e-4


def test_table_and_errors(capsys):
    (row,) = bench.run_benchmarks([TINY], ["full"], steps=2, untimed_steps=0, torch=False)
    table = bench.format_table([row])
    assert "test-tiny" in table and "ms minilora" in table
    assert json.loads(json.dumps(row))["method"] == "full"  # results are JSON-serialisable
    with pytest.raises(ValueError, match="unknown method"):
        bench.run_benchmarks([TINY], ["nope"], torch=False)
    assert main(["bench", "--configs", "nope", "--threads", "0", "--no-torch"]) == 2
    assert "unknown config" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--steps", "0"], "--steps"),
    (["--untimed-steps", "-1"], "--untimed-steps"),
    (["--out", "."], "is a folder"),
    (["--out", "a-file/out.json"], "is a file, not a folder"),
])
def test_bad_settings_are_refused_before_any_step(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-file").write_text("not a folder")
    monkeypatch.setattr(bench, "run_benchmarks", lambda *a, **k: pytest.fail("benchmarked despite a bad setting"))
    assert main(["bench", *argv, "--threads", "0", "--no-torch"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_the_printed_table_ends_with_its_legend_and_the_gpu_line(monkeypatch, capsys):
    from minilora import backend

    (row,) = bench.run_benchmarks([TINY], ["full"], steps=1, untimed_steps=0, torch=False)
    monkeypatch.setattr(bench, "run_benchmarks", lambda *a, **k: [row])
    monkeypatch.setattr(bench, "matmul_reference", list)
    assert main(["bench", "--threads", "0", "--no-torch"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert "test-tiny" in lines[-3] and lines[-2].startswith("columns: median ms per training step")
    assert lines[-1].startswith("a GPU was found" if backend.cuda_available() else "no GPU found")


def test_avx2_kernels_set_every_library_s_variable_and_rerun_the_command(monkeypatch):
    from minilora.cli import bench as bench_cli

    assert set(bench_cli.KERNEL_VARS["avx2"]) == set(bench.KERNEL_VARIABLES)  # what the table's environment records
    assert bench_cli.bench_environment(0, "native") == {}
    wanted = bench_cli.bench_environment(1, "avx2")
    assert wanted["OPENBLAS_CORETYPE"] == "Haswell" and wanted["ATEN_CPU_CAPABILITY"] == "avx2"
    assert all(wanted[k] == "1" for k in bench_cli.THREAD_VARS)
    for name in (*bench_cli.THREAD_VARS, *bench.KERNEL_VARIABLES, "MINILORA_BENCH_REEXEC"):
        monkeypatch.delenv(name, raising=False)
    reruns = []
    monkeypatch.setattr(bench_cli.os, "execve", lambda path, argv, env: reruns.append((argv, env)) or 0 / 0)
    with pytest.raises(ZeroDivisionError):  # execve never returns; the stand-in stops the command instead
        main(["bench", "--kernels", "avx2", "--no-torch"])
    ((argv, env),) = reruns
    assert argv[-3:] == ["--kernels", "avx2", "--no-torch"]
    assert all(env[k] == v for k, v in wanted.items())


def test_an_unknown_kernel_family_is_refused_in_one_line(capsys):
    assert main(["bench", "--kernels", "avx7", "--threads", "0", "--no-torch"]) == 2
    err = capsys.readouterr().err
    assert "--kernels" in err and "avx2" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("machine, flags, message", [
    ("arm64", "fp asimd", "needs an x86-64 CPU, this one is arm64"),
    ("x86_64", "fpu sse4_2 avx", "needs a CPU with AVX2"),
])
def test_avx2_kernels_are_refused_where_the_cpu_cannot_run_them(machine, flags, message):
    from minilora.cli import bench as bench_cli

    with pytest.raises(ValueError, match=message) as err:
        bench_cli.check_kernels("avx2", machine=machine, cpu_flags=flags)
    assert str(err.value).startswith("argument --kernels: avx2") and "\n" not in str(err.value)
    bench_cli.check_kernels("avx2", machine="x86_64", cpu_flags="fpu avx avx2 fma")  # an AVX2 CPU passes
    bench_cli.check_kernels("native", machine=machine, cpu_flags=flags)  # native asks nothing of the CPU
