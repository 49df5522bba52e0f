"""``minilora selfcheck``, ``minilora tasks`` and ``minilora params``: the engine, the tasks, LoRA's arithmetic."""

from __future__ import annotations

import argparse

from minilora.cli.methods import add_settings, method_settings
from minilora.cli.options import add_device, positive_int
from minilora.cli.train import add_base

__all__ = ["COMMANDS"]


def _selfcheck_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--steps", type=positive_int, default=300, help="training steps of the tiny MLP (default 300)")
    add_device(p)


def _selfcheck(args: argparse.Namespace) -> int:
    from minilora.experiments.selfcheck import run_selfcheck

    result = run_selfcheck(steps=args.steps, device=args.device)
    return 0 if result["last_loss"] < result["first_loss"] else 1


def _tasks(args: argparse.Namespace) -> int:
    from minilora.data import get_task, list_tasks, task_info

    for name in list_tasks():
        task, info = get_task(name), task_info(name)
        print(f"{name:14s} {info.role:11s}  metric {task.metric:13s}  vocab {task.tokenizer.vocab_size:2d}  "
              f"block {task.block_size:2d}  {info.description}, e.g. {info.example}")
    return 0


def _params_args(p: argparse.ArgumentParser) -> None:
    add_base(p)
    add_settings(p, "lora", ["r", "target_modules"])


def _params(args: argparse.Namespace) -> int:
    from minilora.experiments.methods import get_method
    from minilora.experiments.runs import load_base
    from minilora.lora import count_parameters, lora_report
    from minilora.lora.accounting import GPT3_175B, gpt3_lora_param_count

    model = get_method("lora").prepare(load_base(args.base), method_settings(args, "lora"))
    print(lora_report(model).table)
    print("columns: W is d×k (out×in); d·k its weights, r(d+k) LoRA's trainable A (r×k) and B "
          "(d×r), ratio r(d+k)/(d·k)")
    print(count_parameters(model))
    print(f"\nThe LoRA paper's {GPT3_175B.name} (d_model {GPT3_175B.d_model}, {GPT3_175B.n_layers} layers), "
          f"adapting W_q and W_v:")
    for r in (1, 8):
        print(f"  r = {r}: {gpt3_lora_param_count(r):>12,} trainable parameters")
    return 0


COMMANDS = [
    ("selfcheck", "gradcheck a tiny MLP and watch it learn (seconds)", _selfcheck_args, _selfcheck),
    ("tasks", "list the tasks: what each is for (role, description), its metric, vocabulary and an example",
     lambda p: None, _tasks),
    ("params", "LoRA parameter accounting: d·k vs r(d+k) per adapted matrix, and GPT-3's numbers", _params_args,
     _params),
]
