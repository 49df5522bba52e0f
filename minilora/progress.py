"""Progress bars: ``tqdm.auto``'s (a widget in Jupyter, text in a terminal), switched off by ``TQDM_DISABLE=1``
wherever they are drawn.

tqdm reads ``TQDM_DISABLE`` for its text bars, but its notebook bar turns a missing ``disable`` into ``False`` and
ignores the variable, so a notebook rendered with it set would still store a widget per training run.  Every bar in
minilora is made here, with ``disable`` taken from the variable.
"""

from __future__ import annotations

import os
from typing import Any

from tqdm.auto import tqdm

__all__ = ["progress", "progress_disabled"]


def progress_disabled() -> bool:
    """True when the environment says ``TQDM_DISABLE`` is set to anything but "", "0" or "false"."""
    return os.environ.get("TQDM_DISABLE", "").strip().lower() not in ("", "0", "false")


def progress(*args: Any, **kwargs: Any) -> Any:
    """``tqdm.auto.tqdm(*args, **kwargs)``, disabled when ``progress_disabled()`` (unless ``disable`` is given)."""
    if progress_disabled():
        kwargs.setdefault("disable", True)
    return tqdm(*args, **kwargs)
