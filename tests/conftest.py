"""Shared test setup: the session's environment, the ``device`` fixture, the strict test device, Hypothesis settings.

Every engine test takes ``device`` and so runs once per device: "cpu", "cuda" when a GPU works,
and, on machines without one, "strict" (tests/strict_device.py), a NumPy-backed device that
fails like CuPy does when code leaks device arrays to the host.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

# The environment every test runs in, set here so that `pytest` needs none from the shell.  Set
# unconditionally (not setdefault): a test run is reproducible whatever the shell exports.  It is set
# at import, before anything reads it, and child processes inherit os.environ: the CLI subprocesses and
# the notebook kernels nbmake starts see it too (pytest loads this file whenever tests/ is collected).
#   TQDM_DISABLE=1   no progress bars on stderr (the CLI tests read stderr line by line)
#   MPLBACKEND=Agg   figures draw without a display
#   MINILORA_FAST=1  notebooks train briefly (tutorials/course.py); their full runs are tutorials/render.py
os.environ.update(TQDM_DISABLE="1", MPLBACKEND="Agg", MINILORA_FAST="1")

import strict_device  # noqa: E402

from minilora import backend  # noqa: E402  (after the environment is set)

if not backend.cuda_available():
    backend.register_device(
        backend.Device("strict", strict_device.strict_xp, strict_device.StrictArray,
                       strict_device.from_host, strict_device.to_host)
    )

DEVICES = ["cpu", "cuda"] if backend.cuda_available() else ["cpu", "strict"]

# Deterministic and CI-sized: the same examples on every run, no per-example deadline (the
# first call of an op may be slow on a GPU).  HYPOTHESIS_PROFILE=thorough explores more.
settings.register_profile(
    "ci", deadline=None, max_examples=30, derandomize=True, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("thorough", parent=settings.get_profile("ci"), max_examples=500, derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(params=DEVICES, scope="session")
def device(request: pytest.FixtureRequest) -> str:
    """The name of a device to create test tensors on (one test run per available device)."""
    return request.param


@pytest.fixture(autouse=True)
def _restore_default_device():
    """No test can change the device that another test's tensors are created on."""
    yield
    backend.set_default_device(None)
