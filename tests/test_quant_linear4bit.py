"""The frozen 4-bit linear layer: forward on the dequantised weight, the input's gradient only, quantize_model,
LoRA on top, the refused merge and the reported re-quantised one, memory stored vs live."""

import tracemalloc

import numpy as np
import pytest
from lora_fixtures import CFG, batch, host

import minilora as ml
from minilora import backend, nn
from minilora.engine.tensor import Tensor
from minilora.lora import LoraConfig, apply_lora, lora_layers, merge_lora
from minilora.models import GPT
from minilora.quant import Linear4bit, dequantize_nf4, merge_and_requantize, quantize_model, stored_bytes


def _linear(k=128, d=64, bias=True, device="cpu"):
    return nn.Linear(k, d, bias=bias, rng=0, device=device)


@pytest.mark.parametrize("bias", [True, False])
def test_forward_is_x_times_the_dequantised_weight_plus_the_bias(device, bias):
    lin = _linear(bias=bias, device=device)
    q = Linear4bit.from_linear(lin, blocksize=64, double_quant=False)
    assert isinstance(q, nn.Linear) and q.device == device and q.quant.device == device
    x = ml.tensor(np.random.default_rng(0).standard_normal((2, 3, 128)).astype(np.float32), device=device)
    w = host(dequantize_nf4(q.quant))
    expected = host(x) @ w.T + (host(lin.bias) if bias else 0)
    np.testing.assert_allclose(host(q(x)), expected, rtol=1e-5, atol=1e-5)
    assert np.abs(w - host(lin.weight)).max() <= 0.153 * np.abs(host(lin.weight)).max()  # half the widest step
    assert (host(q.weight) == w).all() and not q.weight.requires_grad


def test_backward_gives_the_input_its_gradient_and_the_weight_none(device):
    q = Linear4bit.from_linear(_linear(device=device))
    x = ml.tensor(np.random.default_rng(1).standard_normal((5, 128)).astype(np.float32), requires_grad=True,
                  device=device)
    q(x).sum().backward()
    w = host(dequantize_nf4(q.quant))
    np.testing.assert_allclose(host(x.grad), np.ones((5, 64)) @ w, rtol=1e-5, atol=1e-5)
    assert [p for p in q.parameters() if p.requires_grad] == [] and q.bias.grad is None


def test_gradcheck_of_the_input_gradient_in_float64():
    q = Linear4bit.from_linear(_linear(k=64, d=32))
    x = Tensor(np.random.default_rng(2).standard_normal((3, 64)), requires_grad=True)  # float64
    assert x.dtype == np.float64 and q(x).dtype == np.float64
    assert ml.gradcheck(lambda t: (q(t) ** 2).sum(), x)


def test_the_weight_is_read_only_and_input_sizes_are_checked():
    q = Linear4bit.from_linear(_linear())
    with pytest.raises(AttributeError, match="read-only"):
        q.weight = nn.Parameter(np.zeros((64, 128), np.float32))
    with pytest.raises(ValueError, match="input has last dimension 7, expected 128"):
        q(ml.tensor(np.zeros((1, 7), np.float32)))


def test_quantize_model_replaces_every_linear_but_the_head():
    model = GPT(CFG, seed=0)
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    quantize_model(model)
    quantized = [n for n, m in model.named_modules() if isinstance(m, Linear4bit)]
    assert quantized == [n for n in linears if n != "head"] and not isinstance(model.head, Linear4bit)
    assert model.num_parameters(trainable_only=True) == 0
    only = quantize_model(GPT(CFG, seed=0), target_modules=["q_proj", "v_proj"], blocksize=32, double_quant=False)
    assert [n.rsplit(".", 1)[-1] for n, m in only.named_modules() if isinstance(m, Linear4bit)] == ["q_proj",
                                                                                                  "v_proj"] * 2
    with pytest.raises(ValueError, match="target module 'nope' matches no Linear layer"):
        quantize_model(GPT(CFG, seed=0), target_modules=["nope"])


def test_the_quantised_model_computes_nearly_what_the_original_computes(device):
    idx, targets = batch(device)
    model = GPT(CFG, seed=0).to(device)
    _, loss = model(idx, targets)
    quantize_model(model)
    _, qloss = model(idx, targets)
    assert abs(qloss.item() - loss.item()) < 0.05 * loss.item()


def test_lora_trains_on_a_4bit_base_and_the_base_gets_no_gradient(device):
    idx, targets = batch(device)
    model = quantize_model(GPT(CFG, seed=0).to(device))
    with ml.no_grad():
        before = host(model(idx)[0])
    apply_lora(model, LoraConfig(r=2, target_modules=("q_proj", "v_proj", "fc_in")), seed=0)
    layers = lora_layers(model)
    assert layers and all(isinstance(layer.base, Linear4bit) for _, layer in layers)
    with ml.no_grad():
        np.testing.assert_allclose(host(model(idx)[0]), before, rtol=1e-6, atol=1e-6)  # B = 0 at init
    _, loss = model(idx, targets)
    loss.backward()
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(".lora_" in n for n in trainable)
    assert all(p.grad is not None for n, p in model.named_parameters() if ".lora_B" in n)


def test_dora_reads_the_dequantised_base_weight():
    model = quantize_model(GPT(CFG, seed=0))
    apply_lora(model, LoraConfig(r=2, target_modules=("q_proj",), use_dora=True), seed=0)
    idx, targets = batch("cpu")
    _, loss = model(idx, targets)
    loss.backward()
    assert np.isfinite(loss.item())


def test_merging_into_a_4bit_base_is_refused_and_the_requantising_merge_reports_its_error():
    idx, _ = batch("cpu")
    model = quantize_model(GPT(CFG, seed=0))
    apply_lora(model, LoraConfig(r=2, target_modules=("q_proj", "v_proj")), seed=0)
    rng = np.random.default_rng(0)
    for _, layer in lora_layers(model):
        layer.lora_B.data = rng.standard_normal(layer.lora_B.shape).astype(np.float32) * 0.05
    with ml.no_grad():
        unmerged = host(model(idx)[0])
    with pytest.raises(ValueError, match=r"stored in 4 bits \(NF4\).*quant.merge_and_requantize"):
        merge_lora(model)
    report = merge_and_requantize(model)
    assert sorted(report) == [f"blocks.{i}.attn.{p}" for i in range(2) for p in ("q_proj", "v_proj")]
    assert all(r["max_abs_change"] > r["mean_abs_change"] > 0 for r in report.values())
    assert lora_layers(model) == [] and isinstance(model.blocks[0].attn.q_proj, Linear4bit)
    with ml.no_grad():
        merged = host(model(idx)[0])
    assert 0 < np.abs(merged - unmerged).max() < 0.5  # close, not equal: the pitfall, measured


def test_the_model_moves_with_its_codes(device):
    idx, _ = batch(device)
    model = quantize_model(GPT(CFG, seed=0))
    with ml.no_grad():
        on_cpu = host(model(backend.to_host(idx))[0])
    model.to(device)
    with ml.no_grad():
        logits = model(idx)[0]
    assert backend.device_of(logits.data) == device and model.blocks[0].attn.q_proj.quant.device == device
    np.testing.assert_allclose(host(logits), on_cpu, rtol=1e-5, atol=1e-5)


def test_stored_bytes_are_about_an_eighth_and_the_dequantised_weight_is_live_only_during_a_step():
    lin = nn.Linear(1024, 1024, rng=0)
    q = Linear4bit.from_linear(lin, blocksize=64, double_quant=True)
    full = 1024 * 1024 * 4
    assert q.nbytes == pytest.approx(full * 4.127 / 32, rel=1e-3)
    assert stored_bytes(nn.Sequential(q))["quantized"] == q.nbytes
    x = ml.tensor(np.ones((8, 1024), np.float32), requires_grad=True)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        start, _ = tracemalloc.get_traced_memory()
        y = q(x).sum()
        between, _ = tracemalloc.get_traced_memory()
        y.backward()
        now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - start >= full            # a float32 W existed during the step ...
    assert between - start < full / 4      # ... not kept for the backward pass (dequantised again)
    assert now - start < full / 4          # ... and none is kept afterwards
