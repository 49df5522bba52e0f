"""``minilora quant-report``: the numbers of QLoRA a learner can check — bits per weight, bytes resident while
training (full / LoRA / QLoRA), NF4's error against a uniform 4-bit code, the time to quantise, and the merge pitfall.

Bytes resident while training, per method (AdamW keeps two moments per trainable number):

    weights = bytes of every stored array (float32 Parameters, NF4 codes and scales of the 4-bit layers)
    grads   = 4 · (trainable numbers)          adamw = 2 · 4 · (trainable numbers)

Full fine-tuning pays 16 bytes per weight; LoRA pays 4 per frozen weight plus 16 per adapter number; QLoRA pays
≈ 4.127 / 8 ≈ 0.52 byte per quantised weight plus 16 per adapter number.  What these formulas leave out is what
lives *during* a step: activations, and for QLoRA one dequantised float32 weight at a time (``live``, measured).
"""

from __future__ import annotations

import time
import tracemalloc
from typing import Any

import numpy as np

from minilora import nn
from minilora.experiments.methods import get_method
from minilora.models import GPT, GPTConfig
from minilora.quant import (
    Linear4bit,
    dequantize_nf4,
    merge_and_requantize,
    quantize_model,
    quantize_nf4,
    stored_bytes,
)
from minilora.quant.nf4 import uniform4_roundtrip

__all__ = ["ERROR_BLOCKSIZES", "LORA_SETTINGS", "bits_per_parameter", "format_report", "merge_pitfall",
           "quant_report", "quantization_errors", "quantize_seconds", "resident_bytes", "step_live_bytes"]

ERROR_BLOCKSIZES = (64, 256, 4096)
BNB_REPORTED_MAE = {64: 0.0728, 256: 0.0803, 4096: 0.0925}  # bitsandbytes' tests, 1024 x 1024 N(0, 1), NF4
LORA_SETTINGS = {"r": 8, "target_modules": ["q_proj", "v_proj"]}  # the benchmark's LoRA (bench/steps.py)


def _models() -> dict[str, Any]:
    """name → a function making a fresh model: the shipped skills model and the benchmark models."""
    from minilora.bench.steps import BENCH_CONFIGS
    from minilora.models.zoo import pretrained

    models: dict[str, Any] = {"skills": lambda: pretrained("skills")}
    for name, bench in BENCH_CONFIGS.items():
        models[name] = lambda config=bench.model: GPT(config, seed=0)
    return models


def bits_per_parameter(shape: tuple[int, int] = (1024, 1024), blocksize: int = 64) -> dict[str, float]:
    """8 · stored bytes / weights of an NF4 matrix: 4 + 32/64 = 4.5 without double quantisation, 4 + 8/64 + 32/(64·256)
    ≈ 4.127 with it (computed from the arrays actually stored, so it includes the one float32 mean)."""
    w = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    return {"nf4": quantize_nf4(w, blocksize).bits_per_parameter,
            "nf4_double_quant": quantize_nf4(w, blocksize, double_quant=True).bits_per_parameter}


def resident_bytes(model: nn.Module) -> dict[str, int]:
    """Bytes a training step keeps resident for ``model`` (as prepared by a method): weights + grads + AdamW state."""
    weights = stored_bytes(model)["total"]
    trainable = sum(int(p.data.nbytes) for p in model.parameters() if p.requires_grad)
    row = {"weights": weights, "grads": trainable, "adamw": 2 * trainable}
    return {**row, "total": sum(row.values()), "trainable": sum(p.size for p in model.parameters() if p.requires_grad)}


def _prepared(make: Any, method: str) -> nn.Module:
    settings = {} if method == "full" else LORA_SETTINGS
    return get_method(method).prepare(make(), settings, seed=0)


def step_live_bytes(model: nn.Module, config: GPTConfig, batch_size: int = 8) -> int:
    """Peak bytes allocated during one forward + backward of ``model`` on a batch (tracemalloc, host only), above
    what was allocated before: activations, gradients and — for QLoRA — the transiently dequantised weights."""
    rng = np.random.default_rng(0)
    idx = rng.integers(0, config.vocab_size, (batch_size, config.block_size))
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        start, _ = tracemalloc.get_traced_memory()
        _, loss = model(idx, idx)
        loss.backward()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    model.zero_grad()
    return peak - start


def _layer_live(shape: tuple[int, int] = (1024, 1024)) -> dict[str, int]:
    """One 4-bit layer: the bytes it stores against the peak bytes of one forward + backward on 8 inputs."""
    layer = Linear4bit.from_linear(nn.Linear(shape[1], shape[0], bias=False, rng=0))
    from minilora.engine.tensor import Tensor

    x = Tensor(np.ones((8, shape[1]), np.float32), requires_grad=True)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        start, _ = tracemalloc.get_traced_memory()
        layer(x).sum().backward()
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return {"stored": layer.nbytes, "float32_weight": 4 * shape[0] * shape[1], "peak_during_step": peak - start,
            "kept_after_step": after - start}


def quantization_errors(blocksizes: tuple[int, ...] = ERROR_BLOCKSIZES, size: int = 1024) -> list[dict[str, Any]]:
    """Mean |w − ŵ| on a ``size`` × ``size`` N(0, 1) matrix (seed 0): NF4 and the uniform int4 code, per block size."""
    w = np.random.default_rng(0).standard_normal((size, size)).astype(np.float32)
    rows = []
    for blocksize in blocksizes:
        nf4 = float(np.abs(dequantize_nf4(quantize_nf4(w, blocksize)) - w).mean())
        uniform = float(np.abs(uniform4_roundtrip(w, blocksize) - w).mean())
        rows.append({"blocksize": blocksize, "nf4_mae": nf4, "uniform4_mae": uniform,
                     "bitsandbytes_reported_nf4_mae": BNB_REPORTED_MAE.get(blocksize)})
    return rows


def model_errors(blocksize: int = 64) -> dict[str, float]:
    """NF4 against uniform int4 on the skills model's own Linear weights (all but the head): ‖W − Ŵ‖_F / ‖W‖_F."""
    from minilora.models.zoo import pretrained

    model = pretrained("skills")
    nf4 = uniform = norm = 0.0
    for name, layer in model.named_modules():
        if isinstance(layer, nn.Linear) and name != "head":
            w = np.asarray(layer.weight.data, dtype=np.float32)
            nf4 += float(((dequantize_nf4(quantize_nf4(w, blocksize)) - w) ** 2).sum())
            uniform += float(((uniform4_roundtrip(w, blocksize) - w) ** 2).sum())
            norm += float((w ** 2).sum())
    return {"nf4_rel_error": (nf4 / norm) ** 0.5, "uniform4_rel_error": (uniform / norm) ** 0.5}


def quantize_seconds(repeats: int = 5) -> float:
    """Median seconds of ``quantize_model(skills)`` (NF4, blocksize 64, double quantisation; the model is loaded
    outside the timing)."""
    from minilora.models.zoo import pretrained

    times = []
    for _ in range(repeats):
        model = pretrained("skills")
        start = time.perf_counter()
        quantize_model(model)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def merge_pitfall(steps: int = 200, task: str = "subtract") -> dict[str, Any]:
    """Train QLoRA on the skills model for ``steps``, then merge the adapter by re-quantising: the largest and mean
    change of the effective weights, and the task's test accuracy unmerged vs merged."""
    from minilora.data.registry import get_task
    from minilora.models.zoo import pretrained
    from minilora.train import TrainConfig, train

    the_task = get_task(task)
    model = get_method("qlora").prepare(pretrained("skills"), {}, seed=0)
    train(model, the_task, TrainConfig(steps=steps, eval_every=0), desc="qlora")
    before = the_task.evaluate(model)[the_task.metric]
    changes = merge_and_requantize(model)
    after = the_task.evaluate(model)[the_task.metric]
    return {"task": task, "steps": steps, "metric": the_task.metric, "unmerged": before, "merged_requantized": after,
            "max_abs_change": max(c["max_abs_change"] for c in changes.values()),
            "mean_abs_change": float(np.mean([c["mean_abs_change"] for c in changes.values()]))}


def quant_report(merge_steps: int = 200) -> dict[str, Any]:
    """Every number of the report as JSON-ready values (``format_report`` prints them)."""
    models = _models()
    memory = []
    for name, make in models.items():
        config = make().config
        for method in ("full", "lora", "qlora"):
            model = _prepared(make, method)
            memory.append({"model": name, "method": method, **resident_bytes(model),
                           "live_step_bytes": step_live_bytes(model, config)})
    report = {"bits_per_parameter": bits_per_parameter(), "memory": memory, "layer_live": _layer_live(),
              "errors": quantization_errors(), "skills_errors": model_errors(),
              "quantize_seconds_skills": quantize_seconds()}
    if merge_steps:
        report["merge"] = merge_pitfall(merge_steps)
    return report


def format_report(report: dict[str, Any]) -> str:
    """The report as text tables."""
    bits = report["bits_per_parameter"]
    lines = [f"bits per weight (1024x1024, blocksize 64): NF4 {bits['nf4']:.3f}, "
             f"NF4 + double quantisation {bits['nf4_double_quant']:.3f}", "",
             "bytes resident while training (weights + grads + AdamW); LoRA/QLoRA r=8 on q_proj, v_proj",
             f"{'model':<12}{'method':<8}{'trainable':>11}{'weights':>12}{'grads':>11}{'adamw':>11}{'total':>12}"
             f"{'live step':>12}"]
    for r in report["memory"]:
        lines.append(f"{r['model']:<12}{r['method']:<8}{r['trainable']:>11,}{r['weights']:>12,}{r['grads']:>11,}"
                     f"{r['adamw']:>11,}{r['total']:>12,}{r['live_step_bytes']:>12,}")
    layer = report["layer_live"]
    lines += ["", f"one 1024x1024 Linear4bit: stores {layer['stored']:,} bytes (float32: {layer['float32_weight']:,}); "
              f"peak during a forward+backward {layer['peak_during_step']:,}, kept after {layer['kept_after_step']:,}",
              "", "mean |w - w_hat| on a 1024x1024 N(0,1) matrix",
              f"{'blocksize':>10}{'NF4':>9}{'uniform4':>10}{'bnb NF4':>9}"]
    for r in report["errors"]:
        lines.append(f"{r['blocksize']:>10}{r['nf4_mae']:>9.4f}{r['uniform4_mae']:>10.4f}"
                     f"{r['bitsandbytes_reported_nf4_mae']:>9.4f}")
    e = report["skills_errors"]
    lines += [f"skills model's Linear weights, ||W - W_hat|| / ||W||: NF4 {e['nf4_rel_error']:.4f}, "
              f"uniform4 {e['uniform4_rel_error']:.4f}",
              f"time to quantise the skills model: {1000 * report['quantize_seconds_skills']:.1f} ms"]
    if "merge" in report:
        m = report["merge"]
        lines.append(f"merge into the 4-bit base (QLoRA, {m['steps']} steps on {m['task']}): weights move by up to "
                     f"{m['max_abs_change']:.4f} (mean {m['mean_abs_change']:.5f}); {m['metric']} "
                     f"{m['unmerged']:.3f} unmerged -> {m['merged_requantized']:.3f} merged and re-quantised")
    return "\n".join(lines)
