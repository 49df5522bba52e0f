"""minilora's adapter files are PEFT's format, proven with the real ``peft`` library (the ``peft`` extra).

A PyTorch twin of a small minilora GPT (minilora/bench/torch_twin.py, the same module names:
``blocks.{i}.attn.{q,k,v,o}_proj``, ``blocks.{i}.mlp.{fc_in,fc_out}``, ...) gets the same base weights.
Then an adapter saved by minilora is loaded by ``peft.PeftModel.from_pretrained`` and gives minilora's
logits, and an adapter saved by PEFT is loaded by minilora's ``load_adapter`` and gives PEFT's logits.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
peft = pytest.importorskip("peft")

from minilora.bench.torch_twin import TorchGPT, load_minilora_state  # noqa: E402  (needs torch)
from minilora.lora import LoraConfig, apply_lora, load_adapter, lora_layers, save_adapter  # noqa: E402
from minilora.lora.adapters import CONFIG_NAME  # noqa: E402
from minilora.models import GPT, GPTConfig  # noqa: E402

CFG = GPTConfig(vocab_size=19, block_size=8, n_layer=2, n_head=2, n_embd=16)
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "fc_in", "fc_out"]
IDX = np.random.default_rng(0).integers(0, CFG.vocab_size, (3, 8))


@pytest.fixture(autouse=True)
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def base_model() -> GPT:
    """A minilora GPT whose every weight (biases and LayerNorms too) is random, so each one matters."""
    model = GPT(CFG, seed=0, device="cpu")
    rng = np.random.default_rng(1)
    for _, p in model.named_parameters():
        p.data = (0.3 * rng.standard_normal(p.shape)).astype(np.float32)
    return model.eval()


def twin() -> TorchGPT:
    """The PyTorch twin with the base weights, copied by name."""
    model = TorchGPT(CFG, attention="explicit")
    load_minilora_state(model, base_model().state_dict())
    return model.eval()


def minilora_logits(model: GPT) -> np.ndarray:
    return model(IDX)[0].numpy()


def twin_logits(model: torch.nn.Module) -> np.ndarray:
    """TorchGPT's forward up to the logits (its forward returns the loss): embeddings, blocks, ln_f, head."""
    idx = torch.from_numpy(IDX)
    with torch.no_grad():
        x = model.tok_emb(idx) + model.pos_emb(torch.arange(idx.shape[1]))  # (B, T, C)
        for block in model.blocks:
            x = block(x)                                                   # (B, T, C)
        return model.head(model.ln_f(x)).numpy()                           # (B, T, V)


def test_twin_has_minilora_module_names():
    names = {name for name, _ in twin().named_modules()}
    assert names == {name for name, _ in base_model().named_modules()} - {"drop"} - {
        f"blocks.{i}.{m}" for i in range(CFG.n_layer) for m in ("attn.resid_drop", "mlp.drop")}
    assert {f"blocks.1.attn.{p}" for p in ("q_proj", "k_proj", "v_proj", "o_proj")} | {"blocks.1.mlp.fc_out"} <= names
    np.testing.assert_allclose(twin_logits(twin()), minilora_logits(base_model()), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("use_rslora", [False, True])
def test_peft_loads_minilora_adapter(tmp_path: Path, use_rslora: bool):
    model = apply_lora(base_model(), LoraConfig(r=2, alpha=6, target_modules=tuple(TARGETS), use_rslora=use_rslora), seed=2)
    rng = np.random.default_rng(3)
    for _, layer in lora_layers(model):  # as after training: B is no longer zero
        for p in (layer.lora_A, layer.lora_B):
            p.data = (0.5 * rng.standard_normal(p.shape)).astype(np.float32)
    save_adapter(model, tmp_path, base_model_name_or_path="tiny-test")
    written = json.loads((tmp_path / CONFIG_NAME).read_text())
    assert set(written) <= {f.name for f in dataclasses.fields(peft.LoraConfig)}  # PEFT knows every key we write

    peft_model = peft.PeftModel.from_pretrained(twin(), tmp_path).eval()
    config = peft_model.peft_config["default"]
    assert (config.r, config.lora_alpha, config.use_rslora, sorted(config.target_modules)) == (2, 6, use_rslora, sorted(TARGETS))
    adapted = [name for name, m in peft_model.named_modules() if isinstance(m, peft.tuners.lora.LoraLayer)]
    assert len(adapted) == CFG.n_layer * len(TARGETS)
    expected = minilora_logits(model)
    assert not np.allclose(twin_logits(twin()), expected, atol=1e-2)  # the adapter changes the logits
    np.testing.assert_allclose(twin_logits(peft_model.get_base_model()), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("use_rslora", [False, True])
def test_minilora_loads_peft_adapter(tmp_path: Path, use_rslora: bool):
    peft_model = peft.get_peft_model(twin(), peft.LoraConfig(r=4, lora_alpha=3, target_modules=TARGETS, use_rslora=use_rslora))
    generator = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if ".lora_" in name:
                p.copy_(0.5 * torch.randn(p.shape, generator=generator))
    peft_model.save_pretrained(tmp_path)
    written = json.loads((tmp_path / CONFIG_NAME).read_text())
    assert (written["r"], written["lora_alpha"], written["use_rslora"]) == (4, 3, use_rslora)

    model = load_adapter(base_model(), tmp_path).eval()  # no recorded base in PEFT's file: loads
    assert model.lora_config == LoraConfig(r=4, alpha=3, target_modules=tuple(written["target_modules"]),
                                           init="kaiming", use_rslora=use_rslora)
    assert len(lora_layers(model)) == CFG.n_layer * len(TARGETS)
    expected = twin_logits(peft_model.eval().get_base_model())
    assert not np.allclose(minilora_logits(base_model()), expected, atol=1e-2)
    np.testing.assert_allclose(minilora_logits(model), expected, rtol=1e-5, atol=1e-5)
