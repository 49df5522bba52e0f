"""Checks for notebook 08, minilora on a GPU: what asking for a GPU does on a machine without one (predicted), the
bytes a model occupies, and how a matmul's time grows with n (predicted)."""

from __future__ import annotations

from typing import Any

import numpy as np

import minilora as ml
from checks import NotYet, exercise
from minilora.lora import LoraConfig, apply_lora

WITHOUT_GPU = {"a": "it quietly runs on the CPU instead",
               "b": "it raises an error at once that says what is missing and what to install",
               "c": "it creates the tensor, and the first operation on it crashes",
               "d": "it hangs, waiting for a GPU"}


@exercise("08")
def without_gpu(answer: Any) -> str:
    """without_gpu: what ``ml.zeros(2, device="cuda")`` does on a machine with no GPU or no CuPy ("a" to "d")."""
    key = answer.strip().lower() if isinstance(answer, str) else answer
    if key not in WITHOUT_GPU:
        raise NotYet(f"without_gpu is {answer!r}; write one of {sorted(WITHOUT_GPU)} as a string")
    if key != "b":
        raise NotYet(f"not what minilora does ({WITHOUT_GPU[key]}); hint: could you trust a timing labelled "
                     "'cuda' if asking for a missing GPU ever fell back to the CPU, or failed later somewhere else?")
    if ml.cuda_available():
        return "a GPU is here, so the tensor was made there; without one the ValueError names CuPy and the extra"
    try:
        ml.zeros(2, device="cuda")
    except ValueError as err:
        return f"ValueError: {err}"
    return "no error here: this machine has a GPU device registered"


def _half_precision_skills() -> Any:
    """The skills model with every parameter in float16 (2 bytes a number), as a GPU run might keep it."""
    model = ml.pretrained("skills")
    for p in model.parameters():
        p.data = p.data.astype(np.float16)
    return model


@exercise("08")
def weight_bytes(answer: Any) -> str:
    """weight_bytes(model): the bytes a model's weights occupy on its device (what moving it to a GPU costs)."""
    models = {"skills": ml.pretrained("skills"), "names": ml.pretrained("names"),
              "skills + LoRA": apply_lora(ml.pretrained("skills"), LoraConfig(r=4)),
              "float16 skills": _half_precision_skills()}
    for name, model in models.items():
        want = sum(int(p.data.nbytes) for p in model.parameters())
        got = answer(model)
        if got != want:
            raise NotYet(f"weight_bytes of the {name} model is {got!r}, which is not right; hint: every parameter "
                         "is on the device, frozen or not, and how many bytes a number takes depends on its dtype")
    return (f"{sum(int(p.data.nbytes) for p in models['skills'].parameters()) / 2**10:.0f} KiB for the skills model: "
            "tiny beside a GPU's memory")


@exercise("08")
def matmul_time_ratio(answer: Any) -> str:
    """matmul_time_ratio: time(2n × 2n product) / time(n × n product) at a constant speed in FLOP/s."""
    if isinstance(answer, bool) or not isinstance(answer, (int, float, np.integer, np.floating)):
        raise NotYet(f"matmul_time_ratio is {answer!r}; write one number")
    if not np.isclose(float(answer), 8.0):
        raise NotYet(f"{answer!r} is not right; hint: count the operations of an n × n @ n × n product (how many "
                     "outputs, and how much work each takes), then double n")
    return "2n³ operations: doubling n multiplies the work by 8; where the measured ratio is below 8, the speed rose"
