"""The LoRA paper's Table 1 (experiments/latency.py, plots/latency.py, ``minilora latency``): the six variants
compute what they should, the summary statistics, the JSON, the table, the figure and the command."""

from __future__ import annotations

import json

import numpy as np
import pytest

import minilora as ml
from minilora.cli import main
from minilora.experiments import latency
from minilora.experiments.results import LATENCY_FILE, LATENCY_PNG
from minilora.models import GPTConfig
from minilora.plots.latency import draw_latency_figure

CFG = GPTConfig(vocab_size=16, block_size=8, n_layer=2, n_head=2, n_embd=16)


def test_the_variants_are_one_base_with_each_method():
    models = latency.build_variants(CFG, seed=0)
    assert list(models) == list(latency.VARIANTS)
    idx = np.random.default_rng(0).integers(0, 16, (2, 8))
    with ml.no_grad():
        out = {name: m(idx)[0].numpy() for name, m in models.items()}
    np.testing.assert_allclose(out["lora-merged"], out["lora-unmerged"], rtol=1e-4, atol=1e-5)  # merging is exact
    for name in ("lora-unmerged", "adapter-houlsby", "adapter-lin", "prefix"):
        assert not np.allclose(out[name], out["base"]), name  # each does work (B, W_up drawn non-zero)
    assert models["lora-merged"].blocks[0].attn.q_proj.merged
    assert models["prefix"].blocks[1].attn.prefix is not None and models["base"].blocks[1].attn.prefix is None


def test_rows_give_median_iqr_and_overhead_over_the_base():
    times = {"base": [0.010, 0.012, 0.011, 0.013], "adapter-lin": [0.011, 0.015, 0.0121, 0.0143]}
    rows = {r["variant"]: r for r in latency._rows(times, batch=4, seq_len=16)}
    base, lin = rows["base"], rows["adapter-lin"]
    assert (base["batch"], base["seq_len"]) == (4, 16)
    assert base["median_ms"] == pytest.approx(11.5) and base["overhead_pct"] == 0 and base["paired_overhead_pct"] == 0
    assert base["q1_ms"] == pytest.approx(10.75) and base["q3_ms"] == pytest.approx(12.25)
    assert base["iqr_ms"] == pytest.approx(1.5)
    assert lin["median_ms"] == pytest.approx(13.2) and lin["overhead_pct"] == pytest.approx(100 * (13.2 / 11.5 - 1))
    ratios = np.percentile([10, 25, 10, 10], [25, 50, 75])  # per round: 100 (t / t_base - 1)
    assert [lin["paired_overhead_q1"], lin["paired_overhead_pct"], lin["paired_overhead_q3"]] == pytest.approx(ratios)


def test_fast_run_writes_every_cell_the_table_and_the_figure(tmp_path):
    result = latency.run_latency(out=tmp_path, fast=True, repeats=2)
    saved = json.loads((tmp_path / LATENCY_FILE).read_text())
    assert saved["experiment"] == "latency" and saved["settings"]["repeats"] == 2
    cells = {(r["batch"], r["seq_len"]) for r in saved["rows"]}
    assert cells == {(b, t) for b in latency.FAST["batches"] for t in latency.FAST["seq_lens"]}
    assert len(saved["rows"]) == len(cells) * len(latency.VARIANTS)
    assert all(len(r["times_ms"]) == 2 and r["q1_ms"] <= r["median_ms"] <= r["q3_ms"] for r in saved["rows"])
    assert saved["params"]["lora-merged"]["added"] == saved["params"]["lora-unmerged"]["added"] > 0
    assert saved["params"]["base"]["added"] == 0 < saved["params"]["adapter-lin"]["added"]
    assert [c["seq_len"] for c in saved["prefix_cost"]] == list(latency.FAST["seq_lens"])
    table = latency.format_table(result).splitlines()
    assert table[0].split()[:3] == ["variant", "B=1", "T=4"] and len(table) == 2 + len(latency.VARIANTS)
    assert "%)" in table[3] and "%)" not in table[2]  # the base has no overhead column
    assert draw_latency_figure(tmp_path) == tmp_path / LATENCY_PNG and (tmp_path / LATENCY_PNG).stat().st_size > 0


def test_bad_arguments_are_one_line_errors():
    with pytest.raises(ValueError, match="repeats must be >= 1"):
        latency.measure_latency(CFG, [1], [4], repeats=0)
    with pytest.raises(ValueError, match="1 <= seq_len <= block_size=8"):
        latency.measure_latency(CFG, [1], [9], repeats=1)


def test_the_command_writes_json_and_png(tmp_path, capsys):
    assert main(["latency", "--fast", "--repeats", "1", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "adapter-houlsby" in out and "prefix p=8" in out and f"wrote {tmp_path}/latency.json" in out
    assert (tmp_path / LATENCY_FILE).is_file() and (tmp_path / LATENCY_PNG).is_file()
    assert main(["latency", "--repeats", "0"]) == 2
