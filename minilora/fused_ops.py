"""Fused primitives for neural-network layers: one Function for what would otherwise be many.

A fused op computes its gradient in closed form instead of through a chain of small ops, which
saves memory (fewer saved intermediates) and time (fewer temporaries).  ``functional.py`` keeps
a composed version of each beside it, built from the primitives in ``ops.py``; the tests check
that both agree.
"""

from __future__ import annotations

import math

from minilora import backend
from minilora.tensor import Function


class Softmax(Function):
    """y = exp(x - max x) / sum exp(x - max x) along ``axis``; dx = y * (g - sum(g * y))."""

    @staticmethod
    def forward(ctx, x, axis):
        xp = backend.get_xp(x)
        y = x - x.max(axis=axis, keepdims=True)
        xp.exp(y, out=y)
        y /= y.sum(axis=axis, keepdims=True)
        ctx.save_for_backward(y)
        ctx.axis = axis
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        dx = g * y
        dx -= y * dx.sum(axis=ctx.axis, keepdims=True)
        return (dx,)


class LogSoftmax(Function):
    """y = x - max x - log sum exp(x - max x) along ``axis``; dx = g - exp(y) * sum(g)."""

    @staticmethod
    def forward(ctx, x, axis):
        xp = backend.get_xp(x)
        shifted = x - x.max(axis=axis, keepdims=True)
        y = shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))
        ctx.save_for_backward(y)
        ctx.axis = axis
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        xp = backend.get_xp(g)
        return (g - xp.exp(y) * g.sum(axis=ctx.axis, keepdims=True),)


class CrossEntropy(Function):
    """Mean negative log-likelihood of integer targets under softmax(logits), fused.

    loss = -(1/n) sum_i log softmax(z_i)[t_i] over the n targets that are not ``ignore_index``;
    dz_i = (softmax(z_i) - onehot(t_i)) / n for those rows, 0 for ignored rows.
    logits (N, C), targets (N,) integers.
    """

    @staticmethod
    def forward(ctx, logits, targets, ignore_index):
        xp = backend.get_xp(logits)
        n_rows, n_classes = logits.shape
        valid = targets != ignore_index if ignore_index is not None else None
        safe_targets = targets if valid is None else xp.where(valid, targets, 0)
        if n_rows:
            low, high = int(safe_targets.min()), int(safe_targets.max())
            if low < 0 or high >= n_classes:
                bad = low if low < 0 else high
                raise ValueError(f"cross_entropy: target {bad} is out of range for {n_classes} classes (expected 0..{n_classes - 1})")
        rows = xp.arange(n_rows)
        probs = logits - logits.max(axis=1, keepdims=True)
        target_logit = probs[rows, safe_targets]
        xp.exp(probs, out=probs)
        sums = probs.sum(axis=1)
        nll = xp.log(sums) - target_logit  # log-sum-exp form: never log(0)
        probs /= sums[:, None]
        count = n_rows if valid is None else int(valid.sum())
        if valid is not None:
            nll = xp.where(valid, nll, 0)
        ctx.save_for_backward(probs, safe_targets, valid)
        ctx.count = max(count, 1)  # all targets ignored: loss 0 and no gradient
        return nll.sum() / ctx.count

    @staticmethod
    def backward(ctx, g):
        probs, targets, valid = ctx.saved_tensors
        xp = backend.get_xp(probs)
        dz = probs.copy()
        dz[xp.arange(dz.shape[0]), targets] -= 1
        scale = g / ctx.count
        if valid is not None:
            dz *= (valid * scale)[:, None].astype(dz.dtype)
        else:
            dz *= scale
        return dz, None


_GELU_C = math.sqrt(2.0 / math.pi)


class Gelu(Function):
    """GELU, tanh approximation: y = x/2 (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3).

    dy/dx = (1 + t)/2 + x/2 (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2), t = tanh(u).
    """

    @staticmethod
    def forward(ctx, x):
        xp = backend.get_xp(x)
        t = x * x
        t *= 0.044715
        t += 1
        t *= x
        t *= _GELU_C
        xp.tanh(t, out=t)
        ctx.save_for_backward(x, t)
        y = t + 1
        y *= x
        y *= 0.5
        return y

    @staticmethod
    def backward(ctx, g):
        x, t = ctx.saved_tensors
        x2 = x * x
        x2 *= 3 * 0.044715
        x2 += 1
        x2 *= _GELU_C * 0.5
        x2 *= x
        one_minus_t2 = 1 - t * t
        x2 *= one_minus_t2
        x2 += 0.5 * (1 + t)
        x2 *= g
        return (x2,)


class LayerNorm(Function):
    """y = (x - mean) / sqrt(var + eps) * w + b over the last axis.

    With xhat the normalised input and r = 1/sqrt(var + eps):
    dw = sum(g * xhat), db = sum(g) over all leading axes, and
    dx = r * (gw - mean(gw) - xhat * mean(gw * xhat)) where gw = g * w.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, eps):
        xp = backend.get_xp(x)
        mean = x.mean(axis=-1, keepdims=True)
        xhat = x - mean
        var = (xhat * xhat).mean(axis=-1, keepdims=True)
        rstd = 1.0 / xp.sqrt(var + eps)
        xhat *= rstd
        ctx.save_for_backward(xhat, rstd, weight)
        y = xhat * weight
        y += bias
        return y

    @staticmethod
    def backward(ctx, g):
        xhat, rstd, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad
        lead = tuple(range(g.ndim - 1))
        dw = (g * xhat).sum(axis=lead) if need_w else None
        db = g.sum(axis=lead) if need_b else None
        dx = None
        if need_x:
            gw = g * weight
            dx = gw - gw.mean(axis=-1, keepdims=True)
            gw *= xhat
            dx -= xhat * gw.mean(axis=-1, keepdims=True)
            dx *= rstd
        return dx, dw, db


class Embedding(Function):
    """y = weight[ids] (rows of the table); dweight = rows of g added at ``ids`` (repeats accumulate)."""

    @staticmethod
    def forward(ctx, ids, weight):
        ctx.save_for_backward(ids)
        ctx.weight_shape = weight.shape
        return weight[ids]

    @staticmethod
    def backward(ctx, g):
        (ids,) = ctx.saved_tensors
        xp = backend.get_xp(g)
        dweight = xp.zeros(ctx.weight_shape, dtype=g.dtype)
        xp.add.at(dweight, ids.reshape(-1), g.reshape(-1, ctx.weight_shape[1]))
        return None, dweight


class LinearFn(Function):
    """y = x @ W^T (+ b) for x (..., k), W (d, k), b (d,).

    dx = g @ W;  dW = g^T x and db = sum(g) with all leading axes flattened into one (a single
    2-D matmul instead of a batch of them).  A frozen W (``needs_input_grad`` False) costs nothing.
    """

    @staticmethod
    def forward(ctx, x, weight, bias=None):
        x2 = x.reshape(-1, x.shape[-1])  # (N, k): one 2-D matmul is faster than a batch of them
        ctx.save_for_backward(x2, weight)
        ctx.x_shape = x.shape
        y = x2 @ weight.T  # (N, d)
        if bias is not None:
            y += bias
        return y.reshape(*x.shape[:-1], weight.shape[0])

    @staticmethod
    def backward(ctx, g):
        x2, weight = ctx.saved_tensors
        needs = ctx.needs_input_grad
        g2 = g.reshape(-1, g.shape[-1])  # (N, d)
        dx = (g2 @ weight).reshape(ctx.x_shape) if needs[0] else None
        dw = g2.T @ x2 if needs[1] else None
        db = g2.sum(axis=0) if len(needs) > 2 and needs[2] else None
        return dx, dw, db


class Attention(Function):
    """Scaled dot-product attention, fused: y = softmax(q k^T / sqrt(h) + mask) v.

    q, k, v: (B, H, T, h).  With P the attention probabilities (B, H, T, T):
    dv = P^T g;  dP = g v^T;  dS = P * (dP - sum(dP * P)) / sqrt(h);  dq = dS k;  dk = dS^T q.
    ``causal`` masks positions j > i (a token never attends to the future).
    """

    @staticmethod
    def forward(ctx, q, k, v, causal):
        xp = backend.get_xp(q)
        scale = 1.0 / math.sqrt(q.shape[-1])
        att = q @ k.swapaxes(-1, -2)  # (B, H, T, T)
        att *= scale
        if causal:
            t_q, t_k = att.shape[-2:]
            att += xp.triu(xp.full((t_q, t_k), -xp.inf, dtype=att.dtype), 1)
        att -= att.max(axis=-1, keepdims=True)
        xp.exp(att, out=att)
        att /= att.sum(axis=-1, keepdims=True)
        ctx.save_for_backward(q, k, v, att)
        ctx.scale = scale
        return att @ v  # (B, H, T, h)

    @staticmethod
    def backward(ctx, g):
        q, k, v, att = ctx.saved_tensors
        need_q, need_k, need_v = ctx.needs_input_grad
        dv = att.swapaxes(-1, -2) @ g if need_v else None
        dq = dk = None
        if need_q or need_k:
            ds = g @ v.swapaxes(-1, -2)  # dP
            ds -= (ds * att).sum(axis=-1, keepdims=True)
            ds *= att
            ds *= ctx.scale
            dq = ds @ k if need_q else None
            dk = ds.swapaxes(-1, -2) @ q if need_k else None
        return dq, dk, dv
