"""``--scheduler ADDRESS``: run a sweep's independent runs on a Dask ``distributed`` cluster.

The sweep runner takes any ``concurrent.futures.Executor``; a Dask client's ``client.get_executor()`` is one.
Nothing else changes: every run is the same spec, cached in the same ``--runs`` folder (which every worker
must be able to read and write: a shared file system, or the scheduler's own machine as the only worker host).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from concurrent.futures import Executor
from contextlib import contextmanager

__all__ = ["CONNECT_TIMEOUT", "sweep_executor"]

CONNECT_TIMEOUT = "10s"  # how long to wait for the scheduler before saying it cannot be reached


@contextmanager
def sweep_executor(args: argparse.Namespace) -> Iterator[Executor | None]:
    """The executor of ``--scheduler ADDRESS`` for the length of the ``with`` block, or None without it
    (the sweep then runs in this process, or in ``--jobs`` worker processes)."""
    address = getattr(args, "scheduler", None)
    if address is None:
        yield None
        return
    try:
        from distributed import Client
    except ImportError:
        raise ValueError("--scheduler needs Dask's distributed package: pip install 'minilora[cluster]'") from None
    try:
        client = Client(address, timeout=CONNECT_TIMEOUT)
    except (OSError, ValueError, TypeError) as err:  # OSError: no scheduler there, or not in time
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ValueError(f"--scheduler {address}: cannot reach a Dask scheduler there within {CONNECT_TIMEOUT} "
                         f"({reason}); start one with `dask scheduler` and pass its tcp://HOST:8786") from None
    with client:
        yield client.get_executor()
