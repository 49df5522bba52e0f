"""The tutorial notebooks: sources and rendered notebooks agree, notebooks are rendered, exercises are checked.

The notebooks themselves are executed by nbmake as part of the suite (``--nbmake`` in pyproject.toml, with
``MINILORA_FAST=1`` in CI).  Here: each jupytext source (py:percent) and its .ipynb hold the same cells (outputs
ignored); each committed .ipynb holds its executed outputs; every exercise's check passes on the answer in
``tutorials/solutions/`` and fails, without raising, on the common mistakes listed there and on an unanswered one.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import re
import struct
import sys
from pathlib import Path
from types import ModuleType

import jupytext
import pytest

TUTORIALS = Path(__file__).resolve().parent.parent / "tutorials"
SOURCES = sorted(TUTORIALS.glob("[0-9][0-9]_*.py"))
MAX_NOTEBOOK_BYTES = 1_500_000  # rendered with outputs; PNGs at a modest dpi keep them well below
MAX_FIGURE_PX = 900  # course.show's 10 in at 80 dpi is 800 px; tight bounding boxes add a little

sys.path.insert(0, str(TUTORIALS))
import course  # noqa: E402
import render  # noqa: E402
from checks import EXERCISES, check, verdict  # noqa: E402  (tutorials/checks, beside the notebooks)


def _solutions(notebook: str) -> ModuleType:
    """The module tutorials/solutions/<notebook>_*.py, imported from its path."""
    paths = sorted((TUTORIALS / "solutions").glob(f"{notebook}_*.py"))
    assert len(paths) == 1, f"expected one solutions file for notebook {notebook}, found {[p.name for p in paths]}"
    spec = importlib.util.spec_from_file_location(f"solutions_{notebook}", paths[0])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _stored(source: Path) -> dict:
    return json.loads(source.with_suffix(".ipynb").read_text())


def _text(output: dict) -> str:
    text = output.get("text", output.get("data", {}).get("text/plain", ""))
    return "".join(text) if isinstance(text, list) else text


def test_there_are_tutorials():
    assert SOURCES, f"no tutorials found in {TUTORIALS}"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_notebook_matches_its_source(source):
    notebook = source.with_suffix(".ipynb")
    assert notebook.is_file(), f"{notebook.name} is missing: run `python tutorials/render.py {source.stem}`"
    from_py = [(c.cell_type, c.source.strip()) for c in jupytext.read(source).cells]
    from_ipynb = [(c.cell_type, c.source.strip()) for c in jupytext.read(notebook).cells]
    assert from_py == from_ipynb, (f"{notebook.name} and {source.name} differ: "
                                   f"run `python tutorials/render.py {source.stem}`")


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_notebook_is_rendered_with_outputs(source):
    """Every code cell was executed, none failed, there is at least one figure, and the file stays small."""
    cells = _stored(source)["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    unexecuted = [i for i, c in enumerate(code) if c["execution_count"] is None]
    assert not unexecuted, (f"{source.stem}: code cells {unexecuted} have no outputs; "
                            f"run `python tutorials/render.py {source.stem}`")
    errors = [o.get("ename") for c in code for o in c["outputs"] if o["output_type"] == "error"]
    assert not errors, f"{source.stem}: the rendered notebook holds errors {errors}"
    assert any("image/png" in o.get("data", {}) for c in code for o in c["outputs"]), f"{source.stem}: no figure"
    bars = [i for i, c in enumerate(code) for o in c["outputs"]
            if "application/vnd.jupyter.widget-view+json" in o.get("data", {}) or "it/s]" in _text(o)]
    assert not bars, f"{source.stem}: code cells {bars} stored progress bars; render with TQDM_DISABLE=1 (render.py)"
    size = source.with_suffix(".ipynb").stat().st_size
    assert size < MAX_NOTEBOOK_BYTES, f"{source.stem}.ipynb is {size:,} bytes; lower the figures' dpi"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_notebook_opens_with_what_you_will_learn(source):
    first = jupytext.read(source).cells[0]
    assert first.cell_type == "markdown" and "What you will learn" in first.source and "Read first" in first.source


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_notebook_ends_with_checked_exercises(source):
    """2 to 4 exercises, each with a check cell in the notebook and an answer in the solutions file, shipped open."""
    number = source.stem[:2]
    names = [name for name, ex in EXERCISES.items() if ex.notebook == number]
    assert 2 <= len(names) <= 4, f"{source.stem} has {len(names)} exercises in tutorials/checks; expected 2 to 4"
    text = source.read_text()
    called = re.findall(r'^check\("(\w+)", (\w+)\)$', text, re.M)
    assert [n for n, _ in called] == names, f"{source.stem}'s check cells {called} do not match its exercises {names}"
    assert all(n == answer for n, answer in called), f"{source.stem}: each check should get the answer of its own name"
    solutions = _solutions(number)
    assert all(hasattr(solutions, n) for n in names), f"solutions for {number} lack one of {names}"
    check_outputs = [_text(o) for c in _stored(source)["cells"] if c["source"]
                     and "".join(c["source"]).startswith("check(")
                     for o in c["outputs"]]
    assert len(check_outputs) == len(names) and all(t.startswith("not yet:") for t in check_outputs), (
        f"{source.stem}: the rendered check cells should say 'not yet' (exercises ship unanswered): {check_outputs}")


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_solution_passes_its_check(name, capsys):
    answer = getattr(_solutions(EXERCISES[name].notebook), name)
    passed, message = verdict(name, answer)
    assert passed, message
    check(name, answer)
    assert capsys.readouterr().out == f"{message}\n" and message.startswith("correct:")


MIN_MISTAKES = 3  # the plausible wrong answers each checker must reject (the list and more of our own)


def _mistakes(name: str) -> list:
    mistakes = getattr(_solutions(EXERCISES[name].notebook), "MISTAKES", {})
    assert name in mistakes, f"add the common mistakes for exercise {name!r} to MISTAKES in its solutions file"
    wrong = mistakes[name]
    assert isinstance(wrong, list) and len(wrong) >= MIN_MISTAKES, (
        f"MISTAKES[{name!r}] should be a list of at least {MIN_MISTAKES} wrong answers, got {wrong!r}")
    return wrong


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_common_mistakes_fail_their_check(name, capsys):
    """Each solutions file lists plausible mistakes per exercise (``MISTAKES``): its check must say not yet to each."""
    for number, mistake in enumerate(_mistakes(name)):
        passed, message = verdict(name, mistake)
        assert not passed and message.startswith("not yet:"), f"mistake {number} of {name} passed: {message}"
        check(name, mistake)
        assert capsys.readouterr().out == f"{message}\n"


def _markdown(source: Path) -> list[str]:
    return [c.source for c in jupytext.read(source).cells if c.cell_type == "markdown"]


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_notebook_says_how_to_run_it_on_one_thread(source):
    """The header says how long the notebook takes and how to keep BLAS to one thread (the times are single-thread)."""
    header = _markdown(source)[0]
    assert "OMP_NUM_THREADS" in header and "MINILORA_FAST" in header, (
        f"{source.stem}: the first cell should give its run time with OMP_NUM_THREADS=1 and with MINILORA_FAST=1")


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_notebook_ends_with_a_recap_and_questions(source):
    """A "Recap" cell and a "Questions" cell (understanding questions, not code), and links to its neighbours."""
    markdown = _markdown(source)
    assert any(re.search(r"^#+ .*Recap", m, re.M) for m in markdown), f"{source.stem}: no '## Recap' cell"
    assert any(re.search(r"^#+ .*Questions", m, re.M) for m in markdown), f"{source.stem}: no '## Questions' cell"
    assert re.search(r"\]\(\d\d_\w+\.ipynb\)", "\n".join(markdown)), f"{source.stem}: no link to another notebook"


def _png_width(data: str) -> int:
    png = base64.b64decode(data)
    return struct.unpack(">I", png[16:20])[0]  # the IHDR chunk: width, then height, big-endian


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_figures_fit_the_notebook_width(source):
    """Every rendered figure is at most MAX_FIGURE_PX wide (course.show refuses wider or cluttered figures)."""
    widths = [_png_width(o["data"]["image/png"]) for c in _stored(source)["cells"] if c["cell_type"] == "code"
              for o in c["outputs"] if "image/png" in o.get("data", {})]
    too_wide = [w for w in widths if w > MAX_FIGURE_PX]
    assert not too_wide, f"{source.stem}: figures {too_wide} px wide; at most {MAX_FIGURE_PX} px fit a notebook"


def test_course_show_refuses_a_figure_hard_to_read():
    """Too wide, too small a font, a suptitle over a panel, crowded ticks: each is named; a clean figure passes."""
    from matplotlib.figure import Figure

    clean = Figure(figsize=(6, 3), layout="constrained")
    left, right = clean.subplots(1, 2)
    left.plot([1, 2], label="loss")
    left.legend()
    left.set_title("left")
    right.set_title("right")
    clean.suptitle("one finding")
    assert course.readability_problems(clean) == []
    assert "wide" in course.readability_problems(Figure(figsize=(14, 3)))[0]
    small = Figure(figsize=(4, 3))
    small.subplots().set_title("tiny", fontsize=5)
    assert "below" in course.readability_problems(small)[0]
    clash = Figure(figsize=(6, 3))
    clash.subplots(1, 2)
    clash.suptitle("a suptitle set too low", y=0.93)
    assert any("overlap" in p for p in course.readability_problems(clash))
    crowded = Figure(figsize=(3, 3))
    crowded.subplots().set_xticks(range(60))
    assert any("tick labels overlap" in p for p in course.readability_problems(crowded))
    with pytest.raises(ValueError, match="hard to read"):
        course.show(crowded)


def test_tick_labels_outside_the_view_are_not_counted():
    """matplotlib keeps a label for a tick outside the axis limits without drawing it: here the y label 0.8, below
    the view, sits where the x label 10⁻⁶ is drawn; only the drawn ones count."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4, 3), layout="constrained")
    ax = fig.subplots()
    ax.plot([1e-6, 1e-3], [0.85, 2.15])
    ax.set_xscale("log")
    ax.set_xlim(1e-6, 1e-3)
    ax.set_ylim(0.85, 2.15)
    assert course.readability_problems(fig) == []


def test_loss_figure_draws_one_line_per_run_and_your_says_not_written_yet():
    history = [{"loss": 4.0 / (step + 1)} for step in range(80)]
    fig = course.loss_figure([("full", history, "black"), ("LoRA", history[:40], "C1")], "two runs")
    (ax,) = fig.axes
    assert [line.get_label() for line in ax.get_lines()] == ["full", "LoRA"]
    assert [len(line.get_xdata()) for line in ax.get_lines()] == [80, 40] and ax.get_yscale() == "log"
    assert course.readability_problems(fig) == []

    def unanswered(x):
        raise NotImplementedError

    assert course.your(unanswered, 1) == "(not written yet)" and course.your(lambda x: 2 * x, 3) == 6


def test_course_table_is_markdown(monkeypatch):
    import IPython.display
    from IPython.display import Markdown

    shown = []
    monkeypatch.setattr(IPython.display, "display", shown.append)
    course.table([{"method": "LoRA", "accuracy": 0.98765}, {"method": "full", "accuracy": 1.0}])
    assert isinstance(shown[0], Markdown)
    assert shown[0].data.splitlines() == ["| method | accuracy |", "|---|---|", "| LoRA | 0.988 |", "| full | 1.000 |"]


def _unanswered(*args, **kwargs):
    raise NotImplementedError


def _crashes(*args, **kwargs):
    return 1 / 0


@pytest.mark.parametrize("answer", [_unanswered, _crashes, None],
                         ids=["NotImplementedError", "ZeroDivisionError", "None"])
@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_open_exercise_says_not_yet_without_raising(name, answer, capsys):
    check(name, answer)
    assert capsys.readouterr().out.startswith("not yet:")
    assert verdict(name, answer)[0] is False


def test_unknown_exercise_says_so():
    passed, message = verdict("no_such_exercise", lambda: 0)
    assert not passed and "no exercise called 'no_such_exercise'" in message


def test_render_names_a_missing_notebook():
    with pytest.raises(SystemExit, match="no tutorial source 99_nothing.py"):
        render.sources(["99_nothing"])
    first = TUTORIALS / "01_autograd_from_scratch.py"
    assert render.sources(["01_autograd_from_scratch"]) == render.sources(["01_autograd_from_scratch.py"]) == [first]
    assert first in render.sources([])
