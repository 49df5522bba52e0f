"""Optimizers and learning-rate schedules.

Optimizers update ``p.data`` in place, outside the graph, and skip parameters that are frozen
(``requires_grad`` False) or have no gradient: a LoRA run hands AdamW every parameter, yet only
the adapter matrices get moment buffers (optimizer state).
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np

from minilora import backend
from minilora.nn import Parameter

__all__ = ["Optimizer", "SGD", "AdamW", "adamw_step", "clip_grad_norm", "warmup_cosine"]


def _groups(params: Iterable[Any], defaults: dict[str, Any]) -> list[dict[str, Any]]:
    """Normalise ``params`` (parameters, or dicts with "params" and per-group settings) to groups.  A group may
    carry "lr_ratio": a schedule that sets ``optimizer.lr = η`` gives that group η · lr_ratio (LoRA+)."""
    params = list(params)
    if not params:
        raise ValueError("optimizer got an empty parameter list")
    if isinstance(params[0], dict):
        groups = [{**defaults, **g, "params": list(g["params"])} for g in params]
    else:
        groups = [{**defaults, "params": params}]
    for g in groups:
        for key in g:
            if key not in ("params", "lr_ratio") and key not in defaults:
                raise ValueError(f"unknown optimizer setting {key!r} in a parameter group; expected one "
                                 f"of {sorted(defaults)}")
    return groups


class Optimizer:
    """Holds parameter groups and per-parameter state; subclasses define ``_update``."""

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]):
        self.param_groups = _groups(params, defaults)
        self.state: dict[int, dict[str, Any]] = {}

    @property
    def lr(self) -> float:
        return self.param_groups[0]["lr"]

    @lr.setter
    def lr(self, value: float) -> None:
        """Set the learning rate of every group (what a schedule does each step): η, or η · lr_ratio for a group
        that carries one (LoRA+ trains B at λ times A's rate under the same schedule)."""
        for g in self.param_groups:
            g["lr"] = value * g.get("lr_ratio", 1.0)

    def zero_grad(self) -> None:
        """Set every parameter's gradient to None."""
        for g in self.param_groups:
            for p in g["params"]:
                p.grad = None

    def step(self) -> None:
        """Apply one update to every trainable parameter that has a gradient."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.requires_grad and p.grad is not None:
                    self._update(p, group, self.state.setdefault(id(p), {}))

    def _update(self, p: Parameter, group: dict[str, Any], state: dict[str, Any]) -> None:  # pragma: no cover
        raise NotImplementedError

    def state_bytes(self) -> int:
        """Bytes held in optimizer state (e.g. AdamW's two moments per trainable parameter)."""
        return sum(int(v.nbytes) for s in self.state.values() for v in s.values() if hasattr(v, "nbytes"))

    def state_dict(self, names: dict[int, str]) -> dict[str, np.ndarray]:
        """State as ``"<param name>.<buffer>"`` → host array (plus ``"<param name>.step"``), for checkpoints."""
        out = {}
        for pid, state in self.state.items():
            for key, value in state.items():
                out[f"{names[pid]}.{key}"] = (np.asarray(backend.to_host(value)) if hasattr(value, "shape")
                                              else np.asarray(value))
        return out

    def load_state_dict(self, arrays: dict[str, np.ndarray], params: dict[str, Parameter]) -> None:
        """Restore state written by ``state_dict``; ``params`` maps names to this optimizer's parameters."""
        self.state = {}
        for key, value in arrays.items():
            name, buffer = key.rsplit(".", 1)
            if name not in params:
                raise ValueError(f"optimizer state names parameter {name!r}, which the model does not have")
            p = params[name]
            # "step" is a Python int; every other entry is a buffer (0-d for a 0-d parameter)
            restored = np.asarray(value).item() if buffer == "step" else backend.to_device(np.array(value), p.device)
            self.state.setdefault(id(p), {})[buffer] = restored


class SGD(Optimizer):
    """Stochastic gradient descent with momentum and (L2) weight decay.

    g ← grad + wd·p;  v ← μ·v + g (when μ > 0);  p ← p − lr·v.
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-2, momentum: float = 0.0, weight_decay: float = 0.0):
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"SGD: lr, momentum and weight_decay must be >= 0, got {lr}, {momentum}, {weight_decay}")
        super().__init__(params, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay})

    def _update(self, p: Parameter, group: dict[str, Any], state: dict[str, Any]) -> None:
        g = p.grad
        if group["weight_decay"]:
            g = g + group["weight_decay"] * p.data
        if group["momentum"]:
            if "momentum" not in state:
                state["momentum"] = g.copy()
            else:
                state["momentum"] *= group["momentum"]
                state["momentum"] += g
            g = state["momentum"]
        p.data -= group["lr"] * g


def adamw_step(p: Any, g: Any, m: Any, v: Any, t: int, lr: float, betas: tuple[float, float], eps: float,
               weight_decay: float) -> tuple[Any, Any, Any]:
    """One AdamW update as the paper writes it (Loshchilov & Hutter 2019, Algorithm 2); returns new (p, m, v).

    The textbook twin of ``AdamW``'s in-place fast path (``fused=True``), which computes the same
    numbers to float rounding: it folds the bias corrections into two scalars instead of dividing
    m and v by them, and reuses one scratch array instead of making a temporary per operation.
    """
    xp, (beta1, beta2) = backend.get_xp(p), betas
    p = p * (1 - lr * weight_decay)                                  # decoupled weight decay
    m = beta1 * m + (1 - beta1) * g                                  # first moment: a running mean of g
    v = beta2 * v + (1 - beta2) * g**2                               # second moment: a running mean of g²
    m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)            # bias correction (m, v start at 0)
    return p - lr * m_hat / (xp.sqrt(v_hat) + eps), m, v


class AdamW(Optimizer):
    """Adam with decoupled weight decay (Loshchilov & Hutter), as in ``torch.optim.AdamW``.

    p ← p·(1 − lr·wd);  m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²;
    p ← p − lr · (m / (1−β1^t)) / (sqrt(v / (1−β2^t)) + eps).

    ``fused=True`` (the default) runs the update in place with one scratch array (``_fused_update``);
    ``fused=False`` runs ``adamw_step``, the four lines above as written.  Both give the same parameters
    to float rounding (tests/test_optim.py); ``python -m minilora.bench`` measures the fast path.
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.01, fused: bool = True):
        if lr < 0 or not (0 <= betas[0] < 1 and 0 <= betas[1] < 1) or eps <= 0 or weight_decay < 0:
            raise ValueError(f"AdamW: invalid settings lr={lr}, betas={betas}, eps={eps}, weight_decay={weight_decay}")
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay})
        self.fused = bool(fused)

    def _update(self, p: Parameter, group: dict[str, Any], state: dict[str, Any]) -> None:
        if not state:
            xp = backend.get_xp(p.data)
            state["step"] = 0
            state["exp_avg"] = xp.zeros_like(p.data)
            state["exp_avg_sq"] = xp.zeros_like(p.data)
        state["step"] += 1
        if self.fused:
            self._fused_update(p, group, state)
        else:
            p.data, state["exp_avg"], state["exp_avg_sq"] = adamw_step(
                p.data, p.grad, state["exp_avg"], state["exp_avg_sq"], state["step"], group["lr"], group["betas"],
                group["eps"], group["weight_decay"])

    @staticmethod
    def _fused_update(p: Parameter, group: dict[str, Any], state: dict[str, Any]) -> None:
        """``adamw_step`` in place: p, m and v are updated in their own arrays, with one scratch array."""
        xp = backend.get_xp(p.data)
        beta1, beta2 = group["betas"]
        lr, t = group["lr"], state["step"]
        m, v, g = state["exp_avg"], state["exp_avg_sq"], p.grad
        if group["weight_decay"]:
            p.data *= 1 - lr * group["weight_decay"]
        tmp = xp.empty_like(g)  # one scratch array per update instead of a temporary per operation
        xp.multiply(g, 1 - beta1, out=tmp)
        m *= beta1
        m += tmp  # m ← β1·m + (1−β1)·g
        xp.multiply(g, g, out=tmp)
        tmp *= 1 - beta2
        v *= beta2
        v += tmp  # v ← β2·v + (1−β2)·g²
        xp.sqrt(v, out=tmp)
        tmp *= 1 / math.sqrt(1 - beta2**t)
        tmp += group["eps"]  # sqrt(v / (1−β2^t)) + eps
        xp.divide(m, tmp, out=tmp)
        tmp *= lr / (1 - beta1**t)
        p.data -= tmp


def clip_grad_norm(params: Iterable[Parameter], max_norm: float) -> float:
    """Scale all gradients together so their global L2 norm is at most ``max_norm``; returns the norm before.

    norm = sqrt(sum_p ||grad_p||²);  if norm > max_norm: grad_p ← grad_p · max_norm / (norm + 1e-6).
    The squared norms are summed on the device; only the total crosses to the host (one sync).
    """
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return 0.0
    xp = backend.get_xp(grads[0])
    squares = xp.stack([xp.vdot(g.ravel(), g.ravel()) for g in grads])  # ||grad_p||² per parameter
    total = math.sqrt(float(squares.astype(xp.float64).sum()))
    if total > max_norm:
        scale = max_norm / (total + 1e-6)
        for g in grads:
            g *= scale
    return total


def warmup_cosine(step: int, max_lr: float, warmup_steps: int, total_steps: int, min_lr: float = 0.0) -> float:
    """Learning rate at ``step``: linear warm-up to max_lr, then cosine decay to min_lr at total_steps.

    lr = max_lr·(step+1)/warmup  during warm-up;
    lr = min_lr + (max_lr − min_lr)·(1 + cos(π·progress))/2,  progress = (step − warmup)/(total − warmup).
    """
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    if step >= total_steps:
        return min_lr
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return min_lr + (max_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))
