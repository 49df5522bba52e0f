"""Composite computations checked against PyTorch in float64: values and every input's gradient."""

import numpy as np
import pytest

import minilora as ml
import minilora.functional as F
from minilora import backend

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _run_both(minilora_fn, torch_fn, hosts, device):
    """Run both frameworks on the same float64 inputs; return (value, grads) for each."""
    ours = [ml.tensor(h, requires_grad=True, device=device) for h in hosts]
    out = minilora_fn(*ours)
    out.backward()
    theirs = [torch.tensor(h, requires_grad=True) for h in hosts]
    ref = torch_fn(*theirs)
    ref.backward()
    return ((out.item(), [backend.to_host(t.grad) for t in ours]),
            (ref.item(), [t.grad.numpy() for t in theirs]))


def _assert_same(ours, theirs):
    assert ours[0] == pytest.approx(theirs[0], rel=1e-10)
    for g_ours, g_theirs in zip(ours[1], theirs[1]):
        np.testing.assert_allclose(g_ours, g_theirs, rtol=1e-9, atol=1e-12)


def test_layer_norm_gelu_linear_cross_entropy_matches_torch(device):
    rng = np.random.default_rng(0)
    B, T, C, V = 2, 3, 8, 5
    hosts = [rng.standard_normal((B, T, C)), 1 + 0.1 * rng.standard_normal(C), 0.1 * rng.standard_normal(C),
             rng.standard_normal((V, C)) / np.sqrt(C), rng.standard_normal(V)]
    targets = rng.integers(0, V, (B, T))
    targets[0, 1] = -100  # one ignored position

    def ours(x, w, b, head, head_b):
        h = F.gelu(F.layer_norm(x, w, b))
        return F.cross_entropy(h @ head.T + head_b, targets, ignore_index=-100)

    def theirs(x, w, b, head, head_b):
        h = TF.gelu(TF.layer_norm(x, (C,), w, b, eps=1e-5), approximate="tanh")
        logits = h @ head.T + head_b
        return TF.cross_entropy(logits.reshape(-1, V), torch.tensor(targets.reshape(-1)), ignore_index=-100)

    _assert_same(*_run_both(ours, theirs, hosts, device))


def test_causal_softmax_attention_matches_torch(device):
    """softmax(q k^T / sqrt(h) + causal mask) v, then a projection and a log-softmax loss."""
    rng = np.random.default_rng(1)
    T, h = 4, 3
    hosts = [rng.standard_normal((2, T, h)) for _ in range(3)] + [rng.standard_normal((h, h))]
    future = np.triu(np.ones((T, T), dtype=bool), k=1)

    def ours(q, k, v, proj):
        scores = F.masked_fill((q @ k.transpose(0, 2, 1)) * (1 / np.sqrt(h)), future, -np.inf)
        y = F.softmax(scores, axis=-1) @ v @ proj
        return -F.log_softmax(y, axis=-1)[:, :, 0].mean()

    def theirs(q, k, v, proj):
        scores = (q @ k.transpose(1, 2) / np.sqrt(h)).masked_fill(torch.tensor(future), -torch.inf)
        y = torch.softmax(scores, dim=-1) @ v @ proj
        return -torch.log_softmax(y, dim=-1)[:, :, 0].mean()

    _assert_same(*_run_both(ours, theirs, hosts, device))


def test_fused_attention_and_linear_match_torch(device):
    rng = np.random.default_rng(2)
    hosts = [rng.standard_normal((1, 2, 4, 3)) for _ in range(3)]  # q, k, v
    hosts += [rng.standard_normal((5, 3)), rng.standard_normal(5)]  # linear weight, bias

    def ours(q, k, v, w, b):
        return F.linear(F.scaled_dot_product_attention(q, k, v, causal=True), w, b).tanh().sum()

    def theirs(q, k, v, w, b):
        return TF.linear(TF.scaled_dot_product_attention(q, k, v, is_causal=True), w, b).tanh().sum()

    _assert_same(*_run_both(ours, theirs, hosts, device))
