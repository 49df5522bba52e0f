"""Figures are drawn from JSON results alone (no retraining), atomically, with clear errors."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from minilora.cli import main
from minilora.plots import FIGURE_RUNS, draw_figures, load_compare, plot_compare, smooth

FIGURES = Path(__file__).resolve().parent.parent / "figures"


def fake_result(task, metric="accuracy"):
    rows = [{"method": "full", "rank": None, "metric": metric, "metric_value": 1.0, "trainable_pct": 100.0,
             "losses": list(np.linspace(2.0, 0.1, 40))}]
    rows += [{"method": "lora", "rank": r, "metric": metric, "metric_value": 0.2 * r, "trainable_pct": 1.5 * r,
              "losses": list(np.linspace(2.0, 0.5 / r, 40))} for r in (1, 2, 4)]
    return {"experiment": "compare", "settings": {"task": task}, "rows": rows}


def test_smooth_is_a_trailing_moving_average():
    np.testing.assert_allclose(smooth([1.0, 3.0, 5.0, 7.0], window=2), [1.0, 2.0, 4.0, 6.0])


def test_plot_compare_writes_a_png_and_no_temporary_file(tmp_path):
    out = plot_compare([fake_result("a"), fake_result("b", "bits_per_char")], tmp_path / "f.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["f.png"]


def test_load_compare_rejects_other_files(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text(json.dumps({"experiment": "bench"}))
    with pytest.raises(ValueError, match="holds the result of experiment 'bench', expected 'compare'"):
        load_compare(bad)
    with pytest.raises(ValueError, match="no result file"):
        load_compare(tmp_path / "missing.json")


def test_missing_results_name_the_rerun_command(tmp_path):
    with pytest.raises(ValueError, match="minilora figures --rerun"):
        draw_figures(tmp_path)


def test_shipped_results_redraw_the_shipped_figure(tmp_path, capsys):
    for task, _ in FIGURE_RUNS:
        shutil.copy(FIGURES / f"compare-{task}.json", tmp_path)
    assert main(["figures", "--out", str(tmp_path)]) == 0
    assert "wrote" in capsys.readouterr().out
    import matplotlib.image

    redrawn = matplotlib.image.imread(tmp_path / "full-vs-lora.png")
    shipped = matplotlib.image.imread(FIGURES / "full-vs-lora.png")
    assert redrawn.shape == shipped.shape
    assert np.abs(redrawn - shipped).mean() < 0.01  # the same picture (fonts may differ by a few pixels)


def _write_lora_paper_results(folder):
    from lora_paper_fakes import fake_results

    from minilora.experiments.lora_paper import EXPERIMENTS

    for name, result in fake_results().items():
        (folder / EXPERIMENTS[name]).write_text(json.dumps(result))


def test_lora_paper_figures_are_drawn_from_their_json(tmp_path):
    from minilora.plots import LORA_PAPER_FIGURES, draw_lora_paper_figures

    _write_lora_paper_results(tmp_path)
    paths = draw_lora_paper_figures(tmp_path)
    assert sorted(p.name for p in paths) == sorted(f"{name}.png" for name in LORA_PAPER_FIGURES)
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in paths)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_lora_paper_figures_skip_missing_results_and_name_a_corrupt_file(tmp_path):
    from minilora.plots import draw_lora_paper_figures

    assert draw_lora_paper_figures(tmp_path) == []
    (tmp_path / "lora-budget.json").write_text("{")
    with pytest.raises(ValueError, match="lora-budget.json"):
        draw_lora_paper_figures(tmp_path)


def test_similarity_heatmap_marks_the_cells_not_above_chance():
    from matplotlib.figure import Figure

    from minilora.plots.lora_paper import _phi_axes

    phi = [[0.5, 0.15, 0.9], [0.02, 0.6, 0.31]]
    chance = [[max(i, j) / 10 for j in (1, 2, 3)] for i in (1, 2)]
    excess = (np.array(phi) - np.array(chance)) / (1 - np.array(chance))
    block = {"mean": phi, "chance": chance, "above_chance": excess.tolist(),
             "top_n": {"size": 2, "mean": 0.6, "std": 0.1, "chance": 0.2, "above_chance": {"mean": 0.5}}}
    fig = Figure()
    ax = fig.subplots()
    _phi_axes(fig, ax, block, "t", "j", "i")
    np.testing.assert_allclose(ax.images[0].get_array(), excess)  # the colours are φ above chance, not φ
    assert "above chance 0.50" in ax.get_title()
    dots = ax.lines[0]
    marked = sorted(zip(dots.get_ydata().tolist(), dots.get_xdata().tolist()))
    assert marked == [(1, 2), (2, 1)]  # (i, j) of 0.15 <= 0.2 and 0.02 <= 0.2; 0.31 > 0.3 is above chance


def test_family_figures_are_drawn_from_their_json_and_skipped_without_it(tmp_path):
    from family_fakes import fake_family_result

    from minilora.plots import FAMILY_FIGURES, draw_family_figures

    assert draw_family_figures(tmp_path) == []
    (tmp_path / "lora-family.json").write_text(json.dumps(fake_family_result()))
    paths = draw_family_figures(tmp_path)
    assert [p.name for p in paths] == list(FAMILY_FIGURES) == [
        "lora-family.png", "lora-family-lr-grid.png", "lora-family-forgetting.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in paths)
    (tmp_path / "lora-family.json").write_text(json.dumps({"experiment": "rank-sweep"}))
    with pytest.raises(ValueError, match="expected 'lora-family'"):
        draw_family_figures(tmp_path)


def test_the_family_figures_show_every_seed_each_chosen_lr_and_the_forgetting_axes(monkeypatch):
    from family_fakes import fake_family_result
    from matplotlib.figure import Figure

    from minilora.plots import family

    result = fake_family_result()
    figs = []
    monkeypatch.setattr(family, "save_png", lambda fig, path: figs.append(fig) or Path(path))  # keep, write nothing
    family.plot_family(result, "a.png")
    family.plot_family_lr_grid(result, "b.png")
    family.plot_family_forgetting(result, "c.png")
    metric, grid, forgetting = figs
    assert all(isinstance(f, Figure) for f in figs)
    ax = metric.axes[0]
    assert ax.get_xscale() == "log" and ax.get_title() == "reverse-shift"
    dots = [line for line in ax.lines if line.get_linestyle() == "None" and line.get_marker() == "."]
    assert sorted(y for line in dots for y in line.get_ydata()) == pytest.approx(sorted(
        v for r in result["rows"] if r["task"] == "reverse-shift" and r["kind"] == "method"
        for v in r["test"]["values"]))
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "full (lr 0.001, grid edge)" in labels and "lora (lr 0.01)" in labels
    heat = grid.axes[0].images[0].get_array()
    assert heat.shape == (2, 3) and heat[0, 1] == 0.9  # r=1 at lr 1e-2: validation's best
    curves = next(ax for ax in grid.axes if ax.get_xscale() == "log")  # the first task's validation-vs-lr panel
    stars = [line for line in curves.lines if line.get_marker() == "*"]
    assert stars
    assert len(forgetting.axes) == 1 and "retained" in forgetting.axes[0].get_ylabel()  # names has nothing to forget
    paths = {line.get_label(): line for line in forgetting.axes[0].lines if line.get_linestyle() == "--"}
    assert sorted(paths) == ["full: each lr (seed 0)", "lora: each lr (seed 0)"]
    full_path = [g for g in result["lr_grid"] if g["task"] == "reverse-shift" and g["arm"] == "full"
                 and g["kind"] == "method"]
    assert list(paths["full: each lr (seed 0)"].get_ydata()) == pytest.approx([g["retained"] for g in full_path])
