"""Checks for notebook 04, full fine-tuning vs LoRA: optimizer memory predicted from a model, what training after a
merge does, what trains when A = 0 and B is random, and reloading a saved adapter."""

from __future__ import annotations

import tempfile
from typing import Any

import numpy as np

import minilora as ml
from checks import NotYet, exercise
from minilora.data import SKILL_TOKENIZER
from minilora.lora import LoraConfig, apply_lora, merge_lora, save_adapter
from minilora.models import GPT, GPTConfig
from minilora.train import TrainConfig, make_optimizer, train_step

_FOUR = ("q_proj", "v_proj", "fc_in", "fc_out")


def _tiny_float64_lora() -> Any:
    """A one-layer GPT whose parameters are float64 (8 bytes a number), with LoRA r = 2 on W_q, W_v."""
    model = GPT(GPTConfig(vocab_size=20, block_size=8, n_layer=1, n_head=2, n_embd=16), seed=0)
    apply_lora(model, LoraConfig(r=2), seed=0)
    for p in model.parameters():
        p.data = p.data.astype(np.float64)
    return model


def _models() -> dict[str, Any]:
    """Fresh models of different sizes, methods and dtypes (a count that fits one of them only fails)."""
    return {"the skills model, full fine-tuning": lambda: ml.pretrained("skills").requires_grad_(True),
            "the skills model, LoRA r = 4 on four matrix types":
                lambda: apply_lora(ml.pretrained("skills"), LoraConfig(r=4, target_modules=_FOUR)),
            "the names model, LoRA r = 8 on W_q, W_v": lambda: apply_lora(ml.pretrained("names"), LoraConfig(r=8)),
            "a tiny float64 GPT, LoRA r = 2": _tiny_float64_lora}


def _one_step(model: Any, optimizer: Any) -> None:
    """One AdamW step on a random batch (AdamW creates its state at the first step)."""
    model.train()
    tokens = np.random.default_rng(0).integers(0, model.config.vocab_size, size=(2, 9))
    train_step(model, optimizer, tokens[:, :-1], ml.tensor(tokens[:, 1:]), grad_clip=1.0)


@exercise("04")
def optimizer_state_bytes(answer: Any) -> str:
    """optimizer_state_bytes(model): the bytes of AdamW state a training run of ``model`` will hold, predicted
    before training (measured here after one step with ``optimizer.state_bytes()``)."""
    lines = []
    for name, make in _models().items():
        model = make()
        predicted = answer(model)
        optimizer = make_optimizer(model, TrainConfig(steps=1, weight_decay=0.0))
        _one_step(model, optimizer)
        measured = optimizer.state_bytes()
        if predicted != measured:
            raise NotYet(f"optimizer_state_bytes is {predicted!r} for {name}, but AdamW held {measured:,} bytes; "
                         "hint: AdamW keeps running averages only for the weights it updates, as arrays shaped and "
                         "typed like those weights (p.dtype.itemsize bytes a number)")
        lines.append(f"{measured / 2**10:,.1f} KiB")
    return ("2 moments × the trainable weights × their bytes: " + ", ".join(lines)
            + " (full skills, LoRA skills, LoRA names, float64 tiny)")


AFTER_MERGE = {"a": "the loss keeps falling, as before the merge",
               "b": "the loss stays flat: A and B get no gradient, nothing changes",
               "c": "training stops at once with an error that says to unmerge first",
               "d": "the loss jumps: the update now counts twice, once in W and once through B A"}


def _choice(name: str, answer: Any, choices: dict[str, str]) -> str:
    """The answer as one of the choices' keys (a string, case and spaces ignored), or NotYet."""
    key = answer.strip().lower() if isinstance(answer, str) else answer
    if key not in choices:
        raise NotYet(f"{name} is {answer!r}; write one of {sorted(choices)} as a string")
    return key


@exercise("04")
def after_merge(answer: Any) -> str:
    """after_merge: what happens when a LoRA model is trained again after ``merge_lora`` ("a", "b", "c" or "d")."""
    key = _choice("after_merge", answer, AFTER_MERGE)
    model = apply_lora(GPT(GPTConfig(vocab_size=20, block_size=8, n_layer=1, n_head=2, n_embd=16), seed=0),
                       LoraConfig(r=2), seed=0)
    optimizer = make_optimizer(model, TrainConfig(steps=1))
    _one_step(model, optimizer)
    merge_lora(model)
    try:
        _one_step(model, optimizer)
        happened = "no error"
    except RuntimeError as err:
        happened = f"RuntimeError: {str(err).split(';')[0]}"
    if key != "c":
        raise NotYet(f"not what happens ({AFTER_MERGE[key]}); hint: while merged, forward computes x Wᵀ with "
                     "W = W0 + s·B A held as one array: which parameters does the loss then depend on? Then read what "
                     "LoRALinear.forward (minilora/lora/layer.py) does when it is merged and training")
    return f"minilora refuses: {happened}. Unmerge (unmerge_lora) to train again, merge for inference"


A_ZERO = ("A", "B", "both", "neither")


def _gradients_with_a_zero() -> dict[str, float]:
    """The largest |gradient| of A and of B after one backward, with A = 0 and B random (a tiny LoRA GPT)."""
    model = apply_lora(GPT(GPTConfig(vocab_size=20, block_size=8, n_layer=1, n_head=2, n_embd=16), seed=0),
                       LoraConfig(r=2), seed=0)
    rng = np.random.default_rng(1)
    for name, p in model.named_parameters():
        if name.endswith("lora_A"):
            p.data = np.zeros_like(p.data)
        elif name.endswith("lora_B"):
            p.data = rng.normal(0.0, 0.1, p.shape).astype(p.dtype)
    tokens = rng.integers(0, 20, size=(2, 9))
    model.train()
    _, loss = model(tokens[:, :-1], ml.tensor(tokens[:, 1:]))
    loss.backward()
    grads = {"A": 0.0, "B": 0.0}
    for name, p in model.named_parameters():
        if p.grad is not None and name.endswith(("lora_A", "lora_B")):
            which = "A" if name.endswith("lora_A") else "B"
            grads[which] = max(grads[which], float(np.abs(p.grad).max()))
    return grads


@exercise("04")
def a_zero_init(answer: Any) -> str:
    """a_zero_init: with A = 0 and B random (LoRA's init swapped), which of A, B gets a non-zero gradient at the
    first backward ("A", "B", "both" or "neither")."""
    named = {c.lower(): c for c in A_ZERO}
    if not isinstance(answer, str) or answer.strip().lower() not in named:
        raise NotYet(f"a_zero_init is {answer!r}; write one of {list(A_ZERO)} as a string")
    grads = _gradients_with_a_zero()
    if named[answer.strip().lower()] != "A":
        raise NotYet("not what a backward gives; hint: write h = W0 x + s·B (A x) and follow the chain rule to A "
                     "and to B: does either gradient carry a factor that is zero when A = 0?")
    return (f"max |∂L/∂A| = {grads['A']:.2g}, max |∂L/∂B| = {grads['B']:.2g}: A moves first, then B follows; "
            "the usual init (A random, B = 0) is the mirror image, and either way ΔW = 0 at the start")


def _adapter(seed: int) -> Any:
    """A LoRA model on the shipped skills model 'as if trained' (B ≠ 0, so the adapter changes the outputs)."""
    model = apply_lora(ml.pretrained("skills"), LoraConfig(r=2, target_modules=("q_proj", "v_proj")), seed=seed)
    rng = np.random.default_rng(seed + 10)
    for name, p in model.named_parameters():
        if name.endswith("lora_B"):
            p.data = rng.normal(0.0, 0.05, p.shape).astype(p.dtype)
    return model.eval()


def _logits(model: Any, ids: np.ndarray) -> np.ndarray:
    with ml.no_grad():
        return model.eval()(ids)[0].numpy()


@exercise("04")
def reload_adapter(answer: Any) -> str:
    """reload_adapter(folder) returns a fresh skills model with the adapter saved in ``folder`` loaded into it;
    called twice, with two adapters, each model must compute its own adapter's outputs."""
    ids = np.array([SKILL_TOKENIZER.encode("Rabc=")])
    base = _logits(ml.pretrained("skills"), ids)
    trained = [_adapter(3), _adapter(4)]
    models = []
    with tempfile.TemporaryDirectory() as folder:
        for number, model in enumerate(trained):
            save_adapter(model, f"{folder}/{number}")
            try:
                models.append(answer(f"{folder}/{number}"))
            except NotImplementedError:
                raise
            except Exception as err:  # the message without the temporary folder's random name
                message = str(err).replace(folder, "<folder>")
                raise NotYet(f"reload_adapter raised {type(err).__name__}: {message}") from None
    for model in models:
        if not hasattr(model, "forward"):
            raise NotYet(f"reload_adapter should return a model, got {type(model).__name__}")
        if any(model is t for t in trained):
            raise NotYet("reload_adapter returned the very model that saved the adapter; load into a fresh one")
    if models[0] is models[1]:
        raise NotYet("both calls returned the same model object: the second adapter went into the first's model. "
                     "Each call should start from a fresh base model, not one that exists outside the function")
    for number, (model, want) in enumerate(zip(models, trained)):
        got = _logits(model, ids)
        if np.array_equal(got, base):
            raise NotYet("the returned model computes what the base model computes: the adapter was not loaded")
        if not np.allclose(got, _logits(want, ids), atol=1e-5):
            raise NotYet(f"the model of adapter {number + 1} differs from the saved one by up to "
                         f"{np.abs(got - _logits(want, ids)).max():.3g} in the logits; hint: a saved adapter holds "
                         "only A and B, so it must go onto the untouched base weights they were trained on")
    return "base weights from the package + a few-KB adapter file = the fine-tuned model, one fresh model per load"
