"""``minilora pretrain`` and ``minilora finetune``: one training run into one run folder."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from minilora.cli.methods import add_method, method_settings
from minilora.cli.options import (
    add_device,
    add_out,
    add_reuse,
    add_training,
    base_model,
    check_warmup,
    train_config,
)

__all__ = ["COMMANDS", "print_metrics"]


def print_metrics(title: str, metrics: dict) -> None:
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
    from minilora.models.configs import MODEL_SIZES

    p.add_argument("--recipe", default=None, help="a shipped model's recipe (skills, names, skills-width-32, ...: see "
                                                  "minilora.models.zoo.RECIPES): sets task, size, width, steps, lr, "
                                                  "batch size, warm-up and seed, replacing those options, and the "
                                                  "snapshots it saves")
    p.add_argument("--task", default="pretrain", help="task to pretrain on (see `minilora tasks`)")
    p.add_argument("--size", default="tiny", help=f"model size: {', '.join(MODEL_SIZES)} (default tiny)")
    add_out(p, "the run folder (model.safetensors, run.json, history.json, checkpoint)", required=True)
    add_training(p, steps=9000, lr=2e-3, weight_decay=0.1)
    add_reuse(p, "run")
    add_device(p)


def _pretrain(args: argparse.Namespace) -> int:
    from minilora.experiments.runs import pretrain

    task_kwargs: dict = {}
    recipe: dict = {}
    if args.recipe is not None:
        from minilora.models.zoo import RECIPES

        if args.recipe not in RECIPES:
            raise ValueError(f"argument --recipe: unknown recipe {args.recipe!r}; expected one of {sorted(RECIPES)}")
        r = RECIPES[args.recipe]
        args.task, args.size, args.steps, args.lr = r.task, r.size, r.steps, r.lr
        args.batch_size, args.warmup_steps, args.seed = r.batch_size, r.warmup_steps, r.seed
        task_kwargs, recipe = dict(r.task_kwargs), {"n_embd": r.n_embd, "snapshots": r.snapshots}
    config = train_config(args)
    _, result = pretrain(args.task, args.size, config, out=args.out, device=args.device, resume=args.resume,
                         extra={"recipe": args.recipe}, on_eval=_intermediate_evals(config.steps),
                         overwrite=args.overwrite, task_kwargs=task_kwargs, **recipe)
    if result.already_finished:
        _already_finished(args.out, result)
    print_metrics(f"pretrained on {args.task} ({config.steps} steps, {result.seconds:.0f} s); test:",
                  result.final_metrics)
    if not result.already_finished:
        print(f"wrote {args.out}/model.safetensors")
    return 0


def add_base(p: argparse.ArgumentParser) -> None:
    """--base: the pretrained model that a command adapts."""
    p.add_argument("--base", type=base_model, default="skills",
                   help="pretrained model: a shipped name (skills, names) or a model file or run "
                   "folder (default skills)")


def _finetune_args(p: argparse.ArgumentParser) -> None:
    add_base(p)
    p.add_argument("--task", required=True, help="task to adapt to (e.g. reverse-shift, subtract, sort, first-names)")
    from minilora.experiments.runs import FINETUNE_METHODS

    add_method(p, list(FINETUNE_METHODS), default="lora")
    add_out(p, "the run folder: model or adapter, run.json, history.json, checkpoint "
               "(default runs/finetune-TASK-METHOD[-rR]-sSEED, a new one per run)")
    add_training(p, steps=2000, lr=1e-2)
    add_reuse(p, "run")
    add_device(p)


def _finetune(args: argparse.Namespace) -> int:
    from minilora.data import get_task
    from minilora.experiments.methods import get_method
    from minilora.experiments.runs import default_run_folder, finetune
    from minilora.lora import count_parameters

    get_task(args.task)  # an unknown task is refused before a folder is named after it
    check_warmup(args)
    settings = method_settings(args)
    if args.out is None:  # the command picks the folder: say which (an --out the user typed is not echoed)
        fresh = not (args.resume or args.overwrite)
        args.out = str(default_run_folder(args.task, args.method, settings.get("r"), args.seed, fresh=fresh))
        print(f"run folder: {args.out}", flush=True)
    config = train_config(args)
    model, result = finetune(args.base, args.task, args.method, config, out=args.out, settings=settings,
                             device=args.device, resume=args.resume, on_eval=_intermediate_evals(config.steps),
                             overwrite=args.overwrite)
    if result.already_finished:
        _already_finished(args.out, result)
    # total counts a QLoRA base's 4-bit weights too (they are not Parameters): see lora.accounting.stored_weights
    trainable, total = get_method(args.method).trainable(model), count_parameters(model).total
    print(f"{args.method} fine-tuning: {trainable:,} of {total:,} parameters trainable "
          f"({100 * trainable / total:.2f}%)")
    print_metrics(f"after {config.steps} steps ({result.seconds:.0f} s), test {args.task}:", result.final_metrics)
    if not result.already_finished:
        print(f"wrote {args.out}")
    return 0


COMMANDS = [
    ("pretrain", "pretrain a GPT from scratch on a task", _pretrain_args, _pretrain),
    ("finetune", "fine-tune a pretrained GPT: full or LoRA", _finetune_args, _finetune),
]
