"""Tests for minilora.models.gpt: config validation, shapes, loss, causality, names, gradients, generate."""

from __future__ import annotations

import math

import numpy as np
import pytest

import minilora as ml
from minilora import backend, nn, optim
from minilora.engine import fused
from minilora.models import GPT, GPTConfig

TINY = GPTConfig(vocab_size=11, block_size=6, n_layer=2, n_head=2, n_embd=8)


def _ids(shape, vocab=11, seed=0):
    return np.random.default_rng(seed).integers(0, vocab, shape)


# -- config --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs,match", [
    ({"vocab_size": 0}, "vocab_size must be a positive integer, got 0"),
    ({"block_size": -1}, "block_size must be a positive integer"),
    ({"n_layer": 2.0}, "n_layer must be a positive integer, got 2.0"),
    ({"n_head": 3}, "n_embd=8 must be divisible by n_head=3"),
    ({"dropout": 1.0}, r"dropout must be in \[0, 1\), got 1.0"),
    ({"dropout": -0.1}, "dropout must be in"),
])
def test_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GPTConfig(**{**TINY.to_dict(), **kwargs})


def test_config_to_dict_round_trips():
    d = TINY.to_dict()
    assert d == {"vocab_size": 11, "block_size": 6, "n_layer": 2, "n_head": 2, "n_embd": 8, "dropout": 0.0,
                 "bias": True}
    assert GPTConfig(**d) == TINY


# -- forward -------------------------------------------------------------------------------------


def test_forward_shapes_and_loss_at_init_is_log_vocab(device):
    cfg = GPTConfig(vocab_size=50, block_size=8, n_layer=2, n_head=2, n_embd=16)
    model = GPT(cfg, seed=0, device=device)
    idx, targets = _ids((3, 8), 50), _ids((3, 8), 50, seed=1)
    logits, loss = model(idx, targets)
    assert logits.shape == (3, 8, 50) and logits.device == device and logits.dtype == np.float32
    assert loss.shape == () and abs(loss.item() - math.log(50)) < 0.1
    logits2, none = model(backend.to_device(idx, device))  # device ids work too
    assert none is None
    np.testing.assert_array_equal(logits2.numpy(), logits.numpy())
    logits3, _ = model(ml.tensor(idx[:, :5], device=device))  # a Tensor, shorter than block_size
    assert logits3.shape == (3, 5, 50)


def test_targets_minus_one_are_ignored(device):
    model = GPT(TINY, seed=0, device=device)
    idx, targets = _ids((2, 6)), _ids((2, 6), seed=1)
    targets[0, :3] = -1
    targets[1, 5] = -1
    logits, loss = model(idx, targets)
    z = logits.numpy().astype(np.float64).reshape(-1, 11)
    t = targets.reshape(-1)
    logp = z - z.max(-1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(-1, keepdims=True))
    keep = t != -1
    expected = -logp[keep, t[keep]].mean()
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_causal_future_tokens_do_not_change_earlier_logits(device):
    model = GPT(TINY, seed=0, device=device)
    a = _ids((2, 6))
    b = a.copy()
    b[:, 4] = (b[:, 4] + 1) % 11
    la, lb = model(a)[0].numpy(), model(b)[0].numpy()
    np.testing.assert_allclose(la[:, :4], lb[:, :4], rtol=1e-6, atol=1e-6)
    assert np.abs(la[:, 4:] - lb[:, 4:]).max() > 1e-4


def test_bad_input_shapes_raise(device):
    model = GPT(TINY, device=device)
    with pytest.raises(ValueError, match="sequence length 7 exceeds block_size 6"):
        model(_ids((1, 7)))
    with pytest.raises(ValueError, match=r"shape \(B, T\), got shape \(6,\)"):
        model(_ids((6,)))
    with pytest.raises(ValueError, match="token id 11 is out of range"):
        model(np.full((1, 3), 11))


# -- structure and initialisation ----------------------------------------------------------------


def test_module_names_are_the_lora_contract():
    model = GPT(TINY)
    modules = dict(model.named_modules())
    linears = {n for n, m in modules.items() if isinstance(m, nn.Linear)}
    expected = {"head"} | {
        f"blocks.{i}.{part}" for i in range(2)
        for part in ("attn.q_proj", "attn.k_proj", "attn.v_proj", "attn.o_proj", "mlp.fc_in", "mlp.fc_out")
    }
    assert linears == expected
    assert {n for n, m in modules.items() if isinstance(m, nn.Embedding)} == {"tok_emb", "pos_emb"}
    assert isinstance(modules["ln_f"], nn.LayerNorm)
    assert modules["head"].bias is None
    shapes = {n: p.shape for n, p in model.named_parameters()}
    assert shapes["tok_emb.weight"] == (11, 8) and shapes["pos_emb.weight"] == (6, 8)
    assert shapes["blocks.1.attn.q_proj.weight"] == (8, 8) and shapes["blocks.0.mlp.fc_in.weight"] == (32, 8)
    assert shapes["blocks.0.mlp.fc_out.weight"] == (8, 32) and shapes["head.weight"] == (11, 8)


def test_bias_false_removes_every_bias():
    model = GPT(GPTConfig(**{**TINY.to_dict(), "bias": False}))
    assert not [n for n, _ in model.named_parameters() if n.endswith("bias")]


def test_init_statistics():
    model = GPT(GPTConfig(vocab_size=64, block_size=16, n_layer=4, n_head=4, n_embd=64), seed=0)
    sd = model.state_dict()
    assert abs(sd["blocks.0.attn.q_proj.weight"].std() - 0.02) < 0.002
    assert abs(sd["blocks.0.attn.o_proj.weight"].std() - 0.02 / math.sqrt(8)) < 0.001  # residual scaling
    assert abs(sd["blocks.3.mlp.fc_out.weight"].std() - 0.02 / math.sqrt(8)) < 0.001
    assert not sd["blocks.0.mlp.fc_in.bias"].any()
    np.testing.assert_array_equal(sd["ln_f.weight"], np.ones(64, np.float32))
    np.testing.assert_array_equal(sd["blocks.2.ln_1.weight"], np.ones(64, np.float32))
    assert all(v.dtype == np.float32 for v in sd.values())


def test_same_seed_same_weights_on_every_device(device):
    cpu = GPT(TINY, seed=3).state_dict()
    other = GPT(TINY, seed=3, device=device)
    assert other.device == device and all(p.device == device for p in other.parameters())
    sd = other.state_dict()
    assert list(sd) == list(cpu)
    for k in cpu:
        np.testing.assert_array_equal(sd[k], cpu[k])
    assert not np.array_equal(GPT(TINY, seed=4).state_dict()["head.weight"], cpu["head.weight"])


# -- gradients -----------------------------------------------------------------------------------


def _random_parameters(model, seed, always=()):
    """Three parameter tensors chosen by ``seed`` (gradcheck perturbs every element: keep it small)."""
    named = list(model.named_parameters())
    chosen = [named[i][0] for i in np.random.default_rng(seed).choice(len(named), size=3, replace=False)]
    params = dict(named)
    return [params[n] for n in dict.fromkeys([*always, *chosen])]


@pytest.mark.parametrize("seed", [0, 1])
def test_whole_model_loss_gradcheck(device, seed):
    model = GPT(TINY, seed=seed, device=device).astype(np.float64)
    idx, targets = _ids((2, 6), seed=seed + 10), _ids((2, 6), seed=seed + 20)
    targets[1, 0] = -1
    params = _random_parameters(model, seed, always=("tok_emb.weight", "pos_emb.weight"))
    assert ml.gradcheck(lambda *_: model(idx, targets)[1], *params, rtol=1e-5)


def test_whole_model_logits_gradcheck(device):
    model = GPT(TINY, seed=2, device=device).astype(np.float64)
    params = _random_parameters(model, seed=2, always=("head.weight", "ln_f.weight"))
    idx = _ids((2, 5), seed=2)
    assert ml.gradcheck(lambda *_: model(idx)[0], *params, rtol=1e-5)


def test_textbook_attention_gives_the_fused_kernels_logits_and_gradients(device, monkeypatch):
    """attn.fused = False runs scores, mask, softmax, weighted sum step by step; fused.Attention is an optimisation."""
    calls = []
    kernel = fused.Attention.forward
    monkeypatch.setattr(fused.Attention, "forward", staticmethod(lambda *a, **kw: calls.append(1) or kernel(*a, **kw)))
    model = GPT(TINY, seed=3, device=device).astype(np.float64)
    idx, targets = _ids((3, 6), seed=4), _ids((3, 6), seed=5)
    results = {}
    for use_fused in (True, False):
        for block in model.blocks:
            block.attn.fused = use_fused
        calls.clear()
        model.zero_grad()
        logits, loss = model(idx, targets)
        loss.backward()
        assert len(calls) == (TINY.n_layer if use_fused else 0)  # the textbook path never calls the kernel
        results[use_fused] = [logits.numpy()] + [backend.to_host(p.grad) for p in model.parameters()]
    for name, fast, plain in zip(["logits"] + [n for n, _ in model.named_parameters()], results[True], results[False]):
        np.testing.assert_allclose(fast, plain, rtol=1e-10, atol=1e-12, err_msg=name)


def test_backward_reaches_every_parameter(device):
    model = GPT(TINY, seed=0, device=device)
    _, loss = model(_ids((2, 6)), _ids((2, 6), seed=1))
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape, name
        assert backend.device_of(p.grad) == device
    assert float(np.abs(backend.to_host(model.tok_emb.weight.grad)).sum()) > 0


def test_tiny_model_overfits_a_fixed_batch(device):
    cfg = GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=16)
    model = GPT(cfg, seed=0, device=device)
    x, y = _ids((4, 8)), _ids((4, 8), seed=1)
    opt = optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
    first = None
    for _ in range(100):
        opt.zero_grad()
        _, loss = model(x, y)
        loss.backward()
        opt.step()
        first = first if first is not None else loss.item()
    assert first > 2.0 and loss.item() < 0.05


# -- dropout -------------------------------------------------------------------------------------


def test_dropout_changes_train_outputs_only(device):
    plain = GPT(TINY, seed=0, device=device)
    dropped = GPT(GPTConfig(**{**TINY.to_dict(), "dropout": 0.5}), seed=0, device=device)
    idx = _ids((2, 6))
    reference = plain(idx)[0].numpy()
    a, b = dropped(idx)[0].numpy(), dropped(idx)[0].numpy()
    assert not np.allclose(a, reference) and not np.allclose(a, b)
    dropped.eval()
    np.testing.assert_allclose(dropped(idx)[0].numpy(), reference, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(dropped(idx)[0].numpy(), dropped(idx)[0].numpy())


# -- generate ------------------------------------------------------------------------------------


def test_generate_returns_host_ids_and_keeps_the_prompt(device):
    model = GPT(TINY, seed=0, device=device)
    prompt = _ids((2, 3))
    out = model.generate(backend.to_device(prompt, device), 4, rng=0)
    assert type(out) is np.ndarray and out.dtype.kind == "i" and out.shape == (2, 7)
    np.testing.assert_array_equal(out[:, :3], prompt)
    assert out.min() >= 0 and out.max() < 11
    np.testing.assert_array_equal(model.generate(prompt, 4, rng=0), out)  # same rng, same sample
    assert model.training  # the mode is restored
    model.eval()
    model.generate(prompt, 1, rng=0)
    assert not model.training


def test_greedy_is_deterministic_and_equals_top_k_one(device):
    model = GPT(TINY, seed=1, device=device)
    prompt = _ids((3, 2))
    greedy = model.generate(prompt, 5, temperature=0)
    np.testing.assert_array_equal(model.generate(prompt, 5, temperature=0, rng=123), greedy)
    np.testing.assert_array_equal(model.generate(prompt, 5, temperature=1.0, top_k=1, rng=7), greedy)
    # greedy picks the argmax of the last position's logits
    logits, _ = model(prompt)
    np.testing.assert_array_equal(greedy[:, 2], logits.numpy()[:, -1].argmax(-1))


def test_generate_crops_context_to_block_size():
    model = GPT(TINY, seed=0)
    long = _ids((2, 10))  # longer than block_size 6
    out = model.generate(long, 3, temperature=0)
    assert out.shape == (2, 13)
    np.testing.assert_array_equal(out[:, :10], long)
    np.testing.assert_array_equal(out[:, 10:], model.generate(long[:, -6:], 3, temperature=0)[:, 6:])


def test_generate_top_k_restricts_the_choice():
    model = GPT(TINY, seed=0)
    prompt = _ids((1, 2))
    logits = model(prompt)[0].numpy()[0, -1]
    top3 = set(np.argsort(logits)[-3:].tolist())
    picks = {int(model.generate(prompt, 1, top_k=3, temperature=5.0, rng=s)[0, -1]) for s in range(40)}
    assert picks <= top3 and len(picks) > 1


@pytest.mark.parametrize("kwargs,match", [({"temperature": -1.0}, "temperature"), ({"top_k": 0}, "top_k")])
def test_generate_rejects_bad_sampling_settings_and_keeps_the_mode(kwargs, match):
    model = GPT(TINY).train()
    with pytest.raises(ValueError, match=match):
        model.generate(np.zeros((1, 2), dtype=np.int64), 3, **kwargs)
    assert model.training


def test_generate_stops_once_every_row_has_produced_the_stop_token(device):
    """Rows that stopped are padded with the stop token; the batch ends when the last row stops."""
    model = GPT(TINY, seed=1, device=device)
    prompt = _ids((3, 2))
    free = model.generate(prompt, 40, rng=0)[:, 2:]                       # (3, 40) without a stop token
    stop = next(t for t in range(TINY.vocab_size) if all((row == t).any() for row in free))
    first = [int(np.argmax(row == stop)) for row in free]                 # where each row first produces it
    assert len(set(first)) > 1 and max(first) < 39                        # rows stop at different steps, early
    out = model.generate(prompt, 40, rng=0, stop_token=stop)
    assert out.shape == (3, 2 + max(first) + 1)
    np.testing.assert_array_equal(out[:, :2], prompt)
    for row, sampled, f in zip(out[:, 2:], free, first):
        np.testing.assert_array_equal(row[: f + 1], sampled[: f + 1])    # the same samples up to the stop
        assert (row[f:] == stop).all()                                    # the stop token, then padding
    never = model.generate(prompt, 5, rng=0, stop_token=next(t for t in range(TINY.vocab_size)
                                                                 if not (free[:, :5] == t).any()))
    assert never.shape == (3, 7)                                          # not produced: the full length


@pytest.mark.parametrize("stop_token", [-1, 11, 2.0, True])
def test_generate_rejects_a_stop_token_outside_the_vocabulary(stop_token):
    with pytest.raises(ValueError, match=rf"stop_token must be a token id in \[0, 11\) or None, got {stop_token!r}"):
        GPT(TINY).generate(np.zeros((1, 2), dtype=np.int64), 3, stop_token=stop_token)


def test_forward_accepts_nested_lists_of_ids():
    model = GPT(TINY)
    logits, _ = model([[1, 2, 3]])
    assert logits.shape == (1, 3, TINY.vocab_size)


@pytest.mark.parametrize("kwargs,match", [({"max_new_tokens": -1}, "max_new_tokens"), ({"top_k": 2.5}, "top_k"),
                                          ({"temperature": float("nan")}, "temperature")])
def test_generate_names_the_bad_argument(kwargs, match):
    args = {"max_new_tokens": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        GPT(TINY).generate(np.zeros((1, 2), dtype=np.int64), **args)


@pytest.mark.parametrize("shape", [(2, 0), (0, 3)])
def test_an_empty_batch_or_sequence_is_one_clear_error(shape):
    with pytest.raises(ValueError, match=rf"at least one token, got shape \({shape[0]}, {shape[1]}\)"):
        GPT(TINY)(np.zeros(shape, dtype=np.int64))
