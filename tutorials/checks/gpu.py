"""Checks for notebook 08, minilora on a GPU: the bytes a model occupies, and turning a timing into FLOP/s."""

from __future__ import annotations

from typing import Any

import minilora as ml
from checks import NotYet, exercise
from minilora.lora import LoraConfig, apply_lora


@exercise("08")
def weight_bytes(answer: Any) -> str:
    """weight_bytes(model): the bytes a model's weights occupy on its device (what moving it to a GPU costs)."""
    models = {"skills": ml.pretrained("skills"), "names": ml.pretrained("names"),
              "skills + LoRA": apply_lora(ml.pretrained("skills"), LoraConfig(r=4))}
    for name, model in models.items():
        want = sum(int(p.data.nbytes) for p in model.parameters())
        got = answer(model)
        if got != want:
            raise NotYet(f"weight_bytes of the {name} model is {got!r}, which is not right; hint: every parameter, "
                         "frozen or not, has p.size numbers of p.dtype.itemsize bytes each")
    return (f"{sum(int(p.data.nbytes) for p in models['skills'].parameters()) / 2**10:.0f} KiB for the skills model: "
            "tiny beside a GPU's memory")


@exercise("08")
def matmul_gflops(answer: Any) -> str:
    """matmul_gflops(n, seconds): GFLOP/s of an (n × n) @ (n × n) product that took ``seconds``."""
    for n, seconds in ((1000, 0.5), (256, 1e-3), (1, 1.0)):
        want = 2 * n**3 / seconds / 1e9
        got = answer(n, seconds)
        if not isinstance(got, (int, float)) or abs(got - want) > 1e-9 * max(1.0, want):
            raise NotYet(f"matmul_gflops({n}, {seconds}) is {got!r}, which is not right; hint: each of the n² outputs "
                         "is a dot product of length n, a multiply and an add per term; GFLOP is 10⁹ operations")
    return "2n³ operations per n×n product, divided by the seconds it took"
