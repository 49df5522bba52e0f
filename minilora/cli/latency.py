"""``minilora latency``: the LoRA paper's Table 1 on this machine (experiments/latency.py), a table and a figure."""

from __future__ import annotations

import argparse
import sys
import time

from minilora.cli.options import add_device, add_json, add_out, positive_int

__all__ = ["COMMANDS"]


def _latency_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fast", action="store_true", help="a tiny model, 2 batch sizes, 3 rounds: seconds (for tests)")
    p.add_argument("--repeats", type=positive_int, default=None,
                   help="timed rounds per cell (default 25; 3 with --fast)")
    add_out(p, "where latency.json and latency.png go (default runs/latency, with --fast runs/latency-fast)")
    add_json(p, "latency.json")
    add_device(p)


def _latency(args: argparse.Namespace) -> int:
    from minilora.experiments.latency import format_table, run_latency
    from minilora.plots.latency import draw_latency_figure

    out = args.out or ("runs/latency-fast" if args.fast else "runs/latency")
    start = time.perf_counter()
    result = run_latency(out=out, fast=args.fast, repeats=args.repeats, device=args.device,
                         on_cell=lambda b, t: print(f"timing batch {b}, sequence {t}", file=sys.stderr, flush=True))
    png = draw_latency_figure(out)
    if args.json:
        import json

        print(json.dumps(result, indent=2))
        return 0
    s = result["settings"]
    print(f"one forward pass, {s['model']} GPT ({s['config']['n_layer']} layers, C={s['config']['n_embd']}), random "
          f"weights, median ± IQR/2 ms of {s['repeats']} rounds, 1 BLAS thread; (%) over the base")
    print(format_table(result))
    cost = result["prefix_cost"][-1]
    print(f"prefix p={cost['num_virtual_tokens']}: {cost['keys_per_query']} keys per query at T={cost['seq_len']} "
          f"(attention x{cost['attention_ratio']:.2f}), +{cost['kv_cache_extra']:,} cached numbers per sequence; "
          f"takes {cost['positions_taken']} positions here ({cost['positions_taken_peft']} in HF GPT-2 + PEFT)")
    print(f"wrote {out}/latency.json and {png} ({time.perf_counter() - start:.0f} s)")
    return 0


COMMANDS = [
    ("latency", "the LoRA paper's Table 1: forward latency of LoRA, adapters and prefix-tuning", _latency_args,
     _latency),
]
