"""Adapter files in PEFT's format (minilora/lora/adapters.py)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import safetensors.numpy
from lora_fixtures import CFG, host

from minilora import backend, nn
from minilora.engine.tensor import Tensor
from minilora.lora import (
    AdapterBaseMismatch,
    LoraConfig,
    LoRALinear,
    apply_lora,
    load_adapter,
    lora_layers,
    merge_lora,
    read_adapter_config,
    save_adapter,
)
from minilora.lora.adapters import CONFIG_NAME, WEIGHTS_NAME, base_fingerprint
from minilora.models import GPT, GPTConfig

LCFG = LoraConfig(r=2, lora_alpha=6, target_modules=("q_proj", "v_proj"), init_lora_weights=True, use_rslora=True)


def trained(device, config=LCFG, gpt=CFG, seed=3):
    """A GPT with LoRA whose A and B are not at their init values (as after training)."""
    model = apply_lora(GPT(gpt, seed=0, device=device), config, seed=seed)
    rng = np.random.default_rng(seed)
    for _, layer in lora_layers(model):
        for p in (layer.lora_A, layer.lora_B):
            p.data = backend.to_device((0.2 * rng.standard_normal(p.shape)).astype(p.dtype), p.device)
    return model.eval()


def logits(model, device):
    idx = backend.to_device(np.arange(16).reshape(2, 8) % CFG.vocab_size, device)
    return host(model(idx)[0])


def test_files_keys_and_shapes(device, tmp_path):
    model = trained(device)
    assert save_adapter(model, tmp_path / "a", base_model_name_or_path="tiny-gpt",
                        task_type="CAUSAL_LM") == tmp_path / "a"
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [CONFIG_NAME, WEIGHTS_NAME]  # no temporary files left
    cfg = json.loads((tmp_path / "a" / CONFIG_NAME).read_text())
    assert list(cfg) == sorted(cfg)                     # PEFT writes sorted keys
    expected = {
        "peft_type": "LORA", "r": 2, "lora_alpha": 6, "lora_dropout": 0.0, "target_modules": ["q_proj", "v_proj"],
        "bias": "none", "fan_in_fan_out": False, "init_lora_weights": True, "use_rslora": True,
        "task_type": "CAUSAL_LM", "base_model_name_or_path": "tiny-gpt", "inference_mode": True,
        "modules_to_save": None, "use_dora": False, "rank_pattern": {}, "alpha_pattern": {},
    }
    assert {k: cfg[k] for k in expected} == expected
    tensors = safetensors.numpy.load_file(str(tmp_path / "a" / WEIGHTS_NAME))
    names = {f"base_model.model.blocks.{i}.attn.{p}.lora_{m}.weight" for i in range(2) for p in ("q_proj", "v_proj")
             for m in "AB"}
    assert set(tensors) == names
    for name, layer in lora_layers(model):
        a, b = tensors[f"base_model.model.{name}.lora_A.weight"], tensors[f"base_model.model.{name}.lora_B.weight"]
        assert a.shape == (2, 16) and b.shape == (16, 2) and a.dtype == b.dtype == np.float32
        np.testing.assert_array_equal(a, host(layer.lora_A))
        np.testing.assert_array_equal(b, host(layer.lora_B))


@pytest.mark.parametrize("init_lora_weights", [True, "gaussian"])
def test_init_and_defaults_in_config(tmp_path, init_lora_weights):
    """init_lora_weights is written as PEFT spells it (True: kaiming-uniform, "gaussian") and read back."""
    save_adapter(apply_lora(GPT(CFG), LoraConfig(r=2, init_lora_weights=init_lora_weights)), tmp_path)
    cfg = json.loads((tmp_path / CONFIG_NAME).read_text())
    keys = ("init_lora_weights", "lora_alpha", "task_type", "base_model_name_or_path")
    assert [cfg[k] for k in keys] == [init_lora_weights, 2, None, None]
    assert read_adapter_config(tmp_path).init_lora_weights == init_lora_weights


def test_formula_matches_peft_convention_in_torch(tmp_path):
    """PEFT computes base(x) + scaling · lora_B(lora_A(dropout(x))) with torch Linears: check it on our file."""
    torch = pytest.importorskip("torch")
    model = trained("cpu")
    save_adapter(model, tmp_path)
    tensors = safetensors.numpy.load_file(str(tmp_path / WEIGHTS_NAME))
    cfg = json.loads((tmp_path / CONFIG_NAME).read_text())
    scaling = cfg["lora_alpha"] / (np.sqrt(cfg["r"]) if cfg["use_rslora"] else cfg["r"])
    layer = model.blocks[1].attn.v_proj
    x = np.random.default_rng(0).standard_normal((3, 16)).astype(np.float32)
    t = torch.from_numpy
    a = t(tensors["base_model.model.blocks.1.attn.v_proj.lora_A.weight"])
    b = t(tensors["base_model.model.blocks.1.attn.v_proj.lora_B.weight"])
    base = torch.nn.functional.linear(t(x), t(layer.base.weight.numpy()), t(layer.base.bias.numpy()))
    expected = base + scaling * torch.nn.functional.linear(torch.nn.functional.linear(t(x), a), b)
    np.testing.assert_allclose(layer(Tensor(x)).numpy(), expected.numpy(), rtol=1e-5, atol=1e-6)


def test_round_trip_into_fresh_models(device, tmp_path):
    model = trained(device)
    expected = logits(model, device)
    save_adapter(model, tmp_path)
    with_lora = apply_lora(GPT(CFG, seed=0, device=device), LCFG, seed=99).eval()   # other A at init
    load_adapter(with_lora, tmp_path)
    np.testing.assert_array_equal(logits(with_lora, device), expected)
    without = GPT(CFG, seed=0, device=device)
    assert load_adapter(without, tmp_path) is without                       # applies LoRA from the config
    assert without.lora_config == LCFG
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert [n for n, p in without.named_parameters() if p.requires_grad] == trainable
    np.testing.assert_array_equal(logits(without.eval(), device), expected)


def test_adapter_saved_on_device_loads_on_cpu(device, tmp_path):
    model = trained(device)
    save_adapter(model, tmp_path)
    cpu = load_adapter(GPT(CFG, seed=0, device="cpu"), tmp_path).eval()
    np.testing.assert_allclose(logits(cpu, "cpu"), logits(model, device), rtol=1e-5, atol=1e-6)


def test_merged_models_save_and_load(device, tmp_path):
    model = trained(device)
    expected = logits(model, device)
    save_adapter(model, tmp_path / "plain")
    merge_lora(model)
    save_adapter(model, tmp_path / "merged")                                 # the same A, B
    assert (tmp_path / "plain" / WEIGHTS_NAME).read_bytes() == (tmp_path / "merged" / WEIGHTS_NAME).read_bytes()
    target = merge_lora(apply_lora(GPT(CFG, seed=0, device=device), LCFG, seed=5)).eval()
    base_before = host(target.blocks[0].attn.q_proj.base.weight).copy()
    load_adapter(target, tmp_path / "merged")                                 # stays merged, with the new update
    assert all(layer.merged for _, layer in lora_layers(target))
    np.testing.assert_allclose(logits(target, device), expected, rtol=1e-4, atol=1e-5)
    target.blocks[0].attn.q_proj.unmerge()
    np.testing.assert_array_equal(host(target.blocks[0].attn.q_proj.base.weight), base_before)


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(4, 8, rng=0), nn.Linear(8, 8, rng=1), nn.Linear(8, 2, rng=2)])

    def forward(self, x):
        for layer in self.layers:
            x = layer(x).tanh()
        return x


def test_custom_model_round_trip_keeps_dotted_targets(tmp_path):
    model = apply_lora(MLP(), LoraConfig(r=2, target_modules=("layers.1",)))
    model.layers[1].lora_B.data = np.full((8, 2), 0.3, np.float32)
    x = Tensor(np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4))
    save_adapter(model, tmp_path)
    assert json.loads((tmp_path / CONFIG_NAME).read_text())["target_modules"] == ["layers.1"]
    fresh = load_adapter(MLP(), tmp_path)
    assert [n for n, _ in lora_layers(fresh)] == ["layers.1"]
    np.testing.assert_array_equal(fresh(x).numpy(), model(x).numpy())


# -- errors -----------------------------------------------------------------------------------------


def test_save_without_lora_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no LoRA layers"):
        save_adapter(GPT(CFG), tmp_path)
    assert not any(tmp_path.iterdir())


def test_numpy_hyper_parameters_save_as_json(tmp_path):
    save_adapter(apply_lora(GPT(CFG), LoraConfig(r=np.int64(2), lora_alpha=np.float32(8),
                                                 lora_dropout=np.float32(0.5))), tmp_path)
    cfg = json.loads((tmp_path / CONFIG_NAME).read_text())
    assert (cfg["r"], cfg["lora_alpha"], cfg["lora_dropout"]) == (2, 8.0, 0.5)


def test_config_that_is_not_json_writes_nothing(tmp_path):
    """The config is serialised before the weights are written: a failure leaves no weights without a config."""
    model = apply_lora(GPT(CFG), LoraConfig(r=2))
    for _, layer in lora_layers(model):
        layer.lora_alpha = np.int64(2)          # set behind the constructor's back: json cannot write it
    with pytest.raises(ValueError, match="cannot be written as JSON.*int64.*nothing was written"):
        save_adapter(model, tmp_path / "a")
    assert not (tmp_path / "a").exists()


def test_save_layers_that_disagree_is_an_error(tmp_path):
    model = MLP()
    setattr(model.layers, "0", LoRALinear(model.layers[0], r=2))  # built by hand, not by apply_lora
    setattr(model.layers, "1", LoRALinear(model.layers[1], r=4))
    with pytest.raises(ValueError, match="disagree.*r=2.*r=4"):
        save_adapter(model, tmp_path)


def test_load_into_another_shape_is_an_error(tmp_path):
    save_adapter(trained("cpu"), tmp_path)
    wide = GPT(GPTConfig(vocab_size=16, block_size=8, n_layer=2, n_head=2, n_embd=32))
    key = re.escape("base_model.model.blocks.0.attn.q_proj.lora_A.weight")
    with pytest.raises(ValueError, match=rf"{WEIGHTS_NAME}.*mis-shaped: {key}: file \(2, 16\) vs model \(2, 32\)"):
        load_adapter(wide, tmp_path)
    assert not lora_layers(wide) and all(p.requires_grad for p in wide.parameters())   # left unchanged
    deep = GPT(GPTConfig(vocab_size=16, block_size=8, n_layer=3, n_head=2, n_embd=16))
    with pytest.raises(ValueError, match=r"missing keys: base_model\.model\.blocks\.2\.attn\.q_proj\.lora_A\.weight"):
        load_adapter(deep, tmp_path)
    with pytest.raises(ValueError, match=rf"{CONFIG_NAME}.*'q_proj' matches no Linear.*layers\.0"):
        load_adapter(MLP(), tmp_path)


def test_load_into_incompatible_lora_is_an_error(tmp_path):
    save_adapter(trained("cpu"), tmp_path)
    other_targets = apply_lora(GPT(CFG),
                               LoraConfig(r=2, lora_alpha=6, use_rslora=True, target_modules=("k_proj", "v_proj")))
    with pytest.raises(ValueError, match=r"missing keys: .*k_proj.* \| unexpected keys: .*q_proj"):
        load_adapter(other_targets, tmp_path)
    other_rank = apply_lora(GPT(CFG), LoraConfig(r=4, lora_alpha=6, use_rslora=True))
    with pytest.raises(ValueError, match=rf"{CONFIG_NAME}: adapter has r=2.*blocks\.0\.attn\.q_proj has r=4"):
        load_adapter(other_rank, tmp_path)
    other_alpha = apply_lora(GPT(CFG), LoraConfig(r=2, lora_alpha=2, use_rslora=True))
    with pytest.raises(ValueError, match="lora_alpha=6"):
        load_adapter(other_alpha, tmp_path)


def test_corrupt_files_are_errors_naming_the_file(tmp_path):
    save_adapter(trained("cpu"), tmp_path)
    weights, config = tmp_path / WEIGHTS_NAME, tmp_path / CONFIG_NAME
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=WEIGHTS_NAME):
        load_adapter(GPT(CFG), tmp_path)
    weights.write_bytes(data)
    good = config.read_text()
    config.write_text(good[:-20])
    with pytest.raises(ValueError, match=f"{CONFIG_NAME}: not a valid JSON"):
        load_adapter(GPT(CFG), tmp_path)
    for change, message in (({"peft_type": "PREFIX_TUNING"}, "expected 'LORA'"),
                            ({"use_dora": "yes"}, "use_dora must be true or false"),
                            ({"r": 2.5}, "got 2.5"), ({"target_modules": "q_proj|v_proj"}, "regex"),
                            ({"rank_pattern": {"q_proj": 8}}, "rank_pattern"),
                            ({"alora_invocation_tokens": [3]}, "alora_invocation_tokens.*does not implement")):
        config.write_text(json.dumps({**json.loads(good), **change}))
        with pytest.raises(ValueError, match=f"{CONFIG_NAME}.*{message}"):
            load_adapter(GPT(CFG), tmp_path)
    config.unlink()
    with pytest.raises(ValueError, match=f"{CONFIG_NAME}: no such file"):
        load_adapter(GPT(CFG), tmp_path)


@pytest.mark.parametrize("key", ["lora_alpha", "r"])
@pytest.mark.parametrize("how", ["missing", "null"])
def test_config_without_scale_is_refused(tmp_path, key, how):
    """Without r or lora_alpha the scale α/r it was trained with is unknown: no silent default (PEFT's is 8)."""
    save_adapter(trained("cpu"), tmp_path)
    config = json.loads((tmp_path / CONFIG_NAME).read_text())
    if how == "missing":
        del config[key]
    else:
        config[key] = None
    (tmp_path / CONFIG_NAME).write_text(json.dumps(config))
    model = GPT(CFG)
    with pytest.raises(ValueError,
                       match=rf"{CONFIG_NAME}: no value for '{key}' \(missing or null\).*PEFT would assume {key}=8"):
        load_adapter(model, tmp_path)
    assert not lora_layers(model)


# -- the base model an adapter was made for ------------------------------------------------------------


def test_base_fingerprint_is_the_base_weights(device):
    """One fingerprint for a base with or without LoRA, merged or not, in float64, on any device; another
    seed or vocabulary changes it."""
    plain = base_fingerprint(GPT(CFG, seed=0, device="cpu"))
    assert re.fullmatch(r"[0-9a-f]{16}", plain)
    model = trained(device)
    assert base_fingerprint(model) == plain
    assert base_fingerprint(merge_lora(model)) == plain
    assert base_fingerprint(GPT(CFG, seed=0, device=device).astype(np.float64)) == plain
    assert base_fingerprint(GPT(CFG, seed=1, device=device)) != plain
    other_vocab = GPTConfig(vocab_size=17, block_size=8, n_layer=2, n_head=2, n_embd=16)
    assert base_fingerprint(GPT(other_vocab, seed=0, device=device)) != plain


def test_adapter_for_another_base_is_refused(device, tmp_path):
    """Same adapter shapes, other base (vocabulary or pretraining): refused naming both bases; the model is
    unchanged."""
    save_adapter(trained(device), tmp_path, base_model_name_or_path="tiny-gpt")
    recorded = base_fingerprint(GPT(CFG, seed=0))
    other_vocab = GPT(GPTConfig(vocab_size=20, block_size=8, n_layer=2, n_head=2, n_embd=16), seed=0, device=device)
    message = (rf"{WEIGHTS_NAME}: adapter made for another base model: trained on 'tiny-gpt' \(weights {recorded}, "
               rf"vocab_size=16\) but this model's base is \(weights {base_fingerprint(other_vocab)}, vocab_size=20\)")
    with pytest.raises(AdapterBaseMismatch, match=message + r".*load_adapter\(\.\.\., check_base=False\)"):
        load_adapter(other_vocab, tmp_path)
    assert issubclass(AdapterBaseMismatch, ValueError)
    other_seed = GPT(CFG, seed=1, device=device)
    with pytest.raises(ValueError, match=rf"\(weights {recorded}\) but this model's base is \(weights "
                       rf"{base_fingerprint(other_seed)}\)"):
        load_adapter(other_seed, tmp_path)
    assert not lora_layers(other_seed) and all(p.requires_grad for p in other_seed.parameters())
    with_lora = apply_lora(GPT(CFG, seed=1, device=device), LCFG)
    with pytest.raises(ValueError, match="another base model"):
        load_adapter(with_lora, tmp_path)
    assert load_adapter(other_seed, tmp_path, check_base=False) is other_seed  # asked for explicitly
    assert len(lora_layers(other_seed)) == 4


def test_shipped_skills_adapter_is_refused_on_the_names_model(tmp_path):
    """The two shipped models have the same layer shapes but other vocabularies and tasks."""
    import minilora

    skills = apply_lora(minilora.pretrained("skills"),
                        LoraConfig(r=2, target_modules=("q_proj", "v_proj", "fc_in", "fc_out")))
    save_adapter(skills, tmp_path, base_model_name_or_path="skills")
    with pytest.raises(ValueError, match=r"trained on 'skills' \(weights [0-9a-f]{16}, vocab_size=67\) "
                                         r"but this model's base is \(weights [0-9a-f]{16}, vocab_size=28\)"):
        load_adapter(minilora.pretrained("names"), tmp_path)
    load_adapter(minilora.pretrained("skills"), tmp_path)


def test_adapter_without_recorded_base_loads(tmp_path):
    """PEFT records no base in the weights file: such an adapter loads on any model it fits."""
    model = trained("cpu")
    save_adapter(model, tmp_path)
    tensors = safetensors.numpy.load_file(str(tmp_path / WEIGHTS_NAME))
    safetensors.numpy.save_file(tensors, str(tmp_path / WEIGHTS_NAME), metadata={"format": "pt"})  # as PEFT writes
    other = load_adapter(GPT(CFG, seed=1), tmp_path)
    np.testing.assert_array_equal(host(other.blocks[1].attn.v_proj.lora_B), host(model.blocks[1].attn.v_proj.lora_B))
    safetensors.numpy.save_file(tensors, str(tmp_path / WEIGHTS_NAME),
                                metadata={"minilora": json.dumps({"base_model": "x"})})
    with pytest.raises(ValueError, match=f"{WEIGHTS_NAME}: metadata base_model must be an object with a fingerprint"):
        load_adapter(GPT(CFG), tmp_path)
