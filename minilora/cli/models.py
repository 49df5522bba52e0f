"""``minilora generate`` and ``minilora evaluate``: use a shipped model, a trained run or a LoRA adapter."""

from __future__ import annotations

import argparse
from typing import Any

from minilora.cli.options import (
    add_device,
    base_model,
    nonnegative_float,
    nonnegative_int,
    positive_int,
)
from minilora.cli.train import print_metrics

__all__ = ["COMMANDS", "MAX_NEW_TOKENS"]

MAX_NEW_TOKENS = 10_000  # a sample ends at its end-of-sample token long before; more is a typo, not a request


def _max_new_tokens(text: str) -> int:
    """--max-new-tokens: an integer from 1 to ``MAX_NEW_TOKENS``."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_NEW_TOKENS:
        raise argparse.ArgumentTypeError(f"expected an integer from 1 to {MAX_NEW_TOKENS:,}, got {text!r}")
    return value


def _model_args(p: argparse.ArgumentParser) -> None:
    """MODEL and --base, shared by the commands that use a trained model."""
    p.add_argument("model", help="a shipped model (skills, names), a pretrain or fine-tuning run folder, a model file, "
                                 "or a LoRA adapter folder")
    p.add_argument("--base", type=base_model, default=None,
                   help="the base model of an adapter (default: the base its files record)")
    add_device(p)


def _generate_args(p: argparse.ArgumentParser) -> None:
    _model_args(p)
    p.add_argument("--prompt", required=True, help="text to continue, e.g. 'Tabc=' (skills) or '.ma' (names)")
    p.add_argument("--max-new-tokens", type=_max_new_tokens, default=20,
                   help=f"at most this many new characters; a sample stops at its end mark (default 20, "
                        f"at most {MAX_NEW_TOKENS:,})")
    p.add_argument("--temperature", type=nonnegative_float, default=0.0,
                   help="sampling temperature; 0 (the default) is greedy decoding")
    p.add_argument("--top-k", type=positive_int, default=None, help="sample only among the k most likely characters")
    p.add_argument("--samples", type=positive_int, default=1, help="how many continuations to print (default 1)")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="seed of the sampling (default 0)")
    p.add_argument("--task", default=None,
                   help="the task whose characters the model reads (default: the one it was trained on)")


def _load_model_and_task(args: argparse.Namespace, n_eval: int | None = None) -> tuple[Any, Any]:
    """The model ``args.model`` names (shipped, run folder or adapter) and the task to use it on:
    ``--task``, else the task it was trained on (with ``n_eval`` held-out inputs per split when given); a task
    written in another vocabulary is refused."""
    from minilora.data import get_task
    from minilora.experiments.runs import load_trained
    from minilora.lora import AdapterBaseMismatch

    try:
        model, trained_on = load_trained(args.model, base=args.base, device=args.device)
    except AdapterBaseMismatch as err:  # its own words name a Python argument; a CLI user has --base
        said = str(err).split("; load it onto")[0]
        raise ValueError(f"{said}; pass the base it was trained on with --base (or leave --base out: the adapter "
                         f"records its base)") from None
    task = args.task or trained_on
    if task is None:
        raise ValueError(f"{args.model} does not record the task it was trained on; pass --task")
    try:
        task_obj = get_task(task) if n_eval is None else get_task(task, n_eval=n_eval)
    except TypeError:  # the task takes no n_eval: its held-out sets are fixed fractions of its data
        raise ValueError(f"argument --n-eval: task {task!r} has fixed held-out sets; --n-eval applies to the skill "
                         f"tasks (see minilora tasks)") from None
    if task_obj.tokenizer.vocab_size != model.config.vocab_size:
        raise ValueError(f"task {task!r} has {task_obj.tokenizer.vocab_size} tokens but {args.model} reads "
                         f"{model.config.vocab_size}; pass a task in the model's vocabulary (see minilora tasks)")
    return model, task_obj


def _generate(args: argparse.Namespace) -> int:
    import numpy as np

    if not args.prompt:
        raise ValueError("argument --prompt: empty; give at least one character to continue")
    model, task = _load_model_and_task(args)
    tokenizer = task.tokenizer
    stop = tokenizer.eos_id
    ids = np.array([tokenizer.encode(args.prompt)] * args.samples, dtype=np.int64)  # (samples, P)
    out = model.generate(ids, args.max_new_tokens, temperature=args.temperature, top_k=args.top_k, rng=args.seed,
                         stop_token=stop)
    for row in out[:, ids.shape[1]:]:
        ended = list(row).index(stop) + 1 if stop in row else len(row)  # the end mark is printed, its padding not
        print(args.prompt + tokenizer.decode(row[:ended]))
    return 0


def _evaluate_args(p: argparse.ArgumentParser) -> None:
    _model_args(p)
    p.add_argument("--task", default=None, help="task to score on (default: the one the model was trained on)")
    p.add_argument("--split", choices=("test", "validation"), default="test",
                   help="which held-out set to score on (default test)")
    p.add_argument("--n-eval", type=positive_int, default=None, metavar="N",
                   help="held-out inputs per split (default: the task's own, 500 for the skill tasks); a task with "
                        "few held-out inputs (subtract) needs a smaller N for a validation split")


def _evaluate(args: argparse.Namespace) -> int:
    model, task = _load_model_and_task(args, n_eval=args.n_eval)
    try:
        metrics = task.evaluate(model, split=args.split)
    except ValueError as err:  # the data layer names its Python argument; a CLI user has --n-eval
        raise ValueError(str(err).replace("pass n_eval=", "pass --n-eval ")) from None
    print_metrics(f"{args.model} on {task.name} ({args.split}):", metrics)
    return 0


COMMANDS = [
    ("generate", "continue a prompt with a shipped model, a trained run or a LoRA adapter", _generate_args, _generate),
    ("evaluate", "score a shipped model, a trained run or a LoRA adapter on a task's test (or validation) set",
     _evaluate_args, _evaluate),
]
