"""The result-file contract: every file name the experiments write, and the one reader the figures use.

An experiment writes one JSON file of results (``{"experiment": <name>, "settings": ..., ...}``) that a figure
is drawn from without retraining.  The writers (``experiments``) and the readers (``plots``, the CLI) both take
the names from here, so no file name is typed twice:

    compare.json                   one ``compare`` (``compare-<task>.json`` in figures/: one per figure column)
    lora-rank-sweep.json           LoRA paper: rank sweep (Table 6)      experiment "rank-sweep"
    lora-budget.json               LoRA paper: fixed budget (Table 5)    experiment "budget"
    lora-similarity.json           LoRA paper: what ΔW learns (Sec. 7)   experiment "similarity"
    intrinsic-<name>.json          intrinsic dimension, one per experiment; experiment "intrinsic-<name>"
    latency.json                   LoRA paper Table 1: forward latency of LoRA, adapters, prefix    "latency"
    lora-family.json               the LoRA family at equal parameters   experiment "lora-family"
                                   (figures lora-family.png, lora-family-lr-grid.png, lora-family-forgetting.png)
    demo.json                      the demo's summary;  bench.json: the benchmark report;  run.json: one run
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "BENCH_FILE",
    "BUDGET_FILE",
    "COMPARE_FILE",
    "DEMO_FILE",
    "FAMILY_FILE",
    "FAMILY_FORGETTING_PNG",
    "FAMILY_LR_GRID_PNG",
    "FULL_VS_LORA_PNG",
    "INTRINSIC_PREFIX",
    "LATENCY_FILE",
    "LATENCY_PNG",
    "RANK_SWEEP_FILE",
    "ROW_FILE",
    "RUN_FILE",
    "SIMILARITY_FILE",
    "compare_task_file",
    "intrinsic_file",
    "png_name",
    "read_result",
    "write_result",
    "writing",
]

RUN_FILE = "run.json"  # in a run folder: what the run is (task, method, settings, status, steps done, metrics)
COMPARE_FILE = "compare.json"
ROW_FILE = "row.json"  # in each compare run's folder: {"spec": what the run was, "row": its measured row}
RANK_SWEEP_FILE = "lora-rank-sweep.json"
BUDGET_FILE = "lora-budget.json"
SIMILARITY_FILE = "lora-similarity.json"
INTRINSIC_PREFIX = "intrinsic-"
DEMO_FILE = "demo.json"
BENCH_FILE = "bench.json"
FULL_VS_LORA_PNG = "full-vs-lora.png"
LATENCY_FILE = "latency.json"  # minilora latency: inference latency per method, batch and sequence length
LATENCY_PNG = "latency.png"
FAMILY_FILE = "lora-family.json"  # the LoRA family at equal trainable parameters (experiments/family.py)
FAMILY_LR_GRID_PNG = "lora-family-lr-grid.png"  # drawn from lora-family.json: the rank × lr grid
FAMILY_FORGETTING_PNG = "lora-family-forgetting.png"  # drawn from lora-family.json: learning vs forgetting


def compare_task_file(task: str) -> str:
    """``compare-<task>.json``: one task's compare result among the shipped figures' inputs."""
    return f"compare-{task}.json"


def intrinsic_file(name: str) -> str:
    """``intrinsic-<name>.json``: the result of the intrinsic-dimension experiment ``name``."""
    return f"{INTRINSIC_PREFIX}{name}.json"


def png_name(result_file: str) -> str:
    """The figure drawn from a result file: ``lora-budget.json`` → ``lora-budget.png``."""
    return Path(result_file).with_suffix(".png").name


def read_result(path: str | Path, expected: str | None = None, require: Sequence[str] = ()) -> dict[str, Any]:
    """The JSON result in ``path``; a one-line ValueError when it is missing, not JSON, not an object, of another
    experiment than ``expected`` (its ``"experiment"`` field), or lacks a key of ``require``."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"no result file {path}; run the experiment that writes it first") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"cannot read the result file {path}: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a minilora result (expected a JSON object, got {type(data).__name__})")  # noqa: TRY004
    if expected is not None and data.get("experiment") != expected:
        raise ValueError(f"{path} holds the result of experiment {data.get('experiment')!r}, expected {expected!r}")
    missing = [key for key in require if key not in data]
    if missing:
        raise ValueError(f"{path} is not a complete result: it lacks {missing[0]!r}")
    return data


def write_result(path: str | Path, data: dict[str, Any]) -> Path:
    """Write a result as indented JSON, atomically; an OS error (no space, no permission) is a one-line ValueError
    naming ``path``."""
    from minilora.io import atomic_write_json

    path = Path(path)
    with writing(path):
        atomic_write_json(path, data)
    return path


@contextlib.contextmanager
def writing(path: str | os.PathLike) -> Iterator[None]:
    """Turn an OS error (no space, no permission, ...) while writing ``path`` into a one-line ValueError naming it."""
    try:
        yield
    except OSError as err:
        raise ValueError(f"cannot write {path}: {err.strerror or err}") from None
