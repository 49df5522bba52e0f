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


def randomize_lora(peft_model, seed: int = 4) -> None:
    """Every LoRA tensor of a PEFT model ← 0.5 · N(0, 1), drawn in parameter order from ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if ".lora_" in name:
                p.copy_(0.5 * torch.randn(p.shape, generator=generator))


def test_twin_has_minilora_module_names():
    names = {name for name, _ in twin().named_modules()}
    assert names == {name for name, _ in base_model().named_modules()} - {"drop"} - {
        f"blocks.{i}.{m}" for i in range(CFG.n_layer) for m in ("attn.resid_drop", "mlp.drop")}
    assert {f"blocks.1.attn.{p}" for p in ("q_proj", "k_proj", "v_proj", "o_proj")} | {"blocks.1.mlp.fc_out"} <= names
    np.testing.assert_allclose(twin_logits(twin()), minilora_logits(base_model()), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("use_rslora, init_lora_weights", [(False, True), (True, "gaussian")])
def test_peft_loads_minilora_adapter(tmp_path: Path, use_rslora: bool, init_lora_weights: bool | str):
    ours = LoraConfig(r=2, lora_alpha=6, target_modules=tuple(TARGETS), use_rslora=use_rslora,
                      init_lora_weights=init_lora_weights)
    model = apply_lora(base_model(), ours, seed=2)
    rng = np.random.default_rng(3)
    for _, layer in lora_layers(model):  # as after training: B is no longer zero
        for p in (layer.lora_A, layer.lora_B):
            p.data = (0.5 * rng.standard_normal(p.shape)).astype(np.float32)
    save_adapter(model, tmp_path, base_model_name_or_path="tiny-test")
    written = json.loads((tmp_path / CONFIG_NAME).read_text())
    assert set(written) <= {f.name for f in dataclasses.fields(peft.LoraConfig)}  # PEFT knows every key we write

    peft_model = peft.PeftModel.from_pretrained(twin(), tmp_path).eval()
    config = peft_model.peft_config["default"]
    assert ((config.r, config.lora_alpha, config.use_rslora, sorted(config.target_modules))
            == (2, 6, use_rslora, sorted(TARGETS)))
    assert written["init_lora_weights"] == config.init_lora_weights == init_lora_weights  # PEFT's own spelling
    adapted = [name for name, m in peft_model.named_modules() if isinstance(m, peft.tuners.lora.LoraLayer)]
    assert len(adapted) == CFG.n_layer * len(TARGETS)
    expected = minilora_logits(model)
    assert not np.allclose(twin_logits(twin()), expected, atol=1e-2)  # the adapter changes the logits
    np.testing.assert_allclose(twin_logits(peft_model.get_base_model()), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("use_rslora", [False, True])
def test_minilora_loads_peft_adapter(tmp_path: Path, use_rslora: bool):
    peft_model = peft.get_peft_model(twin(),
                                     peft.LoraConfig(r=4, lora_alpha=3, target_modules=TARGETS, use_rslora=use_rslora))
    randomize_lora(peft_model)  # B = 0 at init: give every adapter something to say
    peft_model.save_pretrained(tmp_path)
    written = json.loads((tmp_path / CONFIG_NAME).read_text())
    assert (written["r"], written["lora_alpha"], written["use_rslora"]) == (4, 3, use_rslora)

    model = load_adapter(base_model(), tmp_path).eval()  # no recorded base in PEFT's file: loads
    assert model.lora_config == LoraConfig(r=4, lora_alpha=3, target_modules=tuple(written["target_modules"]),
                                           init_lora_weights=True, use_rslora=use_rslora)
    assert written["init_lora_weights"] is True
    assert len(lora_layers(model)) == CFG.n_layer * len(TARGETS)
    expected = twin_logits(peft_model.eval().get_base_model())
    assert not np.allclose(minilora_logits(base_model()), expected, atol=1e-2)
    np.testing.assert_allclose(minilora_logits(model), expected, rtol=1e-5, atol=1e-5)


# -- DoRA (H7) --------------------------------------------------------------------------------------


def test_peft_loads_minilora_dora_adapter(tmp_path: Path):
    model = apply_lora(base_model(), LoraConfig(r=2, lora_alpha=6, target_modules=tuple(TARGETS), use_dora=True),
                       seed=2)
    rng = np.random.default_rng(3)
    for _, layer in lora_layers(model):  # as after training: B nonzero, m away from ‖W0‖
        for p in (layer.lora_A, layer.lora_B):
            p.data = (0.5 * rng.standard_normal(p.shape)).astype(np.float32)
        m = layer.lora_magnitude_vector
        m.data = (m.data * rng.uniform(0.5, 1.5, m.shape)).astype(np.float32)
    save_adapter(model, tmp_path)
    peft_model = peft.PeftModel.from_pretrained(twin(), tmp_path).eval()
    assert peft_model.peft_config["default"].use_dora is True
    magnitudes = [n for n, _ in peft_model.named_parameters() if "lora_magnitude_vector" in n]
    assert len(magnitudes) == CFG.n_layer * len(TARGETS)
    expected = minilora_logits(model.eval())
    assert not np.allclose(twin_logits(twin()), expected, atol=1e-2)
    np.testing.assert_allclose(twin_logits(peft_model.get_base_model()), expected, rtol=1e-5, atol=1e-5)


def test_minilora_loads_peft_dora_adapter(tmp_path: Path):
    from safetensors.numpy import load_file

    from minilora.lora.adapters import WEIGHTS_NAME, peft_magnitude_key

    peft_model = peft.get_peft_model(twin(), peft.LoraConfig(r=4, lora_alpha=3, target_modules=TARGETS, use_dora=True))
    torch.manual_seed(5)
    opt = torch.optim.Adam([p for p in peft_model.parameters() if p.requires_grad], lr=0.05)
    idx = torch.from_numpy(IDX)
    for _ in range(5):  # a few real training steps: B and m move away from their initial values
        opt.zero_grad()
        peft_model(idx, idx).backward()
        opt.step()
    peft_model.save_pretrained(tmp_path)
    saved = load_file(str(tmp_path / WEIGHTS_NAME))
    key = peft_magnitude_key("blocks.0.attn.q_proj")  # PEFT's own name for m: ...q_proj.lora_magnitude_vector
    assert key in saved and saved[key].shape == (CFG.n_embd,)
    assert json.loads((tmp_path / CONFIG_NAME).read_text())["use_dora"] is True

    model = load_adapter(base_model(), tmp_path).eval()
    assert model.lora_config.use_dora
    layer = dict(lora_layers(model))["blocks.0.attn.q_proj"]
    assert not np.allclose(layer.lora_magnitude_vector.numpy(), np.linalg.norm(layer.base.weight.numpy(), axis=1))
    expected = twin_logits(peft_model.eval().get_base_model())
    assert not np.allclose(minilora_logits(base_model()), expected, atol=1e-2)
    np.testing.assert_allclose(minilora_logits(model), expected, rtol=1e-5, atol=1e-5)


# -- VeRA: the shared projections travel in the file (save_projection=True), both ways --------------------------


def test_peft_loads_minilora_vera_adapter(tmp_path: Path):
    from minilora.lora import VeraConfig, apply_vera, vera_layers

    model = apply_vera(base_model(), VeraConfig(r=24, target_modules=tuple(TARGETS), d_initial=0.2))
    rng = np.random.default_rng(5)
    for _, layer in vera_layers(model):  # as after training: λ_b is no longer zero
        for p in (layer.vera_lambda_b, layer.vera_lambda_d):
            p.data = rng.standard_normal(p.shape).astype(np.float32)
    save_adapter(model, tmp_path, base_model_name_or_path="tiny-test")
    written = json.loads((tmp_path / CONFIG_NAME).read_text())
    assert set(written) <= {f.name for f in dataclasses.fields(peft.VeraConfig)}  # PEFT knows every key we write

    peft_model = peft.PeftModel.from_pretrained(twin(), tmp_path).eval()
    config = peft_model.peft_config["default"]
    assert (config.peft_type, config.r, config.d_initial, config.save_projection, sorted(config.target_modules)) == (
        peft.PeftType.VERA, 24, 0.2, True, sorted(TARGETS))
    shared = vera_layers(model)[0][1]
    # ours, not torch's
    np.testing.assert_array_equal(peft_model.base_model.vera_A["default"].numpy(), shared.vera_A.numpy())
    np.testing.assert_array_equal(peft_model.base_model.vera_B["default"].numpy(), shared.vera_B.numpy())
    adapted = [name for name, m in peft_model.named_modules() if isinstance(m, peft.tuners.vera.VeraLayer)]
    assert len(adapted) == CFG.n_layer * len(TARGETS)
    expected = minilora_logits(model)
    assert not np.allclose(twin_logits(twin()), expected, atol=1e-2)  # the adapter changes the logits
    np.testing.assert_allclose(twin_logits(peft_model.get_base_model()), expected, rtol=1e-5, atol=1e-5)


def test_minilora_loads_peft_vera_adapter(tmp_path: Path):
    from minilora.lora import VeraConfig, vera_layers

    peft_model = peft.get_peft_model(twin(), peft.VeraConfig(r=24, target_modules=TARGETS, d_initial=0.3))
    generator = torch.Generator().manual_seed(6)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if ".vera_lambda_" in name:
                p.copy_(torch.randn(p.shape, generator=generator))
    peft_model.save_pretrained(tmp_path)

    model = load_adapter(base_model(), tmp_path).eval()  # no recorded base in PEFT's file: loads
    assert model.vera_config == VeraConfig(r=24, target_modules=tuple(json.loads(
        (tmp_path / CONFIG_NAME).read_text())["target_modules"]), d_initial=0.3)
    shared = vera_layers(model)[0][1]
    np.testing.assert_array_equal(shared.vera_A.numpy(), peft_model.base_model.vera_A["default"].numpy())  # torch's
    expected = twin_logits(peft_model.eval().get_base_model())
    assert not np.allclose(minilora_logits(base_model()), expected, atol=1e-2)
    np.testing.assert_allclose(minilora_logits(model), expected, rtol=1e-5, atol=1e-5)


def test_peft_vera_file_without_projections_is_refused(tmp_path: Path):
    with pytest.warns(UserWarning, match="PRNG"):
        config = peft.VeraConfig(r=4, target_modules=["q_proj"], save_projection=False)
    peft.get_peft_model(twin(), config).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match=r"adapter_config.json: save_projection=False is not supported") as err:
        load_adapter(base_model(), tmp_path)
    assert "\n" not in str(err.value)


# -- PiSSA / OLoRA (H7) -----------------------------------------------------------------------------


@pytest.mark.parametrize("init", ["pissa", "olora"])
def test_pissa_olora_init_is_peft_s(init: str):
    """minilora's factors give PEFT's s·B A and residual on the same weights (SVD/QR signs aside: compare products)."""
    peft_model = peft.get_peft_model(twin(), peft.LoraConfig(r=2, lora_alpha=3, target_modules=TARGETS,
                                                             init_lora_weights=init))
    model = apply_lora(base_model(),
                       LoraConfig(r=2, lora_alpha=3, target_modules=tuple(TARGETS), init_lora_weights=init))
    theirs = dict(peft_model.get_base_model().named_modules())
    for name, layer in lora_layers(model):
        peft_layer = theirs[name]
        peft_ba = (peft_layer.lora_B["default"].weight @ peft_layer.lora_A["default"].weight).detach().numpy()
        np.testing.assert_allclose(layer.lora_B.numpy() @ layer.lora_A.numpy(), peft_ba, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(layer.base.weight.numpy(), peft_layer.base_layer.weight.detach().numpy(), atol=1e-5)


@pytest.mark.parametrize("init", ["pissa", "olora"])
def test_peft_loads_converted_pissa_adapter_on_the_original_base(tmp_path: Path, init: str):
    model = apply_lora(base_model(),
                       LoraConfig(r=2, lora_alpha=3, target_modules=tuple(TARGETS), init_lora_weights=init))
    rng = np.random.default_rng(6)
    for _, layer in lora_layers(model):  # as after training: A and B moved from their SVD / QR values
        for p in (layer.lora_A, layer.lora_B):
            p.data = (p.data + 0.2 * rng.standard_normal(p.shape)).astype(np.float32)
    save_adapter(model, tmp_path)
    peft_model = peft.PeftModel.from_pretrained(twin(), tmp_path).eval()  # the ORIGINAL base weights
    config = peft_model.peft_config["default"]
    assert (config.r, config.lora_alpha, config.init_lora_weights) == (4, 6, True)
    expected = minilora_logits(model.eval())
    assert not np.allclose(twin_logits(twin()), expected, atol=1e-2)
    np.testing.assert_allclose(twin_logits(peft_model.get_base_model()), expected, rtol=1e-4, atol=1e-4)


def test_minilora_loads_peft_converted_pissa_adapter(tmp_path: Path):
    peft_model = peft.get_peft_model(twin(), peft.LoraConfig(r=2, lora_alpha=3, target_modules=TARGETS,
                                                             init_lora_weights="pissa"))
    peft_model.peft_config["default"].init_lora_weights = True  # PEFT's recipe for saving the initial adapter
    peft_model.save_pretrained(tmp_path / "init")
    peft_model.peft_config["default"].init_lora_weights = "pissa"
    torch.manual_seed(7)
    opt = torch.optim.Adam([p for p in peft_model.parameters() if p.requires_grad], lr=0.02)
    idx = torch.from_numpy(IDX)
    for _ in range(3):
        opt.zero_grad()
        peft_model(idx, idx).backward()
        opt.step()
    expected = twin_logits(peft_model.eval().get_base_model())
    peft_model.save_pretrained(tmp_path / "lora", path_initial_model_for_weight_conversion=str(tmp_path / "init"))
    model = load_adapter(base_model(), tmp_path / "lora").eval()  # plain rank-4 LoRA on the original base
    assert (model.lora_config.r, model.lora_config.lora_alpha) == (4, 6)
    np.testing.assert_allclose(minilora_logits(model), expected, rtol=1e-4, atol=1e-4)


# -- several adapters: PEFT's folder layout (default at the root, the others in subfolders), both ways --------------


def _randomise_adapter(model, name: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _, layer in lora_layers(model):
        if name in layer.adapter_names():
            adapter = layer.adapter(name)
            for p in (adapter.lora_A, adapter.lora_B):
                p.data = (0.5 * rng.standard_normal(p.shape)).astype(np.float32)


def _two_minilora_adapters():
    from minilora.lora import add_adapter

    model = apply_lora(base_model(), LoraConfig(r=2, lora_alpha=6, target_modules=tuple(TARGETS)), seed=2)
    add_adapter(model, "other", LoraConfig(r=4, lora_alpha=3, use_rslora=True, target_modules=("q_proj", "fc_in")))
    _randomise_adapter(model, "default", 3)
    _randomise_adapter(model, "other", 4)
    return model.eval()


def test_peft_loads_minilora_multi_adapter_folder(tmp_path: Path):
    from minilora.lora import add_weighted_adapter, set_adapter

    model = _two_minilora_adapters()
    add_weighted_adapter(model, ["default", "other"], [0.7, -0.4], "mix", combination_type="cat")
    save_adapter(model, tmp_path)
    assert {p.name for p in tmp_path.iterdir()} >= {"other", "mix", CONFIG_NAME}
    peft_model = peft.PeftModel.from_pretrained(twin(), tmp_path).eval()
    for name in ("other", "mix"):
        peft_model.load_adapter(tmp_path / name, adapter_name=name)
    assert peft_model.peft_config["mix"].r == 6 and peft_model.peft_config["other"].use_rslora
    outputs = set()
    for names in ("default", "other", "mix", ["default", "other"]):
        set_adapter(model, names)
        peft_model.base_model.set_adapter(names)
        expected = minilora_logits(model)
        outputs.add(expected.round(3).tobytes())
        np.testing.assert_allclose(twin_logits(peft_model.get_base_model()), expected, rtol=1e-5, atol=1e-5)
    assert len(outputs) == 4   # every choice of adapters computes something else


def test_minilora_loads_peft_multi_adapter_folder(tmp_path: Path):
    from minilora.lora import adapter_configs, set_adapter

    peft_model = peft.get_peft_model(twin(), peft.LoraConfig(r=4, lora_alpha=3, target_modules=TARGETS))
    peft_model.add_adapter("second", peft.LoraConfig(r=2, lora_alpha=5, use_rslora=True,
                                                     target_modules=["q_proj", "v_proj"]))
    randomize_lora(peft_model)  # B = 0 at init: give every adapter something to say
    peft_model.save_pretrained(tmp_path)
    assert (tmp_path / "second" / CONFIG_NAME).is_file()          # PEFT's layout: default at the root

    model = load_adapter(base_model(), tmp_path)
    load_adapter(model, tmp_path / "second", adapter_name="second").eval()
    assert adapter_configs(model)["second"] == LoraConfig(r=2, lora_alpha=5, use_rslora=True, target_modules=tuple(
        json.loads((tmp_path / "second" / CONFIG_NAME).read_text())["target_modules"]))
    for names in ("default", "second", ["default", "second"]):
        set_adapter(model, names)
        peft_model.base_model.set_adapter(names)
        np.testing.assert_allclose(minilora_logits(model), twin_logits(peft_model.eval().get_base_model()),
                                   rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("combination_type", ["cat", "linear", "svd"])
def test_add_weighted_adapter_is_peft_s(tmp_path: Path, combination_type: str):
    """The same two adapters combined by PEFT and by minilora: equal factors for cat and linear (PEFT's sqrt(|w s|)
    on both sides, the sign on A), equal products for svd (singular vectors' signs may differ)."""
    from minilora.lora import add_adapter, add_weighted_adapter

    model = apply_lora(base_model(), LoraConfig(r=2, lora_alpha=6, target_modules=tuple(TARGETS)), seed=2)
    add_adapter(model, "other", LoraConfig(r=2, lora_alpha=3, use_rslora=True, target_modules=tuple(TARGETS)))
    _randomise_adapter(model, "default", 3)
    _randomise_adapter(model, "other", 4)
    save_adapter(model, tmp_path)
    peft_model = peft.PeftModel.from_pretrained(twin(), tmp_path)
    peft_model.load_adapter(tmp_path / "other", adapter_name="other")
    weights = [0.8, -0.3]
    peft_model.base_model.add_weighted_adapter(["default", "other"], weights, "mix", combination_type=combination_type)
    add_weighted_adapter(model, ["default", "other"], weights, "mix", combination_type=combination_type)
    theirs = dict(peft_model.get_base_model().named_modules())
    for name, layer in lora_layers(model):
        peft_a = theirs[name].lora_A["mix"].weight.detach().numpy()
        peft_b = theirs[name].lora_B["mix"].weight.detach().numpy()
        assert theirs[name].scaling["mix"] == layer.adapter("mix").scaling == 1.0
        if combination_type == "svd":
            np.testing.assert_allclose(layer.adapter_delta_weight("mix"), peft_b @ peft_a, rtol=1e-4, atol=1e-5)
        else:
            np.testing.assert_allclose(layer.adapter("mix").lora_A.numpy(), peft_a, rtol=1e-6, atol=1e-6)
            np.testing.assert_allclose(layer.adapter("mix").lora_B.numpy(), peft_b, rtol=1e-6, atol=1e-6)


def test_peft_only_combination_type_refused_in_one_line():
    from minilora.lora import add_weighted_adapter

    model = _two_minilora_adapters()
    with pytest.raises(ValueError, match=r"combination_type='dare_linear' is not supported by minilora") as err:
        add_weighted_adapter(model, ["default", "other"], [1.0, 1.0], "m", combination_type="dare_linear")
    assert "\n" not in str(err.value)
