"""The ``minilora`` command: one subcommand per job (``minilora --help`` lists them).

One file per family of commands, each a list ``COMMANDS`` of (name, help, add_arguments, run); the option words
they share, and what each means, are in ``options.py``.  ``main`` turns every user error into one line on stderr
and exit code 2, and every stop (Ctrl-C, SIGTERM, SIGHUP) into one line saying what was kept and the exact command
that continues, with exit code 128 + the signal number (130 for Ctrl-C).
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
from pathlib import Path

from minilora.cli import bench, compare, lab, latency, models, quant, sweeps, train
from minilora.cli.options import Parser

__all__ = ["COMMANDS", "build_parser", "main"]

COMMANDS = {name: (help_text, add_arguments, run)
            for module in (sweeps, lab, train, compare, models, bench, latency, quant)
            for name, help_text, add_arguments, run in module.COMMANDS}
_ORDER = ("demo", "selfcheck", "tasks", "pretrain", "finetune", "generate", "evaluate", "compare", "lora-paper",
          "intrinsic", "lora-family", "latency", "params", "figures",
          "bench", "quant-report")  # the order of `minilora --help`: the tour first


def build_parser() -> Parser:
    """The ``minilora`` parser with one subparser per command."""
    from minilora import __version__

    parser = Parser(prog="minilora", description="LoRA from scratch: engine, tiny GPT, full fine-tuning vs LoRA.")
    parser.add_argument("--version", action="version", version=f"minilora {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name in _ORDER:
        help_text, add_arguments, _ = COMMANDS[name]
        parser.commands[name] = sub.add_parser(name, help=help_text, description=help_text)
        add_arguments(parser.commands[name])
    return parser


def _parse(parser: Parser, argv: list[str]) -> argparse.Namespace:
    """``parser.parse_args(argv)``, with an unknown option reported by its command (``minilora finetune: error:
    unrecognized arguments: --warmup 3``, pointing to that command's --help)."""
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        parser.commands.get(args.command, parser).error(f"unrecognized arguments: {' '.join(unknown)}")
    return args


def _again(args: argparse.Namespace, argv: list[str]) -> str:
    """The command that continues an interrupted one: the same arguments, without --overwrite, and for a command
    that re-uses its folder only when told to, with --out and --resume."""
    again = [a for a in argv if a != "--overwrite"]
    if hasattr(args, "resume"):
        if "--out" not in again and not any(a.startswith("--out=") for a in again):
            again += ["--out", str(args.out)]
        if "--resume" not in again:
            again.append("--resume")
    return f"minilora {shlex.join(again)}"


def _interrupted(args: argparse.Namespace, argv: list[str], stop: KeyboardInterrupt) -> str:
    """The one line printed after a stop: what was kept and the exact command that continues."""
    signum = getattr(stop, "signal", None) or signal.SIGINT
    what = "interrupted" + ("" if signum == signal.SIGINT else f" by {signal.Signals(signum).name}")
    if getattr(stop, "total", None) is not None and stop.runs is not None:  # a sweep (sweep.SweepInterrupted)
        return (f"{what}; {stop.finished} of {stop.total} runs finished and are kept in {stop.runs}; "
                f"resume with: {_again(args, argv)}")
    out = getattr(args, "out", None)
    if not hasattr(args, "resume") or out is None or not Path(out).is_dir() or not any(Path(out).iterdir()):
        return f"{what}; nothing was saved"
    at = f" at step {stop.step}" if getattr(stop, "step", None) is not None else ""
    return f"{what}{at}; progress saved in {out}; resume with: {_again(args, argv)}"


def main(argv: list[str] | None = None) -> int:
    """Run ``minilora COMMAND ...``; a user error prints one line and exits with 2, a stop one line and 128 + signal."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    try:
        args = _parse(parser, argv)
    except SystemExit as exit_:  # --help and --version exit 0 as usual; a bad option returns 2 like any user error
        if exit_.code == 2:
            return 2
        raise
    if args.command is None:
        parser.print_help()
        return 0
    args.argv = argv  # the command line as typed: what bench re-runs with its thread settings
    import numpy as np

    from minilora.backend import keep_freed_host_memory

    keep_freed_host_memory()  # a command is its own process: reuse freed memory, no page faults per step
    try:
        # a loss that turns NaN or infinite is reported once, as one line, by the divergence check: NumPy's
        # overflow / invalid-value warnings on the way there would only bury that line
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return COMMANDS[args.command][2](args)
    except (ValueError, OSError) as err:
        message = " ".join(str(err).split("\n"))  # one line, whatever the error's text
        print(f"minilora {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as stop:
        print(f"minilora {args.command}: {_interrupted(args, argv, stop)}", file=sys.stderr)
        return 128 + int(getattr(stop, "signal", None) or signal.SIGINT)
