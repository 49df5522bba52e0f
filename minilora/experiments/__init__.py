"""Experiments: the runs behind the tables and figures, each callable from a notebook and the ``minilora`` command.

    methods     what trains: the one registry (none, full, lora, subspace)
    spec        a run: the typed, JSON-able RunSpec and its stable key
    folders     one owner per run folder (OS lock), checks before any work
    results     every result file name, and the one reader
    sweep       a list of run specs over any concurrent.futures Executor, resumable
    runs        pretrain / finetune;  compare;  lora_paper (+ adaptation, rank_sweep, budget, similarity);
    intrinsic (+ d90, intrinsic_run, intrinsic_table, toy_intrinsic);  family (the LoRA family side by side);  demo;
    figures (rerun_figures);  measure;  selfcheck
"""

from typing import Any

__all__ = ["rerun_figures"]


def __getattr__(name: str) -> Any:
    """``rerun_figures`` on first use (importing it loads every experiment)."""
    if name == "rerun_figures":
        from minilora.experiments.figures import rerun_figures

        return rerun_figures
    raise AttributeError(f"module 'minilora.experiments' has no attribute {name!r}")
