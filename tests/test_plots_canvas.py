"""No figure's title, label, legend or tick leaves the canvas: every figure the project draws, checked."""

import json
import shutil
from pathlib import Path

import pytest
from test_plots import fake_result

from minilora.plots import (
    common,
    compare,
    draw_figures,
    family,
    intrinsic,
    latency,
    lora_paper,
    plot_compare,
)

FIGURES = Path(__file__).resolve().parent.parent / "figures"


@pytest.fixture
def drawn(monkeypatch):
    """name → the texts outside the canvas of every figure saved while the test runs."""
    seen = {}

    def checked_save(fig, path):
        out = common.save_png(fig, path)
        seen[Path(path).name] = common.outside_canvas(fig)
        return out

    for module in (compare, intrinsic, lora_paper, family, latency):
        monkeypatch.setattr(module, "save_png", checked_save)
    return seen


def test_every_shipped_figure_keeps_its_texts_inside(tmp_path, drawn):
    for source in FIGURES.glob("*.json"):
        shutil.copy(source, tmp_path)
    draw_figures(tmp_path)
    assert {"full-vs-lora.png", "lora-amplification.png", "intrinsic-budget.png"} <= set(drawn)
    assert ("latency.png" in drawn) == (FIGURES / "latency.json").is_file()  # drawn when its JSON is shipped
    assert {name: texts for name, texts in drawn.items() if texts} == {}


def fake_latency_result(batches=(1, 16, 32), seq_lens=(16, 128)):
    """A ``latency.json`` of ``minilora latency``'s full plan, with made-up times (no timing in a test)."""
    from minilora.experiments.latency import VARIANTS

    rows = [{"variant": v, "batch": b, "seq_len": t, "median_ms": 1.0 + i + b * t / 100,
             "paired_overhead_pct": 5.0 * i, "paired_overhead_q1": 4.0 * i, "paired_overhead_q3": 6.0 * i}
            for i, v in enumerate(VARIANTS) for b in batches for t in seq_lens]
    return {"experiment": "latency", "settings": {"model": "bench-small", "repeats": 25}, "rows": rows}


def test_figures_draws_the_latency_figure_when_its_json_is_there(tmp_path, drawn):
    for source in FIGURES.glob("compare-*.json"):
        shutil.copy(source, tmp_path)
    assert "latency.png" not in {p.name for p in draw_figures(tmp_path)}  # no latency.json: skipped
    (tmp_path / "latency.json").write_text(json.dumps(fake_latency_result()))
    assert tmp_path / "latency.png" in draw_figures(tmp_path)
    assert drawn["latency.png"] == []


def test_a_one_task_compare_figure_keeps_its_title_inside(tmp_path, drawn):
    """The demo's and one compare folder's full-vs-lora.png: one 4-inch column under a long title."""
    plot_compare([fake_result("reverse-shift")], tmp_path / "full-vs-lora.png")
    assert drawn["full-vs-lora.png"] == []


def test_the_lora_paper_figures_of_small_results_keep_their_texts_inside(tmp_path, drawn):
    from lora_paper_fakes import fake_results

    from minilora.experiments.lora_paper import EXPERIMENTS

    for name, result in fake_results().items():
        (tmp_path / EXPERIMENTS[name]).write_text(json.dumps(result))
    lora_paper.draw_lora_paper_figures(tmp_path)
    assert len(drawn) == 4 and {name: texts for name, texts in drawn.items() if texts} == {}


def test_the_family_figures_keep_their_texts_inside(tmp_path, drawn):
    from dataclasses import replace

    from family_fakes import TINY, fake_family_result

    (tmp_path / "lora-family.json").write_text(json.dumps(fake_family_result()))
    one_task = fake_family_result(replace(TINY, tasks=(("sort", "skills"),)))
    family.draw_family_figures(tmp_path)
    assert len(drawn) == 3 and {name: texts for name, texts in drawn.items() if texts} == {}
    drawn.clear()
    (tmp_path / "lora-family.json").write_text(json.dumps(one_task))  # one narrow panel under the long titles
    family.draw_family_figures(tmp_path)
    assert len(drawn) == 3 and {name: texts for name, texts in drawn.items() if texts} == {}


def test_the_check_sees_a_title_that_leaves_the_canvas():
    fig = common.new_figure((2, 2))
    fig.suptitle("a title far too long for a figure two inches wide, on both sides of it")
    assert common.outside_canvas(fig)
    common.fit_texts(fig)
    assert common.outside_canvas(fig) == []


def test_the_intrinsic_trends_show_the_noise_floor_inside_the_canvas(tmp_path, drawn, monkeypatch):
    """A shipped trend result given a noise floor and a computed trend: its figure says whether the trend holds
    beyond the floor, under the title, and the noise-floor figure draws; no text leaves the canvas."""
    from minilora.experiments.d90 import noise_floor, trend

    result = json.loads((FIGURES / "intrinsic-pretraining.json").read_text())
    floor = {**noise_floor({"0": 1000.0, "1": 1700.0}), "pretrain_seeds": [0, 1]}
    result["noise_floor"] = floor
    result["trend"] = trend([f"step {r['step']}" for r in result["rows"]], [r["d90"] for r in result["rows"]],
                            floor["ratio"])
    (tmp_path / "intrinsic-pretraining.json").write_text(json.dumps(result))
    replicas = {**result, "experiment": "intrinsic-noise-floor", "trend": None,
                "rows": [{**result["rows"][-1], "pretrain_seed": 0}, {**result["rows"][-1], "pretrain_seed": 1}]}
    (tmp_path / "intrinsic-noise-floor.json").write_text(json.dumps(replicas))
    titles = []
    with_verdict = intrinsic._with_verdict
    monkeypatch.setattr(intrinsic, "_with_verdict", lambda *a: titles.append(with_verdict(*a)) or titles[-1])
    intrinsic.draw_intrinsic_figures(tmp_path)
    assert {"intrinsic-pretraining.png", "intrinsic-noise-floor.png"} <= set(drawn)
    assert any("vs noise floor 1.70x" in t and "beyond it" in t for t in titles)
    assert any("noise floor = max / min d90 across pretraining seeds: 1.70x" in t for t in titles)
    assert {name: texts for name, texts in drawn.items() if texts} == {}
