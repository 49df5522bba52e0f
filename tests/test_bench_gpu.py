"""The GPU benchmark: the same steps on a device and on NumPy (the strict test device stands in for CuPy here),
and one clear line when there is no GPU."""

from __future__ import annotations

import pytest

from minilora import backend
from minilora.bench import gpu
from minilora.bench.steps import BenchConfig
from minilora.cli import main
from minilora.models import GPTConfig

TINY = BenchConfig("test-tiny", GPTConfig(vocab_size=16, block_size=8, n_layer=1, n_head=2, n_embd=16), batch_size=2)


def test_the_same_steps_on_a_device_and_on_numpy(device):
    report = gpu.device_report([TINY], ["full", "lora"], steps=2, untimed_steps=1, device=device)
    assert report["available"] and [r["method"] for r in report["rows"]] == ["full", "lora"]
    for row in report["rows"]:
        assert row["cpu_ms"] > 0 and row["device_ms"] > 0
        assert row["speedup"] == pytest.approx(row["cpu_ms"] / row["device_ms"])
        # the same weights, batches and arithmetic on two backends: the same first loss
        assert row["first_loss_device"] == pytest.approx(row["first_loss_cpu"], rel=1e-5)
    table = gpu.format_device_report(report)
    assert "speed-up" in table and "test-tiny" in table


@pytest.mark.skipif(backend.cuda_available(), reason="this machine has a GPU")
def test_no_gpu_is_said_in_one_line_and_nothing_is_timed(capsys):
    report = gpu.device_report(["bench-tiny"], ["full"])
    assert report == {"device": "cuda", "available": False, "message": backend.cuda_unavailable_message(), "rows": []}
    assert main(["bench", "--gpu", "--threads", "0"]) == 0
    out = capsys.readouterr().out.strip()
    assert out == f"no GPU found, so the GPU path was not measured: {backend.cuda_unavailable_message()}"


def test_unknown_config_is_refused():
    with pytest.raises(ValueError, match="unknown config"):
        gpu.device_report(["nope"], ["full"], device="cpu")
