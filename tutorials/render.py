"""Render the tutorials: each ``NN_name.py`` (jupytext percent format) becomes ``NN_name.ipynb``, executed,
with outputs.

    python tutorials/render.py                  # every notebook, the real runs (MINILORA_FAST=0): about 11 minutes
    python tutorials/render.py 02_tiny_gpt      # some notebooks, by name
    python tutorials/render.py --fast           # the short runs CI executes (MINILORA_FAST=1)

What ``jupytext --sync`` and ``jupyter nbconvert --execute --inplace`` would do, in one step and one environment:
the kernel runs in ``tutorials/`` with ``TQDM_DISABLE=1`` (no progress bars, nor tqdm's warning, in the saved
outputs) and one BLAS thread unless ``OMP_NUM_THREADS`` is set (the timings the notebooks print are single-thread,
as in the README).
Cell ids are numbered, so re-rendering an unchanged notebook changes only what its outputs measured.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import jupytext
from nbclient import NotebookClient

TUTORIALS = Path(__file__).resolve().parent


def sources(names: list[str]) -> list[Path]:
    """The notebook sources to render: ``names`` (with or without ``.py``), or every ``NN_*.py``."""
    if not names:
        return sorted(TUTORIALS.glob("[0-9][0-9]_*.py"))
    paths = [TUTORIALS / (name if name.endswith(".py") else f"{name}.py") for name in names]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        known = ", ".join(p.stem for p in sorted(TUTORIALS.glob("[0-9][0-9]_*.py")))
        raise SystemExit(f"render: no tutorial source {', '.join(missing)} in {TUTORIALS}; expected one of: {known}")
    return paths


def render(source: Path, timeout: int) -> float:
    """Execute ``source`` as a notebook and write it beside it as ``.ipynb`` with its outputs; returns seconds."""
    notebook = jupytext.read(source)
    for number, cell in enumerate(notebook.cells):
        cell.id = f"cell-{number:02d}"
    start = time.perf_counter()
    NotebookClient(notebook, timeout=timeout, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(TUTORIALS)}}).execute()
    seconds = time.perf_counter() - start
    jupytext.write(notebook, source.with_suffix(".ipynb"))
    return seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="notebooks to render, e.g. 02_tiny_gpt (default: all)")
    parser.add_argument("--fast", action="store_true", help="MINILORA_FAST=1: the short runs CI executes")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds one cell may take (default 1800)")
    args = parser.parse_args(argv)
    os.environ["MINILORA_FAST"] = "1" if args.fast else "0"
    os.environ["TQDM_DISABLE"] = "1"
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    # tqdm.auto without ipywidgets, progress bars off anyway
    os.environ["PYTHONWARNINGS"] = "ignore:IProgress not found"
    for source in sources(args.names):
        seconds = render(source, args.timeout)
        print(f"{source.with_suffix('.ipynb').name}: executed in {seconds:.0f} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
