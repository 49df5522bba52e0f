"""Checks for notebook 04, full fine-tuning vs LoRA: optimizer memory, and reloading a saved adapter."""

from __future__ import annotations

import tempfile
from typing import Any

import numpy as np

import minilora as ml
from checks import NotYet, exercise, expect_equal
from minilora.data import SKILL_TOKENIZER
from minilora.lora import LoraConfig, apply_lora, count_parameters, save_adapter
from minilora.train import TrainConfig, make_optimizer, train_step


def _state_after_one_step(method: str) -> tuple[int, int]:
    """(trainable parameters, AdamW state bytes after one step) of the skills model fine-tuned by ``method``."""
    model = ml.pretrained("skills")
    if method == "lora":
        apply_lora(model, LoraConfig(r=4, target_modules=("q_proj", "v_proj", "fc_in", "fc_out")))
    else:
        model.requires_grad_(True)
    optimizer = make_optimizer(model, TrainConfig(steps=1))
    x = np.array([SKILL_TOKENIZER.encode("Rabc=cba.")])
    y = np.concatenate([x[:, 1:], [[-1]]], axis=1)
    train_step(model, optimizer, x, ml.tensor(y), grad_clip=1.0)
    return count_parameters(model).trainable, optimizer.state_bytes()


@exercise("04")
def optimizer_state_bytes(answer: Any) -> str:
    """optimizer_state_bytes(n_trainable): the bytes AdamW keeps for ``n_trainable`` float32 weights."""
    lines = []
    for method in ("full", "lora"):
        n, measured = _state_after_one_step(method)
        expect_equal(f"optimizer_state_bytes({n:,}) ({method} fine-tuning)", answer(n), measured,
                     "AdamW keeps two running averages per trainable weight (m and v), each a float32 of 4 bytes")
        lines.append(f"{method} {measured / 1024:.0f} KiB")
    return "2 moments × 4 bytes × trainable weights: " + ", ".join(lines)


@exercise("04")
def reload_adapter(answer: Any) -> str:
    """reload_adapter(folder) returns a fresh skills model with the adapter saved in ``folder`` loaded into it."""
    trained = apply_lora(ml.pretrained("skills"), LoraConfig(r=2, target_modules=("q_proj", "v_proj")), seed=3)
    rng = np.random.default_rng(5)
    for name, p in trained.named_parameters():
        if name.endswith("lora_B"):  # as if trained: B ≠ 0, so the adapter changes the outputs
            p.data = rng.normal(0.0, 0.05, p.shape).astype(p.dtype)
    ids = np.array([SKILL_TOKENIZER.encode("Rabc=")])
    with tempfile.TemporaryDirectory() as folder:
        save_adapter(trained, folder)
        model = answer(folder)
    if model is trained:
        raise NotYet("reload_adapter returned the very model that saved the adapter; load a fresh one")
    if not hasattr(model, "forward"):
        raise NotYet(f"reload_adapter should return a model, got {type(model).__name__}")
    with ml.no_grad():
        want = trained.eval()(ids)[0].numpy()
        got = model.eval()(ids)[0].numpy()
        base = ml.pretrained("skills")(ids)[0].numpy()
    if np.array_equal(got, base):
        raise NotYet("the returned model computes what the base model computes: the adapter was not loaded")
    if not np.allclose(got, want, atol=1e-5):
        raise NotYet("the returned model's logits differ from the saved adapter's by up to "
                     f"{np.abs(got - want).max():.3g}")
    return "base weights from the package + a few-KB adapter file = the fine-tuned model"
