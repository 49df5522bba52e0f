"""Tutorial notebooks: each jupytext source (py:percent) and its .ipynb hold the same cells.

The notebooks themselves are executed by nbmake as part of the suite (``--nbmake`` in pyproject.toml).
"""

from pathlib import Path

import jupytext
import pytest

TUTORIALS = Path(__file__).resolve().parent.parent / "tutorials"
SOURCES = sorted(TUTORIALS.glob("[0-9][0-9]_*.py"))


def test_there_are_tutorials():
    assert SOURCES, f"no tutorials found in {TUTORIALS}"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_notebook_matches_its_source(source):
    notebook = source.with_suffix(".ipynb")
    assert notebook.is_file(), f"{notebook.name} is missing: run `jupytext --to ipynb {source.name}` in tutorials/"
    from_py = [(c.cell_type, c.source.strip()) for c in jupytext.read(source).cells]
    from_ipynb = [(c.cell_type, c.source.strip()) for c in jupytext.read(notebook).cells]
    assert from_py == from_ipynb, f"{notebook.name} and {source.name} differ: run `jupytext --sync {source.name}`"
