"""Checks and coercions shared by every floor of the package (it imports nothing from minilora).

``is_int`` / ``is_real`` say whether a user's value is a number of the right kind: Python or NumPy
integers and reals, but never a bool (``True`` is an ``int`` to Python, and ``r=True`` is a mistake,
not a rank of 1).  ``as_rng`` turns a seed into a ``numpy.random.Generator``: every function that
draws random numbers takes ``rng=`` as a Generator (drawn from, so successive calls differ) or a seed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["RngLike", "is_int", "is_real", "as_rng"]

RngLike = np.random.Generator | int | None


def is_int(value: Any) -> bool:
    """True for a Python or NumPy integer that is not a bool (``4``, ``np.int64(4)``; not ``True``, ``4.0``)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def is_real(value: Any) -> bool:
    """True for a Python or NumPy integer or float that is not a bool (``0.5``, ``np.float32(2)``, ``3``; not ``True``).

    NaN and ±inf are real here; callers that need a finite number also check ``math.isfinite``.
    """
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def as_rng(rng: RngLike) -> np.random.Generator:
    """``rng`` itself when it is a ``numpy.random.Generator``, else ``numpy.random.default_rng(rng)``.

    A Generator is used as is (the caller's stream advances); a seed (int) gives the same numbers on
    every call; None gives fresh entropy from the operating system.
    """
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
