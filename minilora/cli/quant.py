"""``minilora quant-report``: QLoRA's numbers — bits per weight, bytes resident while training (full / LoRA / QLoRA),
NF4 against a uniform 4-bit code, the time to quantise the skills model, and what merging into a 4-bit base costs.

    minilora quant-report [--json] [--merge-steps 200]

What is measured, and the formulas, are in ``minilora/bench/quant.py``.
"""

from __future__ import annotations

import argparse
import json

from minilora.cli.options import add_json, nonnegative_int

__all__ = ["COMMANDS"]


def _add(p: argparse.ArgumentParser) -> None:
    add_json(p, "the report")
    p.add_argument("--merge-steps", type=nonnegative_int, default=200, metavar="N",
                   help="QLoRA training steps before the merge-and-requantise demonstration (0: skip it; default 200)")


def _run(args: argparse.Namespace) -> int:
    from minilora.bench.quant import format_report, quant_report

    report = quant_report(merge_steps=args.merge_steps)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


COMMANDS = [("quant-report", "QLoRA's numbers: bits per weight, training memory, NF4 error, the 4-bit merge", _add,
             _run)]
