"""The option vocabulary of the ``minilora`` command: one word, one meaning, in every command.

    --out PATH        where this command's results go (a run folder, or a folder of results)
    --runs PATH       a sweep's resumable run cache
    --json            print JSON to stdout instead of the table
    --steps --batch-size --lr --warmup-steps --weight-decay --eval-every --checkpoint-every
    --checkpoint-seconds --seed                     the ``TrainConfig`` field of the same name
    --method --r --lora-alpha --use-rslora --target-modules --init-lora-weights --d --projection --said
    --bottleneck --placement --num-virtual-tokens --prefix-projection --encoder-hidden-size
    --loraplus-lr-ratio --d-initial --blocksize --double-quant
                                                    a method and its settings (``cli/methods.py``)
    --methods NAMES --lr-METHOD                     compare: the methods beside full and LoRA, each one's peak lr
    --jobs N          runs in parallel (default 1); --scheduler ADDRESS: a Dask cluster instead
    --device cpu|cuda, --resume, --overwrite

Every numeric option is checked when it is parsed: a bad value is one line naming the option, exit code 2.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from minilora.train import TrainConfig

__all__ = ["Parser", "add_device", "add_jobs", "add_json", "add_out", "add_reuse", "add_runs", "add_training",
           "base_model", "check_warmup", "comma_list", "nonnegative_float", "nonnegative_int", "positive_float",
           "positive_int", "ranks_list", "seeds_list", "train_config"]


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``minilora finetune: error: argument --lr: expected ...``, exit 2) and no
    abbreviations: ``--d`` is the subspace dimension or an error, never ``--device``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, allow_abbrev=False, **kwargs)
        self.commands: dict[str, Parser] = {}  # name → the parser of each subcommand (``minilora`` itself only)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# -- argparse types: every value is checked when parsed, argparse puts the option's name in the message -------------


def _number(kind: type, least: float, strict: bool = False) -> Callable[[str], Any]:
    """An argparse ``type=``: a finite ``kind`` (int or float) >= ``least`` (> ``least`` when ``strict``)."""
    bound = f"{'>' if strict else '>='} {least:g}"
    expected = f"{'an integer' if kind is int else 'a finite number'} {bound}"

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not math.isfinite(value) or value < least or (strict and value == least):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    parse.__name__ = expected
    parse.__doc__ = f"Parse an option's text as {expected}; anything else is a one-line argparse error."
    return parse


positive_int = _number(int, 1)
nonnegative_int = _number(int, 0)
positive_float = _number(float, 0.0, strict=True)
nonnegative_float = _number(float, 0.0)


def comma_list(text: str) -> list[str]:
    """The non-empty, stripped items of a comma-separated option: ``"a, b,"`` → ``["a", "b"]``."""
    return [item.strip() for item in text.split(",") if item.strip()]


def _listed(parse: Callable[[str], list[int]], option: str) -> Callable[[str], list[int]]:
    """An argparse ``type=`` from a parser of ``experiments.compare`` (its message loses the option prefix)."""

    def parse_option(text: str) -> list[int]:
        try:
            return parse(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err).removeprefix(f"{option}: ")) from None

    parse_option.__name__ = option
    return parse_option


def ranks_list(text: str) -> list[int]:
    """An argparse ``type=`` for --ranks: "1,2,4,8" → [1, 2, 4, 8] (see ``compare.parse_ranks``)."""
    from minilora.experiments.compare import parse_ranks

    return _listed(parse_ranks, "--ranks")(text)


def seeds_list(text: str) -> list[int]:
    """An argparse ``type=`` for --seeds: "0,1,2" → [0, 1, 2] (see ``compare.parse_seeds``)."""
    from minilora.experiments.compare import parse_seeds

    return _listed(parse_seeds, "--seeds")(text)


def base_model(text: str) -> str:
    """An argparse ``type=`` for --base: a shipped name or a model file or run folder, never an adapter folder
    (an adapter is used on top of its base: ``minilora generate ADAPTER`` / ``evaluate ADAPTER``)."""
    import json
    from pathlib import Path

    from minilora.lora.adapters import CONFIG_NAME

    config = Path(text) / CONFIG_NAME
    if not config.is_file():
        return text
    try:
        recorded = json.loads(config.read_text()).get("base_model_name_or_path")
    except (OSError, ValueError, AttributeError):
        recorded = None
    its_base = f"its base ({recorded})" if recorded else "its base"
    raise argparse.ArgumentTypeError(f"{text} is a LoRA adapter folder, not a base model; pass it as the MODEL of "
                                     f"minilora generate or evaluate, and {its_base} with --base")


# -- the shared options ----------------------------------------------------------------------------------------------


def add_out(p: argparse.ArgumentParser, help: str, default: str | None = None, required: bool = False) -> None:
    """--out: where this command's results go."""
    p.add_argument("--out", default=default, required=required, metavar="PATH", help=help)


def add_runs(p: argparse.ArgumentParser, default: str) -> None:
    """--runs: a sweep's resumable run cache (a rerun with the same --runs skips finished runs)."""
    p.add_argument("--runs", default=None, metavar="PATH",
                   help="the resumable run cache: finished runs are kept there and skipped by a "
                   f"rerun (default {default})")


def add_json(p: argparse.ArgumentParser, what: str) -> None:
    """--json: a flag, print JSON instead of the table."""
    p.add_argument("--json", action="store_true", help=f"print {what} as JSON to stdout instead of the table")


def add_jobs(p: argparse.ArgumentParser, sweep: bool = True) -> None:
    """--jobs (default 1) and, for a sweep, --scheduler (a Dask cluster's address)."""
    p.add_argument("--jobs", type=positive_int, default=1,
                   help="runs in parallel, one BLAS thread each (default 1: in this process)")
    if sweep:
        p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="run on the Dask cluster at ADDRESS (e.g. tcp://host:8786; needs the `cluster` extra)")


def add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", choices=("cpu", "cuda"), default=None,
                   help="cpu or cuda (default: MINILORA_DEVICE or cpu)")


def add_reuse(p: argparse.ArgumentParser, what: str) -> None:
    """--resume and --overwrite: re-using a folder is always explicit."""
    p.add_argument("--resume", action="store_true", help=f"continue the {what} in OUT (only --steps may change)")
    p.add_argument("--overwrite", action="store_true", help=f"delete the {what} in OUT first and start again")


def add_training(p: argparse.ArgumentParser, steps: int, lr: float | None, weight_decay: float = 0.0,
                 run: bool = True) -> None:
    """The ``TrainConfig`` fields as options (``lr`` None: the command has its own learning-rate options;
    ``run`` False: no checkpoints or evaluations, the sweep decides)."""
    p.add_argument("--steps", type=positive_int, default=steps, help=f"training steps (default {steps})")
    if lr is not None:
        p.add_argument("--lr", type=positive_float, default=lr, help=f"peak learning rate (default {lr})")
    p.add_argument("--batch-size", type=positive_int, default=64, help="sequences per step (default 64)")
    p.add_argument("--warmup-steps", type=nonnegative_int, default=None, help="warm-up steps (default: 5%% of steps)")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="seed of data order and initialisation (default 0)")
    if not run:
        return
    p.add_argument("--weight-decay", type=nonnegative_float, default=weight_decay,
                   help=f"AdamW weight decay of the matrices (default {weight_decay:g})")
    p.add_argument("--eval-every", type=nonnegative_int, default=0,
                   help="evaluate every N steps (default: only at the end)")
    p.add_argument("--checkpoint-every", type=nonnegative_int, default=0,
                   help="also write a resumable checkpoint every N steps (default 0: by time only)")
    p.add_argument("--checkpoint-seconds", type=nonnegative_float, default=60.0,
                   help="write a resumable checkpoint every N seconds of training (default 60; 0: off). "
                        "Ctrl-C and SIGTERM always write one")


def check_warmup(args: argparse.Namespace) -> None:
    """An explicit --warmup-steps longer than --steps is a typo: the learning rate would never reach its peak."""
    if args.warmup_steps is not None and args.warmup_steps > args.steps:
        raise ValueError(f"argument --warmup-steps: {args.warmup_steps} warm-up steps exceed --steps {args.steps}; the "
                         f"learning rate would never reach its peak (expected --warmup-steps <= --steps)")


def train_config(args: argparse.Namespace) -> TrainConfig:
    """The ``TrainConfig`` of the training options; a resumed run keeps the default warm-up it started with."""
    from minilora.train import TrainConfig, checkpoint_state, default_warmup_steps

    check_warmup(args)
    warmup = args.warmup_steps if args.warmup_steps is not None else default_warmup_steps(args.steps)
    recorded = checkpoint_state(args.out) if args.resume and args.out and args.warmup_steps is None else None
    if recorded is not None:  # the default warm-up follows --steps; a resumed run keeps the one it started with
        warmup = recorded["train_config"]["warmup_steps"]
    return TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, warmup_steps=warmup,
                       weight_decay=args.weight_decay,
                       eval_every=args.eval_every, checkpoint_every=args.checkpoint_every,
                       checkpoint_seconds=args.checkpoint_seconds, seed=args.seed)
