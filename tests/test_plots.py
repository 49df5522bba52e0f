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
    with pytest.raises(ValueError, match="not a `minilora compare` result"):
        load_compare(bad)
    with pytest.raises(ValueError, match="cannot read"):
        load_compare(tmp_path / "missing.json")


def test_missing_results_name_the_rerun_command(tmp_path):
    with pytest.raises(ValueError, match="minilora figures --rerun"):
        draw_figures(tmp_path)


def test_shipped_results_redraw_the_shipped_figure(tmp_path, capsys):
    for task, _ in FIGURE_RUNS:
        shutil.copy(FIGURES / f"compare-{task}.json", tmp_path)
    assert main(["figures", "--dir", str(tmp_path)]) == 0
    assert "wrote" in capsys.readouterr().out
    import matplotlib.image

    redrawn = matplotlib.image.imread(tmp_path / "full-vs-lora.png")
    shipped = matplotlib.image.imread(FIGURES / "full-vs-lora.png")
    assert redrawn.shape == shipped.shape
    assert np.abs(redrawn - shipped).mean() < 0.01  # the same picture (fonts may differ by a few pixels)
