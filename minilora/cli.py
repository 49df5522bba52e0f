"""The ``minilora`` command: one subcommand per job (``minilora --help`` lists them)."""

from __future__ import annotations

import argparse
import math
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from minilora.train import TrainConfig

Command = Callable[[argparse.Namespace], int]
_COMMANDS: dict[str, tuple[Command, Callable[[argparse.ArgumentParser], None], str]] = {}


def command(name: str, help: str, arguments: Callable[[argparse.ArgumentParser], None] = lambda p: None):
    """Register a subcommand: ``fn(args) -> exit code`` plus a function that adds its arguments."""

    def register(fn: Command) -> Command:
        _COMMANDS[name] = (fn, arguments, help)
        return fn

    return register


# -- argparse types: every numeric option is checked when parsed, the option's name is in the message ---------------


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


def ranks_list(text: str) -> list[int]:
    """An argparse ``type=`` for --ranks: "1,2,4,8" → [1, 2, 4, 8] (see ``compare.parse_ranks``)."""
    from minilora.experiments.compare import parse_ranks

    try:
        return parse_ranks(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err).removeprefix("--ranks: ")) from None


def seeds_list(text: str) -> list[int]:
    """An argparse ``type=`` for --seeds: "0,1,2" → [0, 1, 2] (see ``compare.parse_seeds``)."""
    from minilora.experiments.compare import parse_seeds

    try:
        return parse_seeds(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err).removeprefix("--seeds: ")) from None


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``minilora finetune: error: argument --lr: expected ...`` and exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _out_args(p: argparse.ArgumentParser, what: str) -> None:
    """--resume and --overwrite: re-using a run folder is always explicit."""
    p.add_argument("--resume", action="store_true", help=f"continue the {what} in OUT (only --steps may change)")
    p.add_argument("--overwrite", action="store_true", help=f"delete the {what} in OUT first and start again")


def _selfcheck_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--steps", type=positive_int, default=300, help="training steps of the tiny MLP (default 300)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: MINILORA_DEVICE or cpu)")


@command("selfcheck", "gradcheck a tiny MLP and watch it learn (seconds)", _selfcheck_args)
def _selfcheck(args: argparse.Namespace) -> int:
    from minilora.experiments.selfcheck import run_selfcheck

    result = run_selfcheck(steps=args.steps, device=args.device)
    return 0 if result["last_loss"] < result["first_loss"] else 1


def _train_args(p: argparse.ArgumentParser, steps: int, lr: float) -> None:
    p.add_argument("--steps", type=positive_int, default=steps, help=f"training steps (default {steps})")
    p.add_argument("--lr", type=positive_float, default=lr, help=f"peak learning rate (default {lr})")
    p.add_argument("--batch-size", type=positive_int, default=64, help="sequences per step (default 64)")
    p.add_argument("--warmup", type=nonnegative_int, default=None, help="warm-up steps (default: 5%% of steps)")
    p.add_argument("--weight-decay", type=nonnegative_float, default=None, help="AdamW weight decay")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="seed of data order and initialisation (default 0)")
    p.add_argument("--eval-every", type=nonnegative_int, default=0, help="evaluate every N steps (default: only at the end)")
    p.add_argument("--checkpoint-every", type=nonnegative_int, default=0,
                   help="write a resumable checkpoint every N steps (Ctrl-C always writes one)")
    _out_args(p, "run")
    p.add_argument("--device", default=None, help="cpu or cuda (default: MINILORA_DEVICE or cpu)")


def _check_warmup(args: argparse.Namespace) -> None:
    """An explicit --warmup longer than --steps is a typo: the learning rate would never reach its peak."""
    if args.warmup is not None and args.warmup > args.steps:
        raise ValueError(f"argument --warmup: {args.warmup} warm-up steps exceed --steps {args.steps}; the learning "
                         f"rate would never reach its peak (expected --warmup <= --steps)")


def _train_config(args: argparse.Namespace, weight_decay: float) -> TrainConfig:
    from minilora.train import TrainConfig, checkpoint_state

    _check_warmup(args)
    warmup = args.warmup if args.warmup is not None else max(1, args.steps // 20)
    recorded = checkpoint_state(args.out) if args.resume and args.out and args.warmup is None else None
    if recorded is not None:  # the default warm-up follows --steps; a resumed run keeps the one it started with
        warmup = recorded["train_config"]["warmup_steps"]
    return TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, warmup_steps=warmup,
                       weight_decay=weight_decay if args.weight_decay is None else args.weight_decay,
                       eval_every=args.eval_every, checkpoint_every=args.checkpoint_every, seed=args.seed)


def _print_metrics(title: str, metrics: dict) -> None:
    """The final metrics, once, rounded: ``title accuracy 0.998``."""
    from minilora.experiments.runs import summarize

    print(f"{title} {summarize(metrics)}")


def _intermediate_evals(steps: int) -> Callable[[int, dict], None]:
    """An on_eval callback printing the evaluations before the last (the last is printed once, at the end)."""
    from minilora.experiments.runs import print_eval

    return lambda step, metrics: print_eval(step, metrics) if step < steps else None


def _already_finished(out: str, result: Any) -> None:
    print(f"{out} already finished ({result.history[-1]['step'] + 1 if result.history else 0} steps); nothing changed "
          f"(pass a larger --steps to extend it)")


def _pretrain_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--recipe", default=None, help="a shipped model's recipe (skills, names): sets task, size, steps, lr, batch size, warm-up "
                        "and seed, replacing those options")
    p.add_argument("--task", default="pretrain", help="task to pretrain on (see `minilora tasks`)")
    p.add_argument("--config", default="tiny", help="model size: tiny, bench-tiny, bench-small (default tiny)")
    p.add_argument("--out", required=True, help="output folder (model.safetensors, history.json, checkpoint)")
    _train_args(p, steps=9000, lr=2e-3)


@command("pretrain", "pretrain a GPT from scratch on a task", _pretrain_args)
def _pretrain(args: argparse.Namespace) -> int:
    from minilora.experiments.runs import pretrain, print_eval

    if args.recipe is not None:
        from minilora.models.zoo import RECIPES

        if args.recipe not in RECIPES:
            raise ValueError(f"unknown recipe {args.recipe!r}; expected one of {sorted(RECIPES)}")
        r = RECIPES[args.recipe]
        args.task, args.config, args.steps, args.lr = r.task, r.size, r.steps, r.lr
        args.batch_size, args.warmup, args.seed = r.batch_size, r.warmup_steps, r.seed
    config = _train_config(args, weight_decay=0.1)
    _, result = pretrain(args.task, args.config, config, out_dir=args.out, device=args.device, resume=args.resume,
                         extra={"recipe": args.recipe}, on_eval=_intermediate_evals(config.steps),
                         overwrite=args.overwrite)
    if result.already_finished:
        _already_finished(args.out, result)
    _print_metrics(f"pretrained on {args.task} ({config.steps} steps, {result.seconds:.0f} s); held-out:", result.final_metrics)
    if not result.already_finished:
        print(f"wrote {args.out}/model.safetensors")
    return 0


def _base_and_targets_args(p: argparse.ArgumentParser) -> None:
    """--base and --targets, shared by the commands that adapt a pretrained model."""
    from minilora.experiments.runs import DEFAULT_TARGETS

    p.add_argument("--base", default="skills",
                   help="pretrained model: a shipped name (skills, names) or a checkpoint path (default skills)")
    p.add_argument("--targets", default=",".join(DEFAULT_TARGETS),
                   help=f"comma-separated module names to adapt (default {','.join(DEFAULT_TARGETS)})")


def _comma_list(text: str) -> list[str]:
    """The non-empty, stripped items of a comma-separated option: ``"a, b,"`` → ``["a", "b"]``."""
    return [item.strip() for item in text.split(",") if item.strip()]


def _targets(args: argparse.Namespace) -> list[str]:
    """The module names of ``--targets``."""
    return _comma_list(args.targets)


_TASK_HELP = "task to adapt to (e.g. reverse-shift, subtract, sort, first-names)"


def _finetune_args(p: argparse.ArgumentParser) -> None:
    _base_and_targets_args(p)
    p.add_argument("--task", required=True, help=_TASK_HELP)
    p.add_argument("--method", choices=["full", "lora"], default="lora", help="full fine-tuning or LoRA (default lora)")
    p.add_argument("--rank", type=positive_int, default=4, help="LoRA rank r (default 4)")
    p.add_argument("--alpha", type=positive_float, default=None, help="LoRA alpha (default: alpha = r, scaling 1)")
    p.add_argument("--out", default=None, help="output folder: model or adapter, run.json, history.json, checkpoint "
                                               "(default runs/finetune-TASK-METHOD[-rR]-sSEED, a new one per run)")
    _train_args(p, steps=2000, lr=1e-2)


@command("finetune", "fine-tune a pretrained GPT: full or LoRA", _finetune_args)
def _finetune(args: argparse.Namespace) -> int:
    from minilora.data import get_task
    from minilora.experiments.runs import default_run_folder, finetune

    get_task(args.task)  # an unknown task is refused before a folder is named after it
    _check_warmup(args)
    if args.out is None:  # the command picks the folder: say which (an --out the user typed is not echoed)
        rank = args.rank if args.method == "lora" else None
        args.out = str(default_run_folder(args.task, args.method, rank, args.seed, fresh=not (args.resume or args.overwrite)))
        print(f"run folder: {args.out}", flush=True)
    config = _train_config(args, weight_decay=0.0)
    model, result = finetune(args.base, args.task, args.method, config, out_dir=args.out, rank=args.rank,
                             alpha=args.alpha, targets=_targets(args), device=args.device, resume=args.resume,
                             on_eval=_intermediate_evals(config.steps), overwrite=args.overwrite)
    if result.already_finished:
        _already_finished(args.out, result)
    trainable, total = model.num_parameters(trainable_only=True), model.num_parameters()
    print(f"{args.method} fine-tuning: {trainable:,} of {total:,} parameters trainable ({100 * trainable / total:.2f}%)")
    _print_metrics(f"after {config.steps} steps ({result.seconds:.0f} s), held-out {args.task}:", result.final_metrics)
    if not result.already_finished:
        print(f"wrote {args.out}")
    return 0


def _compare_args(p: argparse.ArgumentParser) -> None:
    from minilora.experiments.compare import DEFAULT_LR

    p.add_argument("--task", required=True, help=_TASK_HELP)
    _base_and_targets_args(p)
    p.add_argument("--ranks", type=ranks_list, default="1,2,4,8", help="comma-separated LoRA ranks, one run each (default 1,2,4,8)")
    p.add_argument("--steps", type=positive_int, default=1000, help="training steps of every run (default 1000)")
    p.add_argument("--batch-size", type=positive_int, default=64, help="sequences per step (default 64)")
    p.add_argument("--warmup", type=nonnegative_int, default=None, help="warm-up steps (default: 5%% of steps)")
    p.add_argument("--lr-full", type=positive_float, default=DEFAULT_LR["full"], help=f"peak lr of full fine-tuning (default {DEFAULT_LR['full']})")
    p.add_argument("--lr-lora", type=positive_float, default=DEFAULT_LR["lora"], help=f"peak lr of LoRA (default {DEFAULT_LR['lora']})")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="seed of data order and LoRA initialisation (default 0)")
    p.add_argument("--seeds", type=seeds_list, default=None,
                   help="comma-separated seeds, every run once per seed, with mean ± std (e.g. 0,1,2; default: --seed)")
    p.add_argument("--jobs", type=positive_int, default=1,
                   help="runs in parallel, one BLAS thread each (default 1: in this process)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: MINILORA_DEVICE or cpu)")
    p.add_argument("--out", default=None, help="output folder: weights per run and compare.json (default runs/compare-TASK)")
    p.add_argument("--json", action="store_true", help="print compare.json to stdout instead of the table")
    _out_args(p, "compare run")


COMPARE_LEGEND = ("columns: r LoRA rank; trainable weights and their % of all; the task's held-out metric; final "
                  "training loss; median step ms; peak training MiB (CPU); AdamW state KiB; weights file KiB; forward "
                  "ms of the base model and with the adapters merged / unmerged (overhead in %)")


@command("compare", "full fine-tuning vs LoRA at several ranks, same budget, one table", _compare_args)
def _compare(args: argparse.Namespace) -> int:
    from pathlib import Path

    from minilora.experiments.compare import COMPARE_FILE, compare, format_seed_summary, format_table

    _check_warmup(args)
    out = Path(args.out or f"runs/compare-{args.task}")
    args.out = str(out)  # where Ctrl-C's resume line points
    targets = _targets(args)

    def report(row: dict) -> None:
        print(f"{row['run']}: {row['metric']} {row['metric_value']:.3f} after {row['train_seconds']:.0f} s", file=sys.stderr)

    rows = compare(args.task, base=args.base, ranks=args.ranks, steps=args.steps, batch_size=args.batch_size,
                   lr_full=args.lr_full, lr_lora=args.lr_lora, targets=targets, seed=args.seed, warmup_steps=args.warmup,
                   device=args.device, out_dir=out, on_row=report, resume=args.resume, overwrite=args.overwrite,
                   seeds=args.seeds, jobs=args.jobs)
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


def _params_args(p: argparse.ArgumentParser) -> None:
    _base_and_targets_args(p)
    p.add_argument("--rank", type=positive_int, default=4, help="LoRA rank r (default 4)")


@command("params", "LoRA parameter accounting: d·k vs r(d+k) per adapted matrix, and GPT-3's numbers", _params_args)
def _params(args: argparse.Namespace) -> int:
    from minilora.lora import LoraConfig, apply_lora, count_parameters, lora_param_count, lora_report
    from minilora.experiments.runs import load_base

    model = apply_lora(load_base(args.base), LoraConfig(r=args.rank, target_modules=tuple(_targets(args))))
    print(lora_report(model).table)
    print("columns: W is d×k (out×in); d·k its weights, r(d+k) LoRA's trainable A (r×k) and B (d×r), ratio r(d+k)/(d·k)")
    print(count_parameters(model))
    print("\nThe LoRA paper's GPT-3 175B (d_model 12288, 96 layers), adapting W_q and W_v:")
    for r in (1, 8):
        print(f"  r = {r}: {lora_param_count(12288, 96, r, targets=('q', 'v')):>12,} trainable parameters")
    return 0


def _model_args(p: argparse.ArgumentParser) -> None:
    """MODEL and --base, shared by the commands that use a trained model."""
    p.add_argument("model", help="a shipped model (skills, names), a pretrain or fine-tuning run folder, a model file, "
                                 "or a LoRA adapter folder")
    p.add_argument("--base", default=None, help="the base model of an adapter (default: the base its files record)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: MINILORA_DEVICE or cpu)")


def _generate_args(p: argparse.ArgumentParser) -> None:
    _model_args(p)
    p.add_argument("--prompt", required=True, help="text to continue, e.g. 'Tabc=' (skills) or '.ma' (names)")
    p.add_argument("--max-new-tokens", type=positive_int, default=20, help="at most this many new characters (default 20)")
    p.add_argument("--temperature", type=nonnegative_float, default=0.0,
                   help="sampling temperature; 0 (the default) is greedy decoding")
    p.add_argument("--top-k", type=positive_int, default=None, help="sample only among the k most likely characters")
    p.add_argument("--samples", type=positive_int, default=1, help="how many continuations to print (default 1)")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="seed of the sampling (default 0)")
    p.add_argument("--task", default=None, help="the task whose characters the model reads (default: the one it was trained on)")


def _load_model_and_task(args: argparse.Namespace) -> tuple[Any, Any]:
    """The model ``args.model`` names (shipped, run folder or adapter) and the task to use it on:
    ``--task``, else the task it was trained on; a task written in another vocabulary is refused."""
    from minilora.data import get_task
    from minilora.experiments.runs import load_trained

    model, trained_on = load_trained(args.model, base=args.base, device=args.device)
    task = args.task or trained_on
    if task is None:
        raise ValueError(f"{args.model} does not record the task it was trained on; pass --task")
    task_obj = get_task(task)
    if task_obj.tokenizer.vocab_size != model.config.vocab_size:
        raise ValueError(f"task {task!r} has {task_obj.tokenizer.vocab_size} tokens but {args.model} reads "
                         f"{model.config.vocab_size}; pass a task in the model's vocabulary (see minilora tasks)")
    return model, task_obj


@command("generate", "continue a prompt with a shipped model, a trained run or a LoRA adapter", _generate_args)
def _generate(args: argparse.Namespace) -> int:
    import numpy as np

    model, task = _load_model_and_task(args)
    tokenizer = task.tokenizer
    if not args.prompt:
        raise ValueError("--prompt is empty; give at least one character to continue")
    ids = np.array([tokenizer.encode(args.prompt)] * args.samples, dtype=np.int64)  # (samples, P)
    out = model.generate(ids, args.max_new_tokens, temperature=args.temperature, top_k=args.top_k, rng=args.seed)
    for row in out[:, ids.shape[1]:]:
        text = tokenizer.decode(row)
        print(args.prompt + (text[: text.index(".") + 1] if "." in text else text))  # "." ends every example
    return 0


def _evaluate_args(p: argparse.ArgumentParser) -> None:
    _model_args(p)
    p.add_argument("--task", default=None, help="task to score on (default: the one the model was trained on)")


@command("evaluate", "score a shipped model, a trained run or a LoRA adapter on a task's held-out set", _evaluate_args)
def _evaluate(args: argparse.Namespace) -> int:
    model, task = _load_model_and_task(args)
    _print_metrics(f"{args.model} on {task.name} (held-out):", task.evaluate(model))
    return 0


def _bench_args(p: argparse.ArgumentParser) -> None:
    from minilora.bench.steps import build_parser

    build_parser(p)


@command("bench", "training-step time, FLOP/s and memory of named configs (beside PyTorch when installed)", _bench_args)
def _bench(args: argparse.Namespace) -> int:
    from minilora.bench.steps import run_from_args

    return run_from_args(args)


def _figures_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dir", default="figures", help="folder of the JSON results and PNGs (default figures), or a "
                                                    "`minilora compare` folder (draws its full-vs-lora.png)")
    p.add_argument("--rerun", action="store_true",
                   help="recompute the results first (minilora compare for each of the 4 tasks: about 4 CPU-minutes; "
                        "then minilora lora-paper: 186 runs, about 40 minutes with --jobs 2; then minilora "
                        "intrinsic: about 47 minutes with --jobs 2)")
    p.add_argument("--jobs", type=positive_int, default=None,
                   help="worker processes for --rerun's sweeps, one BLAS thread each (default: all cores)")


@command("figures", "redraw the figures from their JSON results (--rerun recomputes the results)", _figures_args)
def _figures(args: argparse.Namespace) -> int:
    import json
    import tempfile
    from pathlib import Path

    from minilora.io import atomic_write_json
    from minilora.plots import FIGURE_RUNS, draw_figures

    if args.rerun:
        from minilora.experiments.compare import COMPARE_FILE, compare
        from minilora.io import check_writable_folder

        check_writable_folder(args.dir, "--dir")  # before minutes of training, not after

        for task, base in FIGURE_RUNS:
            with tempfile.TemporaryDirectory() as tmp:
                compare(task, base=base, out_dir=tmp)
                result = json.loads((Path(tmp) / COMPARE_FILE).read_text())
            atomic_write_json(Path(args.dir) / f"compare-{task}.json", result)
        from minilora.experiments.lora_paper import lora_paper

        lora_paper(out_dir=args.dir, jobs=args.jobs)
        from minilora.experiments.intrinsic import run_intrinsic

        run_intrinsic(json_dir=args.dir, jobs=args.jobs)  # runs cached in runs/intrinsic: a rerun resumes
    for path in draw_figures(args.dir):
        print(f"wrote {path}")
    return 0


def _lora_paper_args(p: argparse.ArgumentParser) -> None:
    from minilora.experiments.lora_paper import EXPERIMENTS

    p.add_argument("--fast", action="store_true", help="a reduced set (one task each, 60 steps): about a minute")
    p.add_argument("--jobs", type=positive_int, default=None, help="runs in parallel, one BLAS thread each (default: all cores)")
    p.add_argument("--out", default=None, help="where the JSON results and PNGs go (default figures; with --fast "
                                               "runs/lora-paper-fast)")
    p.add_argument("--runs", default=None, help="the resumable run cache (default runs/lora-paper[-fast])")
    p.add_argument("--only", default=None, help=f"comma-separated experiments (default all: {','.join(EXPERIMENTS)})")


@command("lora-paper", "the LoRA paper's analyses with seeds: rank sweep (Table 6), fixed budget (Table 5), "
                       "what ΔW learns (Section 7, Table 7)", _lora_paper_args)
def _lora_paper(args: argparse.Namespace) -> int:
    from minilora.experiments.lora_paper import format_summary, lora_paper
    from minilora.plots import draw_lora_paper_figures

    out = args.out or ("runs/lora-paper-fast" if args.fast else "figures")
    only = None if args.only is None else _comma_list(args.only)
    results = lora_paper(out_dir=out, runs_dir=args.runs, fast=args.fast, only=only, jobs=args.jobs)
    print(format_summary(results))
    for path in draw_lora_paper_figures(out):
        print(f"wrote {path}")
    return 0


def _intrinsic_args(p: argparse.ArgumentParser) -> None:
    from minilora.experiments.intrinsic import EXPERIMENTS

    p.add_argument("--fast", action="store_true", help="a quick look: one seed, 100 steps, fewer d (about a minute with --jobs 2)")
    p.add_argument("--jobs", type=positive_int, default=None, help="runs in parallel, one BLAS thread each (default: all cores)")
    p.add_argument("--out", default=None, help="run cache and pretraining snapshots (default runs/intrinsic[-fast])")
    p.add_argument("--figures", default=None, help="where the JSON results and PNGs go (default figures; with --fast: OUT)")
    p.add_argument("--only", default=None, help=f"comma-separated experiments (default all: {','.join(EXPERIMENTS)})")


@command("intrinsic", "intrinsic dimension: d90 of subspace training (pretrained vs random, along pretraining, "
                      "width, SAID, projections, parameter budget)", _intrinsic_args)
def _intrinsic(args: argparse.Namespace) -> int:
    import time

    from minilora.experiments.intrinsic import format_table, run_intrinsic
    from minilora.plots import draw_intrinsic_figures

    out = args.out or ("runs/intrinsic-fast" if args.fast else "runs/intrinsic")
    figures = args.figures or (out if args.fast else "figures")
    only = None if args.only is None else _comma_list(args.only)
    start = time.perf_counter()
    results = run_intrinsic(only=only, fast=args.fast, out_dir=out, json_dir=figures, jobs=args.jobs)
    print(format_table(results))
    print(f"d90: the smallest d whose seed-mean metric reaches the target = 0.9 x baseline (full fine-tuning, same "
          f"budget), interpolated on log d; {time.perf_counter() - start:.0f} s")
    for path in draw_intrinsic_figures(figures):
        print(f"wrote {path}")
    return 0


def _demo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="runs/demo", help="folder for the demo's runs, JSON and figures "
                                                      "(default runs/demo; a rerun there reuses finished runs)")
    p.add_argument("--jobs", type=positive_int, default=None, help="runs in parallel, one BLAS thread each (default: all cores)")


@command("demo", "the project in about 20 seconds on 2 cores: LoRA's parameter arithmetic, full fine-tuning vs LoRA, a fast "
                 "intrinsic-dimension sweep (d90), figures", _demo_args)
def _demo(args: argparse.Namespace) -> int:
    import time

    from minilora.experiments.demo import NOTEBOOKS, format_demo, run_demo
    from minilora.plots import draw_intrinsic_figures, load_compare, plot_compare

    start = time.perf_counter()
    result = run_demo(args.out, jobs=args.jobs)
    arithmetic, side_by_side, budget, d90 = format_demo(result)
    settings = result["settings"]
    print(f"\n1. {arithmetic}")
    print(f"\n2. full fine-tuning vs LoRA on {settings['task']} from the shipped {settings['base']} model, "
          f"{settings['steps']} steps each (held-out {result['compare'][0]['metric']} on {settings['n_eval']} examples)")
    print(side_by_side)
    print(COMPARE_LEGEND)
    print(f"\n3. intrinsic dimension on {settings['task']}: train only z in θ = θ0 + P z (Fastfood P), "
          f"{settings['intrinsic']['steps']} steps per run, one seed")
    print(budget)
    print(d90)
    figures = [plot_compare([load_compare(result["files"]["compare"])], Path(args.out) / "full-vs-lora.png"),
               *draw_intrinsic_figures(args.out)]
    print("\nfigures: " + ", ".join(str(f) for f in figures))
    print(f"demo finished in {time.perf_counter() - start:.0f} s with {settings['jobs']} jobs; results in {args.out}. "
          f"Next, the notebooks:\n  " + "\n  ".join(NOTEBOOKS))
    return 0


@command("tasks", "list the tasks: what each is for, its metric, vocabulary and an example")
def _tasks(args: argparse.Namespace) -> int:
    import numpy as np

    from minilora.data import FINETUNE_SKILLS, PRETRAIN_SKILLS, SKILLS, get_task, list_tasks

    roles = {**dict.fromkeys(PRETRAIN_SKILLS, "pretraining skill"), **dict.fromkeys(FINETUNE_SKILLS, "fine-tuning skill"),
             "pretrain": "pretraining: the 4 skills mixed", "skills-mix": "pretraining: the 4 skills mixed",
             "surnames": "pretraining: surnames", "first-names": "fine-tuning: first names"}
    for name in list_tasks():
        task = get_task(name)
        skill = SKILLS.get(name)
        example = skill.example(skill.space.sample(np.random.default_rng(0), 1)[0]) if skill else ""
        print(f"{name:15s} {roles.get(name, ''):32s} metric {task.metric:14s} vocab {task.tokenizer.vocab_size:3d}  "
              f"block {task.block_size:3d}  {example}".rstrip())
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``minilora`` parser with one subparser per registered command."""
    from minilora import __version__

    parser = _Parser(prog="minilora", description="LoRA from scratch: engine, tiny GPT, full fine-tuning vs LoRA.")
    parser.add_argument("--version", action="version", version=f"minilora {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, arguments, help_text) in _COMMANDS.items():
        arguments(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def _interrupted(args: argparse.Namespace, argv: list[str]) -> str:
    """The one line printed after Ctrl-C: where the progress is and the exact command that resumes it."""
    out = getattr(args, "out", None)
    if not hasattr(args, "resume") or out is None or not Path(out).is_dir() or not any(Path(out).iterdir()):
        return "interrupted; nothing was saved"
    again = [a for a in argv if a != "--overwrite"]
    if "--out" not in again and not any(a.startswith("--out=") for a in again):
        again += ["--out", str(out)]
    if "--resume" not in again:
        again.append("--resume")
    return f"interrupted; progress saved in {out}; resume with: minilora {shlex.join(again)}"


def main(argv: list[str] | None = None) -> int:
    """Run ``minilora COMMAND ...``; user errors print one line and exit with 2, Ctrl-C one line and exit 130."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help and --version exit 0 as usual; a bad option returns 2 like any user error
        if exit_.code == 2:
            return 2
        raise
    if args.command is None:
        parser.print_help()
        return 0
    import numpy as np

    from minilora.backend import keep_freed_host_memory

    keep_freed_host_memory()  # a command is its own process: reuse freed memory, no page faults per step
    try:
        # a loss that turns NaN or infinite is reported once, as one line, by the divergence check: NumPy's
        # overflow / invalid-value warnings on the way there would only bury that line
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return _COMMANDS[args.command][0](args)
    except (ValueError, OSError) as err:
        print(f"minilora {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"minilora {args.command}: {_interrupted(args, argv)}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
