"""``minilora compare``: full fine-tuning against LoRA at several ranks, the same budget, one table."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from minilora.cli.cluster import sweep_executor
from minilora.cli.methods import add_settings
from minilora.cli.options import (
    add_device,
    add_jobs,
    add_json,
    add_out,
    add_reuse,
    add_training,
    check_warmup,
    comma_list,
    positive_float,
    ranks_list,
    seeds_list,
)
from minilora.cli.train import add_base

__all__ = ["COMMANDS", "COMPARE_EXTRA", "COMPARE_LEGEND"]

COMPARE_EXTRA = ("adapter", "prefix", "qlora")  # the methods --methods may add (their settings are options of compare)

COMPARE_LEGEND = ("columns: r LoRA rank; trainable weights and their % of all; the task's test metric; final "
                  "training loss; median step ms; peak training MiB (CPU); AdamW state KiB; weights file KiB; forward "
                  "ms of the base model and with the adapters merged / unmerged (overhead in %)")


def _compare_args(p: argparse.ArgumentParser) -> None:
    from minilora.experiments.compare import DEFAULT_LR
    p.add_argument("--task", required=True, help="task to adapt to (e.g. reverse-shift, subtract, sort, first-names)")
    add_base(p)
    p.add_argument("--ranks", type=ranks_list, default=[1, 2, 4, 8],
                   help="comma-separated LoRA ranks, one run each (default 1,2,4,8)")
    add_settings(p, "lora", ["target_modules"])
    p.add_argument("--methods", type=comma_list, default=[], metavar="NAMES",
                   help=f"methods to run besides full and LoRA, one run each: some of {','.join(COMPARE_EXTRA)} "
                        "(default none)")
    for name in COMPARE_EXTRA:
        add_settings(p, name, _own_settings(name))
        p.add_argument(f"--lr-{name}", type=positive_float, default=None, dest=f"lr_{name}",
                       help=f"peak lr of {name} (default: --lr-lora's)")
    add_training(p, steps=1000, lr=None, run=False)
    p.add_argument("--lr-full", type=positive_float, default=DEFAULT_LR["full"],
                   help=f"peak lr of full fine-tuning (default {DEFAULT_LR['full']})")
    p.add_argument("--lr-lora", type=positive_float, default=DEFAULT_LR["lora"],
                   help=f"peak lr of LoRA (default {DEFAULT_LR['lora']})")
    p.add_argument("--seeds", type=seeds_list, default=None,
                   help="comma-separated seeds, every run once per seed, with mean ± std (e.g. 0,1,2; default: --seed)")
    add_jobs(p)
    add_device(p)
    add_out(p, "the compare folder: weights per run and compare.json (default runs/compare-TASK)")
    add_json(p, "compare.json")
    add_reuse(p, "compare run")


def _compare(args: argparse.Namespace) -> int:
    from minilora.experiments.compare import (
        COMPARE_FILE,
        compare,
        format_seed_summary,
        format_table,
    )
    from minilora.experiments.methods import get_method

    check_warmup(args)
    methods, lr_methods = _extra_methods(args)
    out = Path(args.out or f"runs/compare-{args.task}")
    args.out = str(out)  # where an interruption's resume line points
    targets = tuple(args.target_modules or get_method("lora").settings["target_modules"])

    def report(row: dict) -> None:
        print(f"{row['run']}: {row['metric']} {row['metric_value']:.3f} after {row['train_seconds']:.0f} s",
              file=sys.stderr)

    with sweep_executor(args) as executor:
        rows = compare(args.task, base=args.base, ranks=args.ranks, steps=args.steps, batch_size=args.batch_size,
                       lr_full=args.lr_full, lr_lora=args.lr_lora, targets=targets, seed=args.seed,
                       warmup_steps=args.warmup_steps, device=args.device, out=out, on_row=report,
                       resume=args.resume, overwrite=args.overwrite, seeds=args.seeds, jobs=args.jobs,
                       executor=executor, methods=methods, lr_methods=lr_methods)
    if args.json:
        print((out / COMPARE_FILE).read_text(), end="")
        return 0
    print(f"{args.task} from {args.base}: {args.steps} steps x batch {args.batch_size}, lr full {args.lr_full:g}, "
          f"lr LoRA {args.lr_lora:g} on {','.join(targets)}, "
          + (f"seeds {','.join(map(str, args.seeds))}" if args.seeds else f"seed {args.seed}"))
    print(format_table(rows))
    print(COMPARE_LEGEND)
    if args.seeds and len(args.seeds) > 1:
        print(format_seed_summary(rows))
    print(f"wrote {out / COMPARE_FILE}")
    return 0


def _own_settings(name: str) -> list[str]:
    """The settings of an extra method that LoRA does not have (QLoRA's blocksize, double_quant): LoRA's own
    (--target-modules) are compare's options already, and QLoRA runs at LoRA's defaults for the rest (r = 4)."""
    from minilora.experiments.methods import get_method

    lora = get_method("lora").settings
    return [s for s in get_method(name).settings if s not in lora]


def _extra_methods(args: argparse.Namespace) -> tuple[dict[str, dict], dict[str, float]]:
    """The --methods with the settings given as options, and their --lr-NAME; an option of a method that is not
    in --methods is one line naming both."""
    from minilora.experiments.methods import get_method

    unknown = [m for m in args.methods if m not in COMPARE_EXTRA]
    if unknown:
        raise ValueError(f"argument --methods: {unknown[0]!r} is not one compare adds; expected some of "
                         f"{','.join(COMPARE_EXTRA)}")
    methods, lrs = {}, {}
    for name in COMPARE_EXTRA:
        given = {s: getattr(args, s) for s in _own_settings(name) if getattr(args, s, None) is not None}
        lr = getattr(args, f"lr_{name}")
        if name not in args.methods:
            if given or lr is not None:
                option = f"--{next(iter(given), 'lr_' + name).replace('_', '-')}"
                raise ValueError(f"argument {option}: applies to method {name}, which is not in --methods")
            continue
        methods[name] = given
        if args.target_modules and "target_modules" in get_method(name).settings:  # QLoRA adapts LoRA's targets
            given["target_modules"] = args.target_modules
        if lr is not None:
            lrs[name] = lr
    return methods, lrs


COMMANDS = [
    ("compare", "full fine-tuning vs LoRA at several ranks, same budget, one table", _compare_args, _compare),
]
