"""``minilora selfcheck``: prove in seconds that the engine differentiates and learns on this machine.

1. gradcheck: a small MLP's float64 gradients against central finite differences;
2. training: the same MLP learns XOR-like spirals with AdamW, printing its loss as it falls.
"""

from __future__ import annotations

import numpy as np

from minilora import functional as F
from minilora import nn, optim
from minilora.backend import to_device
from minilora.engine.gradcheck import gradcheck
from minilora.engine.tensor import Tensor


class TinyMLP(nn.Module):
    """logits = fc2(tanh(fc1(x))): 2 inputs → ``hidden`` → 2 classes."""

    def __init__(self, hidden: int = 32, seed: int = 0, device: str | None = None):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.fc1 = nn.Linear(2, hidden, rng=rng, device=device)
        self.fc2 = nn.Linear(hidden, 2, rng=rng, device=device)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.fc1(x).tanh())  # (N, 2)


def spirals(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved spirals: points (n, 2) float32 and labels (n,) in {0, 1}."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    radius = rng.uniform(0.1, 1.0, n)
    angle = 3.0 * radius + np.pi * labels
    points = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    points += rng.normal(0, 0.03, points.shape)
    return points.astype(np.float32), labels


def run_selfcheck(steps: int = 300, device: str | None = None, echo=print) -> dict[str, float]:
    """Gradcheck a float64 MLP, then train a float32 one for ``steps`` (≥ 1); returns first/last loss and accuracy."""
    if steps < 1:
        raise ValueError(f"selfcheck needs at least 1 training step, got steps={steps}")
    small = TinyMLP(hidden=4, seed=1, device=device).astype(np.float64)
    points, labels = spirals(6, seed=1)
    x64 = Tensor(to_device(points.astype(np.float64), small.device))
    y64 = Tensor(to_device(labels, small.device))
    params = list(small.parameters())

    def loss_of(*weights: Tensor) -> Tensor:
        # the weights are the model's own parameters: gradcheck nudges them in place, the model reads them
        return F.cross_entropy(small(x64), y64)

    gradcheck(loss_of, *params, rtol=1e-5)
    echo(f"gradcheck: {sum(p.size for p in params)} MLP gradients match finite differences (float64, rtol 1e-5)")

    model = TinyMLP(seed=0, device=device)
    points, labels = spirals(512)
    x = Tensor(to_device(points, model.device))
    y = Tensor(to_device(labels, model.device))
    opt = optim.AdamW(model.parameters(), lr=0.03, weight_decay=0.0)
    first = last = float("nan")
    for step in range(steps):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step == 0:
            first = loss.item()
        if step % max(1, steps // 6) == 0 or step == steps - 1:
            echo(f"step {step:4d}  loss {loss.item():.4f}")
        last = loss.item()
    accuracy = float((model(x).numpy().argmax(axis=1) == labels).mean())
    echo(f"training: loss {first:.3f} -> {last:.3f}, accuracy {accuracy:.1%} on two spirals")
    return {"first_loss": first, "last_loss": last, "accuracy": accuracy}
