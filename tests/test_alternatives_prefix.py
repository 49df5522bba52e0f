"""Prefix-tuning (minilora.alternatives.prefix) and the attention it needs: keys before the sequence's own in the
fused kernel and the textbook path alike, float64 gradients on every device, the count, the cost, generate."""

from __future__ import annotations

import numpy as np
import pytest

import minilora as ml
import minilora.functional as F
from minilora import backend
from minilora.alternatives import (
    PrefixConfig,
    apply_prefix,
    materialize_prefix,
    prefix_cost,
    prefix_param_count,
)
from minilora.models import GPT, GPTConfig

CFG = GPTConfig(vocab_size=16, block_size=8, n_layer=2, n_head=2, n_embd=16)


def _ids(shape, seed=0):
    return np.random.default_rng(seed).integers(0, CFG.vocab_size, shape)


def _qkv(device, t=4, p=3, seed=0):
    rng = np.random.default_rng(seed)
    q = ml.tensor(backend.to_device(rng.normal(size=(2, 2, t, 3)), device), requires_grad=True)
    k = ml.tensor(backend.to_device(rng.normal(size=(2, 2, p + t, 3)), device), requires_grad=True)
    v = ml.tensor(backend.to_device(rng.normal(size=(2, 2, p + t, 3)), device), requires_grad=True)
    return q, k, v


def test_fused_attention_with_prefix_keys_is_the_composed_one_and_gradchecks(device):
    q, k, v = _qkv(device)
    fast, plain = F.scaled_dot_product_attention(q, k, v), F.attention_composed(q, k, v)
    np.testing.assert_allclose(fast.numpy(), plain.numpy(), rtol=1e-12, atol=1e-12)
    assert ml.gradcheck(lambda *_: F.scaled_dot_product_attention(q, k, v), q, k, v, rtol=1e-5)
    assert ml.gradcheck(lambda *_: F.attention_composed(q, k, v), q, k, v, rtol=1e-5)


def test_each_query_sees_every_prefix_key_and_no_later_token(device):
    q, k, v = _qkv(device, t=4, p=3)
    y = F.scaled_dot_product_attention(q, k, v).numpy()
    qh, kh, vh = q.numpy(), k.numpy(), v.numpy()
    for i in range(4):  # query i sees keys 0 .. 3 + i: the 3 prefix keys and tokens 0..i
        s = qh[:, :, i:i + 1] @ kh[:, :, :4 + i].swapaxes(-1, -2) / np.sqrt(3)
        w = np.exp(s - s.max(-1, keepdims=True))
        np.testing.assert_allclose(y[:, :, i:i + 1], (w / w.sum(-1, keepdims=True)) @ vh[:, :, :4 + i], rtol=1e-10)


def test_attention_refuses_fewer_keys_than_queries():
    q, k, v = _qkv("cpu", t=4, p=0)
    with pytest.raises(ValueError, match="T_k >= T"):
        F.scaled_dot_product_attention(k[:, :, :4], q[:, :, :3], v[:, :, :3])


@pytest.mark.parametrize("projection", [False, True])
def test_textbook_attention_gives_the_fused_logits_and_gradients_with_a_prefix(device, projection):
    model = apply_prefix(GPT(CFG, seed=3, device=device), PrefixConfig(3, projection, 5), seed=1).astype(np.float64)
    idx, targets = _ids((3, 6), 4), _ids((3, 6), 5)
    results = {}
    for use_fused in (True, False):
        for block in model.blocks:
            block.attn.fused = use_fused
        model.zero_grad()
        logits, loss = model(backend.to_device(idx, device), backend.to_device(targets, device))
        loss.backward()
        results[use_fused] = [logits.numpy()] + [backend.to_host(p.grad) for p in model.parameters() if p.requires_grad]
    for fast, plain in zip(results[True], results[False], strict=True):
        np.testing.assert_allclose(fast, plain, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("projection", [False, True])
def test_prefix_gradcheck_float64(device, projection):
    model = apply_prefix(GPT(CFG, seed=5, device=device), PrefixConfig(2, projection, 3), seed=6).astype(np.float64)
    idx, targets = backend.to_device(_ids((2, 5), 8), device), backend.to_device(_ids((2, 5), 9), device)
    params = [p for p in model.parameters() if p.requires_grad]
    assert ml.gradcheck(lambda *_: model(idx, targets)[1], *params, rtol=1e-5)


@pytest.mark.parametrize("projection", [False, True])
def test_only_the_prefix_trains_and_its_count_is_the_formula(projection):
    config = PrefixConfig(4, projection, 8)
    model = apply_prefix(GPT(CFG), config)
    assert all(name.startswith("prefix_encoder.") for name, p in model.named_parameters() if p.requires_grad)
    p, c, L, e = 4, CFG.n_embd, CFG.n_layer, 8
    expected = p * c + c * e + e + e * L * 2 * c + L * 2 * c if projection else p * L * 2 * c
    assert model.num_parameters(trainable_only=True) == prefix_param_count(L, c, config) == expected


def test_without_a_prefix_the_model_is_the_base_bit_for_bit(device):
    model = GPT(CFG, seed=1, device=device)
    idx = backend.to_device(_ids((2, 8)), device)
    with ml.no_grad():
        base = backend.to_host(model(idx)[0].data)
        apply_prefix(model, PrefixConfig(3))
        with_prefix = backend.to_host(model(idx)[0].data)
        for block in model.blocks:
            block.attn.prefix = None
        np.testing.assert_array_equal(backend.to_host(model(idx)[0].data), base)
    assert not np.allclose(with_prefix, base)  # a prefix changes the model from step 0 (unlike adapters and LoRA)


def test_materialized_prefix_gives_the_same_logits_without_the_mlp():
    model = apply_prefix(GPT(CFG, seed=2), PrefixConfig(3, True, 6), seed=3).astype(np.float64)
    idx = _ids((2, 6))
    with ml.no_grad():
        before = model(idx)[0].numpy()
        materialize_prefix(model)
        after = model(idx)[0].numpy()
    assert model.prefix_encoder.transform_out is None and model.prefix_encoder.embedding.shape == (3, 2 * 2 * 16)
    np.testing.assert_allclose(after, before, rtol=1e-12, atol=1e-12)


def test_the_prefix_takes_no_positions_and_generate_works(device):
    model = apply_prefix(GPT(CFG, seed=4, device=device), PrefixConfig(5), seed=0)
    with ml.no_grad():
        logits, _ = model(backend.to_device(_ids((2, CFG.block_size)), device))  # the whole block_size still fits
    assert logits.shape == (2, CFG.block_size, CFG.vocab_size)
    out = model.generate(_ids((2, 3)), max_new_tokens=7, temperature=0)
    assert out.shape == (2, 10) and out.min() >= 0 and out.max() < CFG.vocab_size
    # greedy generation is the argmax of the model's own forward on the cropped context: positions 0..T-1
    context = out[:, -CFG.block_size - 1:-1]
    with ml.no_grad():
        last = backend.to_host(model(backend.to_device(context, device))[0].data)[:, -1]
    np.testing.assert_array_equal(last.argmax(-1), out[:, -1])


def test_prefix_cost_counts_the_attention_and_the_cache():
    cost = prefix_cost(n_layer=2, n_head=2, n_embd=16, block_size=8, num_virtual_tokens=3, seq_len=4)
    assert cost["keys_per_query"] == 7 and cost["attention_scores"] == 2 * 4 * 7
    assert cost["attention_scores_base"] == 2 * 16 and cost["attention_ratio"] == 7 / 4
    assert cost["kv_cache_extra"] == 2 * 3 * 16 * 2 == cost["kv_cache"] - cost["kv_cache_base"]
    assert cost["positions_taken"] == 0 and cost["usable_context"] == 8
    assert cost["positions_taken_peft"] == 3 and cost["usable_context_peft"] == 5
    with pytest.raises(ValueError, match="seq_len <= block_size"):
        prefix_cost(2, 2, 16, 8, 3, seq_len=9)


@pytest.mark.parametrize("kwargs, match", [
    ({"num_virtual_tokens": 0}, "num_virtual_tokens must be an integer >= 1, got 0"),
    ({"encoder_hidden_size": -1}, "encoder_hidden_size must be an integer >= 1"),
    ({"prefix_projection": "yes"}, "prefix_projection must be True or False"),
])
def test_bad_settings_are_one_line_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PrefixConfig(**kwargs)


def test_a_second_prefix_and_a_model_without_attention_are_refused():
    model = apply_prefix(GPT(CFG))
    with pytest.raises(ValueError, match="already has a prefix"):
        apply_prefix(model)
    with pytest.raises(ValueError, match="no attention module"):
        apply_prefix(ml.nn.Sequential(ml.nn.Linear(4, 4)))


def test_the_prefix_columns_are_peft_past_key_values_layer_by_layer():
    """P (p, L·2·C): layer i's keys are columns [2iC, (2i+1)C), its values the next C, each C as H heads of h."""
    model = apply_prefix(GPT(CFG), PrefixConfig(3), seed=0)
    table = model.prefix_encoder.embedding.numpy()                                 # (3, 2·2·16)
    c, heads = CFG.n_embd, CFG.n_head
    for i, block in enumerate(model.blocks):
        keys, values = block.attn.prefix(2)
        assert keys.shape == values.shape == (2, heads, 3, c // heads)
        for what, got in ((2 * i, keys), (2 * i + 1, values)):
            expected = table[:, what * c:(what + 1) * c].reshape(3, heads, c // heads).transpose(1, 0, 2)
            np.testing.assert_array_equal(got.numpy()[1], expected)
