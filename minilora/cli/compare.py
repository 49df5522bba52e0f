"""``minilora compare``: full fine-tuning against LoRA at several ranks and any other trainable method, the same
budget, one table.

    minilora compare --task subtract [--ranks 1,2,4,8] [--target-modules q_proj,v_proj,fc_in,fc_out]
                     [--methods dora,lora-plus,vera,adapter,...] [--lr-full X] [--lr-lora X] [--lr-METHOD X ...]
                     [the settings of the --methods: --loraplus-lr-ratio, --d-initial, --bottleneck, --blocksize, ...]

The --methods, their --lr-METHOD options and their settings' options come from the method registry
(``experiments.methods``), as ``finetune``'s do: a method added there is an option here.  The LoRA family runs at
each of --ranks on --target-modules; VeRA runs once on --target-modules at --vera-rank (its shared pair's rank),
adapter and prefix once.  An option of a method that is not in --methods is refused in one line.
"""

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
    positive_int,
    ranks_list,
    seeds_list,
)
from minilora.cli.train import add_base

__all__ = ["COMMANDS", "COMPARE_LEGEND"]

COMPARE_LEGEND = ("columns: r the rank (VeRA: of its shared random pair); trainable weights and their % of all; the "
                  "task's test metric; final training loss; median step ms; peak training MiB (CPU); AdamW state KiB; "
                  "weights file KiB (full: the model; LoRA family, VeRA: PEFT adapter files, PiSSA/OLoRA as plain "
                  "LoRA of rank 2r; adapter, prefix: their own weights); forward ms of the base model and with the "
                  "adapters merged (n/a: nothing to merge, or QLoRA's 4-bit base) / unmerged (overhead in %)")


def _compare_args(p: argparse.ArgumentParser) -> None:
    from minilora.experiments.compare import DEFAULT_LR, compare_methods, per_rank
    from minilora.experiments.methods import get_method

    p.add_argument("--task", required=True, help="task to adapt to (e.g. reverse-shift, subtract, sort, first-names)")
    add_base(p)
    p.add_argument("--ranks", type=ranks_list, default=[1, 2, 4, 8],
                   help="comma-separated LoRA ranks, one run each (default 1,2,4,8)")
    add_settings(p, "lora", ["target_modules"])
    extra = compare_methods()
    family = [m for m in extra if per_rank(m)]
    p.add_argument("--methods", type=comma_list, default=[], metavar="NAMES",
                   help=f"methods to run besides full and LoRA: some of {','.join(extra)} (default none); "
                        f"{','.join(family)} run at each of --ranks on --target-modules, the others once")
    seen: set[str] = set()
    for name in extra:  # each setting's option once, even when two methods have it
        new = [setting for setting in _own_settings(name) if setting not in seen]
        add_settings(p, name, new)
        seen.update(new)
    p.add_argument("--vera-rank", type=positive_int, default=None, metavar="R",
                   help=f"VeRA: the rank of its shared random pair (default {get_method('vera').settings['r']}; "
                        "--ranks are LoRA's)")
    add_training(p, steps=1000, lr=None, run=False)
    p.add_argument("--lr-full", type=positive_float, default=DEFAULT_LR["full"],
                   help=f"peak lr of full fine-tuning (default {DEFAULT_LR['full']})")
    p.add_argument("--lr-lora", type=positive_float, default=DEFAULT_LR["lora"],
                   help=f"peak lr of LoRA (default {DEFAULT_LR['lora']})")
    for name in extra:
        p.add_argument(f"--lr-{name}", type=positive_float, default=None, dest=_lr_dest(name),
                       help=f"peak lr of {name} (default: --lr-lora's)")
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
          f"lr LoRA {args.lr_lora:g}"
          + "".join(f", lr {name} {lr_methods.get(name, args.lr_lora):g}" for name in methods)
          + f" on {','.join(targets)}, "
          + (f"seeds {','.join(map(str, args.seeds))}" if args.seeds else f"seed {args.seed}"))
    print(format_table(rows))
    print(COMPARE_LEGEND)
    if args.seeds and len(args.seeds) > 1:
        print(format_seed_summary(rows))
    print(f"wrote {out / COMPARE_FILE}")
    return 0


def _lr_dest(method: str) -> str:
    """The attribute of ``--lr-METHOD``: lr-fa's is ``lr_lora_fa``."""
    return f"lr_{method.replace('-', '_')}"


def _own_settings(name: str) -> list[str]:
    """The settings of an extra method that are options here: those LoRA does not have (LoRA+'s loraplus_lr_ratio,
    VeRA's d_initial, QLoRA's blocksize).  LoRA's own are compare's: ``--ranks`` gives r, ``--target-modules`` the
    targets; the LoRA family and VeRA run at the registry's defaults for the rest (lora_alpha = r, VeRA's r)."""
    from minilora.experiments.methods import get_method

    lora = get_method("lora").settings
    return [s for s in get_method(name).settings if s not in lora]


def _extra_methods(args: argparse.Namespace) -> tuple[dict[str, dict], dict[str, float]]:
    """The --methods with the settings given as options, and their --lr-METHOD; a method compare cannot add, or an
    option of methods none of which is in --methods, is one line naming it."""
    from minilora.experiments.compare import compare_methods, why_not_compared

    for name in args.methods:
        problem = why_not_compared(name)
        if problem:
            raise ValueError(f"argument --methods: {problem}")
    extra = compare_methods()
    for name in extra:  # an option of no chosen method: its lr, or a setting only methods outside --methods take
        if getattr(args, _lr_dest(name)) is not None and name not in args.methods:
            raise ValueError(f"argument --lr-{name}: applies to method {name}, which is not in --methods")
        for setting in _own_settings(name):
            takers = [m for m in extra if setting in _own_settings(m)]
            if getattr(args, setting) is not None and not set(takers) & set(args.methods):
                raise ValueError(f"argument --{setting.replace('_', '-')}: applies to method {' or '.join(takers)}, "
                                 f"which is not in --methods")
    if args.vera_rank is not None and "vera" not in args.methods:
        raise ValueError("argument --vera-rank: applies to method vera, which is not in --methods")
    methods = {name: {s: getattr(args, s) for s in _own_settings(name) if getattr(args, s) is not None}
               for name in dict.fromkeys(args.methods)}
    if args.vera_rank is not None:
        methods["vera"]["r"] = args.vera_rank
    lrs = {name: getattr(args, _lr_dest(name)) for name in methods if getattr(args, _lr_dest(name)) is not None}
    return methods, lrs


COMMANDS = [
    ("compare", "full fine-tuning vs LoRA at several ranks (and any --methods), same budget, one table",
     _compare_args, _compare),
]
