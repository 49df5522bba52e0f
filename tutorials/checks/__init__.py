"""The exercises' check cells: ``check(name, answer)`` tells a student whether an answer is right.

A check never raises.  A right answer prints ``correct: ...``; a wrong one prints ``not yet: <what is
wrong>``, and so does an exercise left open (its cell still raises NotImplementedError, or is None).  That is
how every notebook executes top to bottom in CI with its exercises unanswered.  ``verdict(name, answer)``
returns (passed, message) instead of printing: ``tests/test_tutorials.py`` runs it on the answers in
``tutorials/solutions/`` (each must pass) and on the wrong answers listed there (each must fail).

Each notebook's checks live in one module here (``autograd`` for notebook 01, ...; every module is imported
when the package is), registered with ``@exercise("01")``; the exercise's name is the checking function's name,
and the name of what the student defines in the notebook and what its solutions file defines.

Adding a notebook ``NN_topic``: write ``tutorials/NN_topic.py`` (jupytext percent; its first cell says "What you
will learn" and "Read first"; step counts from ``course.fast_or_full(fast, full)``; figures shown with
``course.show(fig)``); end it with 2–4 exercises, each a cell whose definition raises NotImplementedError and a
cell ``check("name", name)``; put their ``@exercise("NN")`` checks in a module here, and the answers, plus a list
of at least three plausible wrong answers per exercise in a dict ``MISTAKES`` (each must fail its check), in
``tutorials/solutions/NN_topic.py``; then render it with ``python tutorials/render.py NN_topic``.
``tests/test_tutorials.py`` checks all of it.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["NotYet", "Exercise", "EXERCISES", "exercise", "verdict", "check"]


class NotYet(Exception):
    """An answer is not right yet; the message tells the student what is wrong."""


@dataclass(frozen=True)
class Exercise:
    """One exercise: its name, its notebook's number ("01"), and ``verify(answer)``.

    ``verify`` returns what a right answer showed (one line) or raises NotYet saying what is wrong.
    """

    name: str
    notebook: str
    verify: Callable[[Any], str]


EXERCISES: dict[str, Exercise] = {}


def exercise(notebook: str) -> Callable[[Callable[[Any], str]], Callable[[Any], str]]:
    """Register the decorated ``verify`` function as the exercise of that name in ``notebook``."""

    def register(verify: Callable[[Any], str]) -> Callable[[Any], str]:
        if verify.__name__ in EXERCISES:
            raise ValueError(f"two exercises are called {verify.__name__!r}")
        EXERCISES[verify.__name__] = Exercise(verify.__name__, notebook, verify)
        return verify

    return register


def verdict(name: str, answer: Any) -> tuple[bool, str]:
    """(True, "correct: ...") or (False, "not yet: ...") for ``answer`` to exercise ``name``.  Never raises:
    an exercise left open must not stop the notebook."""
    if name not in EXERCISES:
        return False, f"not yet: there is no exercise called {name!r}; expected one of {sorted(EXERCISES)}"
    if answer is None:
        return False, f"not yet: {name} is None; define it in the exercise cell above"
    try:
        message = EXERCISES[name].verify(answer)
    except NotImplementedError:
        return False, f"not yet: {name} still raises NotImplementedError; replace it with your code in the cell above"
    except NotYet as why:
        return False, f"not yet: {why}"
    except Exception as err:  # any mistake in the answer is reported, never raised: the notebook goes on
        return False, f"not yet: {name} raised {type(err).__name__}: {err}"
    return True, f"correct: {message}"


def check(name: str, answer: Any) -> None:
    """The check cell: print whether ``answer`` to exercise ``name`` is right (``correct: ...``) or not
    (``not yet: ...``)."""
    print(verdict(name, answer)[1])


def expect_close(what: str, got: Any, want: Any, atol: float = 1e-6, rtol: float = 1e-5) -> None:
    """Raise NotYet unless ``got`` has ``want``'s shape and is close to it: |got − want| ≤ atol + rtol·|want|."""
    import numpy as np

    if got is None:
        raise NotYet(f"{what} is None; return an array")
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        raise NotYet(f"{what} has shape {got.shape}, expected {want.shape}")
    if not np.allclose(got, want, atol=atol, rtol=rtol):
        worst = np.unravel_index(np.argmax(np.abs(got - want)), want.shape) if want.shape else ()
        raise NotYet(f"{what} differs at index {tuple(int(i) for i in worst)}: got {got[worst]:.6g}, "
                     f"expected {want[worst]:.6g}")


def expect_equal(what: str, got: Any, want: Any, hint: str) -> None:
    """Raise NotYet unless ``got == want`` (numbers, strings, tuples); the message gives a hint, not the answer."""
    if got != want:
        raise NotYet(f"{what} is {got!r}, which is not right; hint: {hint}")


def _register_all() -> None:
    """Import every module of this package: each registers its notebook's exercises (a new one needs no edit here)."""
    for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        importlib.import_module(f"{__name__}.{module.name}")


_register_all()
