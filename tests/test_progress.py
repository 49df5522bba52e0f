"""Progress bars obey TQDM_DISABLE everywhere, also as Jupyter widgets (whose tqdm ignores the variable)."""

from __future__ import annotations

import pytest

from minilora import progress as progress_module


@pytest.mark.parametrize("value, disabled", [("1", True), ("true", True), ("0", False), ("", False)])
def test_the_variable_decides(monkeypatch, value, disabled):
    monkeypatch.setenv("TQDM_DISABLE", value)
    assert progress_module.progress_disabled() is disabled
    with progress_module.progress(range(3)) as bar, progress_module.tqdm(range(3)) as raw:
        # set: off; not set: tqdm's own default (which read the variable when tqdm was imported) is left alone
        assert bar.disable is (True if disabled else raw.disable)


def test_a_notebook_bar_is_off_too(monkeypatch):
    """tqdm.notebook turns a missing ``disable`` into False whatever the environment says: progress passes it."""
    notebook = pytest.importorskip("tqdm.notebook")
    pytest.importorskip("ipywidgets")
    monkeypatch.setattr(progress_module, "tqdm", notebook.tqdm)
    monkeypatch.setenv("TQDM_DISABLE", "1")
    with progress_module.progress(range(3), desc="train") as bar:
        assert bar.disable
    with notebook.tqdm(range(3), desc="train") as raw:  # what tqdm.auto gives in a notebook, left alone
        assert not raw.disable


def test_an_explicit_disable_wins(monkeypatch):
    monkeypatch.setenv("TQDM_DISABLE", "1")
    with progress_module.progress(range(3), disable=False) as bar:
        assert not bar.disable
