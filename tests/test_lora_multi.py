"""Several adapters on one model (minilora/lora/multi.py): add, set, disable, delete, add_weighted_adapter, files."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from lora_fixtures import CFG, batch, host

from minilora import backend, nn
from minilora.lora import (
    LoraConfig,
    VeraConfig,
    active_adapters,
    adapter_configs,
    add_adapter,
    add_weighted_adapter,
    apply_lora,
    apply_vera,
    delete_adapter,
    disable_adapter,
    load_adapter,
    lora_layers,
    lora_parameters,
    merge_and_unload,
    merge_lora,
    save_adapter,
    set_adapter,
    unmerge_lora,
)
from minilora.lora.adapters import CONFIG_NAME, WEIGHTS_NAME, base_fingerprint
from minilora.lora.multi import combine_linear
from minilora.models import GPT

TARGETS = ("q_proj", "v_proj", "fc_in")


def randomise(model, name, seed, scale=0.5):
    """Give adapter ``name`` of every layer random A and B (as after training: B no longer zero)."""
    rng = np.random.default_rng(seed)
    for _, layer in lora_layers(model):
        if name in layer.adapter_names():
            adapter = layer.adapter(name)
            for p in (adapter.lora_A, adapter.lora_B):
                p.data = backend.to_device((scale * rng.standard_normal(p.shape)).astype(p.dtype), p.device)
    return model


def two_adapters(device="cpu", r2=3, dtype=None, seed=0):
    """A GPT with "default" (r=2, α=4) and "other" (r=r2, α=3, rsLoRA), both with random A and B."""
    model = GPT(CFG, seed=seed, device=device)
    if dtype is not None:
        for p in model.parameters():
            p.data = p.data.astype(dtype)
    apply_lora(model, LoraConfig(r=2, lora_alpha=4, target_modules=TARGETS), seed=1)
    add_adapter(model, "other", LoraConfig(r=r2, lora_alpha=3, use_rslora=True, target_modules=TARGETS), seed=2)
    randomise(model, "default", 3)
    return randomise(model, "other", 4).eval()


def logits(model, device="cpu"):
    idx, _ = batch(device)
    return host(model(idx)[0])


def test_one_adapter_model_is_unchanged_by_adding_and_deleting_another(device):
    plain = randomise(apply_lora(GPT(CFG, seed=0, device=device), LoraConfig(r=2, target_modules=TARGETS)), "default",
                      3).eval()
    keys = list(plain.state_dict())
    assert not any("lora_adapters" in k for k in keys) and "blocks.0.attn.q_proj.lora_A" in keys
    before = logits(plain, device)
    add_adapter(plain, "other", LoraConfig(r=2, target_modules=TARGETS))
    assert "blocks.0.attn.q_proj.lora_adapters.other.lora_A" in plain.state_dict()
    np.testing.assert_array_equal(logits(plain, device), before)   # added: frozen and inactive, nothing changes
    delete_adapter(plain, "other")
    assert list(plain.state_dict()) == keys
    assert not any("lora_adapters" in name for name, _ in plain.named_modules())
    assert "lora_adapter_configs" not in plain.__dict__
    np.testing.assert_array_equal(logits(plain, device), before)


def test_add_adapter_is_frozen_inactive_and_recorded():
    model = two_adapters()
    assert list(adapter_configs(model)) == ["default", "other"] and active_adapters(model) == ("default",)
    layer = dict(lora_layers(model))["blocks.0.attn.q_proj"]
    other = layer.adapter("other")
    assert (other.r, other.scaling) == (3, pytest.approx(3 / np.sqrt(3)))
    assert not other.lora_A.requires_grad and not other.lora_B.requires_grad
    assert layer.lora_A.requires_grad
    assert [id(p) for p in lora_parameters(model)][:2] == [id(layer.lora_A), id(layer.lora_B)]
    assert id(other.lora_A) in {id(p) for p in lora_parameters(model)}  # the extra adapters' too
    fresh = randomise(GPT(CFG, seed=0, device="cpu"), "x", 0)  # base model; nothing to randomise
    assert base_fingerprint(model) == base_fingerprint(apply_lora(fresh, LoraConfig(r=2, target_modules=TARGETS)))


def test_set_adapter_switches_and_trains_only_the_active_one():
    model = two_adapters()
    set_adapter(model, "other")
    # "other" alone is a one-adapter model with its A and B in lora_A / lora_B
    alone = apply_lora(GPT(CFG, seed=0, device="cpu"),
                       LoraConfig(r=3, lora_alpha=3, use_rslora=True, target_modules=TARGETS)).eval()
    for (_, mine), (_, theirs) in zip(lora_layers(model), lora_layers(alone)):
        theirs.lora_A.data, theirs.lora_B.data = mine.adapter("other").lora_A.data, mine.adapter("other").lora_B.data
    np.testing.assert_array_equal(logits(model), logits(alone))
    layer = lora_layers(model)[0][1]
    assert layer.adapter("other").lora_A.requires_grad and not layer.lora_A.requires_grad
    model.train()
    idx, targets = batch("cpu")
    model(idx, targets)[1].backward()
    assert layer.lora_A.grad is None and layer.adapter("other").lora_B.grad is not None
    with pytest.raises(ValueError, match=r"set_adapter: no adapter named 'nope'; the model's adapters are "
                                         r"\['default', 'other'\]"):
        set_adapter(model, "nope")


def test_several_active_adapters_are_summed(device):
    model = two_adapters(device)
    set_adapter(model, ["default", "other"])
    layer = dict(lora_layers(model))["blocks.1.mlp.fc_in"]
    x = np.random.default_rng(5).standard_normal((4, CFG.n_embd)).astype(np.float32)
    w0, bias = host(layer.base.weight), host(layer.base.bias)
    delta = sum(layer.adapter(n).scaling * host(layer.adapter(n).lora_B) @ host(layer.adapter(n).lora_A)
                for n in ("default", "other"))
    y = host(layer(nn.Parameter(backend.to_device(x, device))))
    np.testing.assert_allclose(y, x @ (w0 + delta).T + bias, rtol=1e-5, atol=1e-5)
    one = logits(two_adapters(device), device)
    assert not np.allclose(logits(model, device), one, atol=1e-3)


def test_merge_and_unmerge_with_several_adapters_are_exact(device):
    model = two_adapters(device)
    set_adapter(model, ["default", "other"])
    w0 = {name: host(layer.base.weight).copy() for name, layer in lora_layers(model)}
    unmerged = logits(model, device)
    merge_lora(model)
    for name, layer in lora_layers(model):
        assert layer.merged_adapters == ("default", "other")
        expected = w0[name] + sum(host(layer.adapter_delta_weight(n)) for n in ("default", "other"))
        np.testing.assert_allclose(host(layer.base.weight), expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(logits(model, device), unmerged, rtol=1e-4, atol=1e-4)
    unmerge_lora(model)
    for name, layer in lora_layers(model):
        np.testing.assert_array_equal(host(layer.base.weight), w0[name])   # bit for bit
        assert layer.merged_adapters == ()
    np.testing.assert_array_equal(logits(model, device), unmerged)


def test_disable_adapter_gives_the_base_model(device):
    base = logits(GPT(CFG, seed=0, device=device).eval(), device)
    model = two_adapters(device)
    set_adapter(model, ["default", "other"])
    adapted = logits(model, device)
    merge_lora(model)
    with disable_adapter(model):
        np.testing.assert_array_equal(logits(model, device), base)
        assert not any(layer.merged for _, layer in lora_layers(model))  # unmerged on the way in, W0 exact
    np.testing.assert_array_equal(logits(model, device), adapted)
    with pytest.raises(KeyError), disable_adapter(model):
        raise KeyError("boom")
    assert not any(layer.disable_adapters for _, layer in lora_layers(model))  # enabled again after an exception


def test_disable_adapter_with_dora():
    model = apply_lora(GPT(CFG, seed=0, device="cpu"), LoraConfig(r=2, use_dora=True)).eval()
    randomise(model, "default", 1)
    with disable_adapter(model):
        np.testing.assert_array_equal(logits(model), logits(GPT(CFG, seed=0, device="cpu").eval()))


def test_delete_adapter():
    model = two_adapters()
    add_adapter(model, "third", LoraConfig(r=2, target_modules=("q_proj",)))
    set_adapter(model, ["other", "third"])
    delete_adapter(model, "third")
    assert active_adapters(model) == ("other",)
    with pytest.warns(UserWarning, match="setting active adapter to 'default'"):
        delete_adapter(model, "other")
    assert active_adapters(model) == ("default",) and list(adapter_configs(model)) == ["default"]
    assert lora_layers(model)[0][1].lora_A.requires_grad
    with pytest.raises(ValueError, match="delete_adapter: 'default' is the layers' own lora_A / lora_B"):
        delete_adapter(model, "default")
    with pytest.raises(ValueError, match=r"delete_adapter: no adapter named 'other'"):
        delete_adapter(model, "other")
    merged = two_adapters()
    set_adapter(merged, "other")
    merge_lora(merged)
    with pytest.raises(ValueError, match=r"delete_adapter: adapter 'other' is merged; unmerge_lora\(model\) first"):
        delete_adapter(merged, "other")


def test_set_adapter_unmerges_with_a_warning():
    model = merge_lora(two_adapters())
    with pytest.warns(UserWarning, match="unmerging first"):
        set_adapter(model, "other")
    assert not any(layer.merged for _, layer in lora_layers(model))


def test_adapter_on_a_subset_of_layers():
    model = two_adapters()
    add_adapter(model, "q_only", LoraConfig(r=2, target_modules=("q_proj",)))
    holders = [name for name, layer in lora_layers(model) if "q_only" in layer.adapter_names()]
    assert holders == ["blocks.0.attn.q_proj", "blocks.1.attn.q_proj"]
    randomise(model, "q_only", 8)
    set_adapter(model, ["default", "q_only"])   # the v_proj / fc_in layers skip q_only
    logits(model)


# -- add_weighted_adapter --------------------------------------------------------------------------------------------


def deltas(model, names, weights):
    return {path: sum(w * host(layer.adapter_delta_weight(n)).astype(np.float64) for n, w in zip(names, weights))
            for path, layer in lora_layers(model)}


def test_cat_is_exact():
    model = two_adapters(dtype=np.float64)          # ranks 2 and 3: cat gives rank 5
    weights = [0.7, -1.3]
    expected = deltas(model, ["default", "other"], weights)
    add_weighted_adapter(model, ["default", "other"], weights, "mix", combination_type="cat")
    config = adapter_configs(model)["mix"]
    assert (config.r, config.lora_alpha, config.use_rslora) == (5, 5, False)
    for path, layer in lora_layers(model):
        mix = layer.adapter("mix")
        assert (mix.r, mix.scaling) == (5, 1.0) and not mix.lora_A.requires_grad
        np.testing.assert_allclose(host(layer.adapter_delta_weight("mix")), expected[path], rtol=1e-12, atol=1e-12)
    # the combined adapter computes what the two active together with weights computes: w=1, 1
    add_weighted_adapter(model, ["default", "other"], [1.0, 1.0], "both", combination_type="cat")
    set_adapter(model, "both")
    combined = logits(model)
    set_adapter(model, ["default", "other"])
    np.testing.assert_allclose(logits(model), combined, rtol=1e-10, atol=1e-10)


def test_svd_is_the_best_rank_k_approximation():
    model = two_adapters(dtype=np.float64)
    weights = [0.5, 2.0]
    expected = deltas(model, ["default", "other"], weights)
    add_weighted_adapter(model, ["default", "other"], weights, "svd3", combination_type="svd")   # k = max r = 3
    add_weighted_adapter(model, ["default", "other"], weights, "svd1", combination_type="svd", svd_rank=1)
    for path, layer in lora_layers(model):
        u, s, vh = np.linalg.svd(expected[path])
        for name, k in (("svd3", 3), ("svd1", 1)):
            got = host(layer.adapter_delta_weight(name))
            assert layer.adapter(name).r == k
            np.testing.assert_allclose(got, (u[:, :k] * s[:k]) @ vh[:k], rtol=1e-9, atol=1e-12)  # Eckart-Young
            assert np.linalg.matrix_rank(got) == k
            error = np.linalg.norm(expected[path] - got)
            np.testing.assert_allclose(error, np.sqrt((s[k:] ** 2).sum()), rtol=1e-9, atol=1e-12)
        # rank 5 >= rank(ΣwΔW): svd is then exact
        np.testing.assert_allclose(s[5:], 0, atol=1e-12)


def test_svd_clamp_clips_to_the_quantile():
    model = two_adapters(dtype=np.float64)
    add_weighted_adapter(model, ["default", "other"], [1.0, 1.0], "free", svd_rank=2)
    add_weighted_adapter(model, ["default", "other"], [1.0, 1.0], "clamped", svd_rank=2, svd_clamp=0.9)
    for _, layer in lora_layers(model):
        a, b = host(layer.adapter("free").lora_A), host(layer.adapter("free").lora_B)
        q = np.quantile(np.concatenate([b.ravel(), a.ravel()]), 0.9)      # PEFT: torch.quantile of cat(U, Vh)
        np.testing.assert_array_equal(host(layer.adapter("clamped").lora_A), np.clip(a, -q, q))
        np.testing.assert_array_equal(host(layer.adapter("clamped").lora_B), np.clip(b, -q, q))
        assert (np.abs(b) > q).any() or (np.abs(a) > q).any()   # something was clipped


def test_linear_is_not_the_weighted_sum_the_cross_terms():
    model = two_adapters(r2=2, dtype=np.float64)   # linear needs one rank
    weights = [0.6, -0.4]
    expected = deltas(model, ["default", "other"], weights)
    add_weighted_adapter(model, ["default", "other"], weights, "lin", combination_type="linear")
    for path, layer in lora_layers(model):
        a = {n: host(layer.adapter(n).lora_A) for n in ("default", "other")}
        b = {n: host(layer.adapter(n).lora_B) for n in ("default", "other")}
        c = {n: w * layer.adapter(n).scaling for n, w in zip(("default", "other"), weights)}
        # PEFT's convention: sqrt|c| on both sides, c's sign on A only
        np.testing.assert_allclose(host(layer.adapter("lin").lora_A),
                                   sum(np.sign(c[n]) * np.sqrt(abs(c[n])) * a[n] for n in a), rtol=1e-12)
        np.testing.assert_allclose(host(layer.adapter("lin").lora_B),
                                   sum(np.sqrt(abs(c[n])) * b[n] for n in b), rtol=1e-12)
        cross = (np.sign(c["other"]) * np.sqrt(abs(c["default"] * c["other"])) * b["default"] @ a["other"]
                 + np.sign(c["default"]) * np.sqrt(abs(c["default"] * c["other"])) * b["other"] @ a["default"])
        got = host(layer.adapter_delta_weight("lin"))
        np.testing.assert_allclose(got, expected[path] + cross, rtol=1e-10, atol=1e-12)
        assert np.linalg.norm(got - expected[path]) > 0.1 * np.linalg.norm(expected[path])  # far from Σ w ΔW


def test_linear_docstring_example():
    a1, b1 = np.array([[1.0, 0.0]]), np.array([[1.0], [0.0]])
    a2, b2 = np.array([[0.0, 1.0]]), np.array([[0.0], [1.0]])
    a, b = combine_linear([(a1, b1, 1.0), (a2, b2, 1.0)], [0.5, 0.5])
    np.testing.assert_allclose(0.5 * b1 @ a1 + 0.5 * b2 @ a2, [[0.5, 0.0], [0.0, 0.5]])
    np.testing.assert_allclose(b @ a, [[0.5, 0.5], [0.5, 0.5]])
    a, b = combine_linear([(a1, b1, 2.0)], [-0.5])     # one adapter: w·ΔW exactly, the sign on A
    np.testing.assert_allclose(a, -a1)
    np.testing.assert_allclose(b, b1)


def test_one_adapter_is_combined_linearly_and_exactly():
    model = two_adapters(dtype=np.float64)
    add_weighted_adapter(model, ["other"], [-0.5], "half", combination_type="svd")   # PEFT: one adapter → linear
    for _, layer in lora_layers(model):
        assert layer.adapter("half").r == 3
        c = -0.5 * layer.adapter("other").scaling      # PEFT's linear rule: -sqrt|c| A, sqrt|c| B
        np.testing.assert_allclose(host(layer.adapter("half").lora_A),
                                   -np.sqrt(-c) * host(layer.adapter("other").lora_A))
        np.testing.assert_allclose(host(layer.adapter_delta_weight("half")),
                                   -0.5 * host(layer.adapter_delta_weight("other")), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("combination_type", ["ties", "dare_linear", "magnitude_prune_svd", "sum"])
def test_peft_only_combination_types_are_refused_in_one_line(combination_type):
    model = two_adapters()
    with pytest.raises(ValueError, match=rf"add_weighted_adapter: combination_type='{combination_type}' is not "
                                         r"supported by minilora.*; expected 'svd', 'cat' or 'linear'") as err:
        add_weighted_adapter(model, ["default", "other"], [1.0, 1.0], "m", combination_type=combination_type)
    assert "\n" not in str(err.value)
    assert list(adapter_configs(model)) == ["default", "other"]


def test_add_weighted_adapter_refusals():
    model = two_adapters()
    cases = [
        ((["default", "other"], [1.0, 1.0], "m", "linear"), r"'linear' needs adapters of one rank, got r=\[2, 3\]"),
        ((["default", "nope"], [1.0, 1.0], "m", "cat"), r"no adapter named 'nope'"),
        ((["default", "other"], [1.0], "m", "cat"), r"expected one finite weight per adapter \(2\)"),
        ((["default", "other"], [1.0, 1.0], "other", "cat"), r"already has an adapter named 'other'"),
        ((["default", "other"], [1.0, 1.0], "a.b", "cat"), r"adapter name must be letters"),
    ]
    for (names, weights, new, kind), message in cases:
        with pytest.raises(ValueError, match=message) as err:
            add_weighted_adapter(model, names, weights, new, combination_type=kind)
        assert "\n" not in str(err.value)
    add_adapter(model, "big", LoraConfig(r=16, target_modules=TARGETS))
    with pytest.raises(ValueError, match=r"'cat' gives rank 18, too large for blocks.0.attn.q_proj, a 16x16"):
        add_weighted_adapter(model, ["default", "big"], [1.0, 1.0], "m", combination_type="cat")
    with pytest.raises(ValueError, match="svd_rank must be an integer"):
        add_weighted_adapter(model, ["default", "other"], [1.0, 1.0], "m", svd_rank=0)
    dora = apply_lora(GPT(CFG, seed=0, device="cpu"), LoraConfig(r=2, use_dora=True))
    with pytest.raises(ValueError, match="DoRA adapters cannot be combined"):
        add_weighted_adapter(dora, ["default"], [1.0], "m")


def test_add_adapter_refusals():
    model = two_adapters()
    with pytest.raises(ValueError, match=r"add_adapter: target module 'fc_out' matches no LoRA layer"):
        add_adapter(model, "x", LoraConfig(r=2, target_modules=("fc_out",)))
    with pytest.raises(ValueError, match=r"init_lora_weights='pissa' changes the base weight"):
        add_adapter(model, "x", LoraConfig(r=2, init_lora_weights="pissa"))
    with pytest.raises(ValueError, match="several adapters with DoRA"):
        add_adapter(model, "x", LoraConfig(r=2, use_dora=True))
    with pytest.raises(ValueError, match="already has an adapter named 'default'"):
        add_adapter(model, "default", LoraConfig(r=2))
    with pytest.raises(ValueError, match="adapter name must be letters"):
        add_adapter(model, "training", LoraConfig(r=2))   # a Module attribute: would clobber it
    with pytest.raises(ValueError, match="add_adapter: GPT has no LoRA layers|adapter_configs: GPT has no LoRA"):
        add_adapter(GPT(CFG, seed=0, device="cpu"), "x", LoraConfig(r=2))
    assert list(adapter_configs(model)) == ["default", "other"]


def test_apply_lora_refuses_a_vera_model():
    model = apply_vera(GPT(CFG, seed=0, device="cpu"), VeraConfig(r=4))
    with pytest.raises(ValueError, match=r"apply_lora: GPT already has adapter layers of another kind "
                                         r"\(blocks.0.attn.q_proj \(VeraLinear\)") as err:
        apply_lora(model, LoraConfig(r=2))
    assert "\n" not in str(err.value)


def test_merge_and_unload_merges_the_active_adapters():
    model = two_adapters(dtype=np.float64)
    set_adapter(model, ["default", "other"])
    expected = logits(model)
    merge_and_unload(model)
    assert not lora_layers(model) and "lora_adapter_configs" not in model.__dict__
    np.testing.assert_allclose(logits(model), expected, rtol=1e-10, atol=1e-10)


# -- files: PEFT's layout, default at the root and every other adapter in a subfolder ---------------------------------


def test_save_and_load_several_adapters(tmp_path, device):
    model = two_adapters(device)
    add_weighted_adapter(model, ["default", "other"], [0.5, 0.5], "mix", combination_type="cat")
    save_adapter(model, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([CONFIG_NAME, WEIGHTS_NAME, "other", "mix"])
    assert (tmp_path / "other" / CONFIG_NAME).is_file() and (tmp_path / "mix" / WEIGHTS_NAME).is_file()
    loaded = load_adapter(GPT(CFG, seed=0, device=device), tmp_path).eval()
    for name in ("other", "mix"):
        load_adapter(loaded, tmp_path / name, adapter_name=name)
    assert adapter_configs(loaded) == adapter_configs(model)
    for names in ("default", "other", "mix", ["default", "other"]):
        set_adapter(model, names)
        set_adapter(loaded, names)
        np.testing.assert_array_equal(logits(loaded, device), logits(model, device))
    save_adapter(model, tmp_path / "some", selected_adapters=["other"])
    assert [p.name for p in (tmp_path / "some").iterdir()] == ["other"]
    with pytest.raises(ValueError, match=r"selected_adapters=\['nope'\]; expected a non-empty list of the model's "
                                         r"adapters \['default', 'other', 'mix'\]"):
        save_adapter(model, tmp_path / "x", selected_adapters=["nope"])


def test_one_adapter_folder_is_unchanged(tmp_path):
    one = randomise(apply_lora(GPT(CFG, seed=0, device="cpu"), LoraConfig(r=2, target_modules=TARGETS)), "default", 3)
    save_adapter(one, tmp_path / "a")
    add_adapter(one, "other", LoraConfig(r=2))
    delete_adapter(one, "other")
    save_adapter(one, tmp_path / "b")
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [CONFIG_NAME, WEIGHTS_NAME]
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_load_named_adapter_refusals(tmp_path):
    model = two_adapters()
    save_adapter(model, tmp_path)
    with pytest.raises(ValueError, match="load the default adapter first"):
        load_adapter(GPT(CFG, seed=0, device="cpu"), tmp_path / "other", adapter_name="other")
    small = apply_lora(GPT(CFG, seed=0, device="cpu"), LoraConfig(r=2, target_modules=("q_proj",)))
    with pytest.raises(ValueError, match=r"adapter does not fit this model: load_adapter: target module 'v_proj' "
                                         r"matches no LoRA layer"):
        load_adapter(small, tmp_path / "other", adapter_name="other")
    loaded = load_adapter(load_adapter(GPT(CFG, seed=0, device="cpu"), tmp_path), tmp_path / "other",
                          adapter_name="other")
    with pytest.raises(ValueError, match=r"adapter 'other' has r=3"):
        load_adapter(loaded, tmp_path, adapter_name="other")      # the root file has r=2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_adapter(loaded, tmp_path / "other", adapter_name="other")   # same r: loads into it again


def test_merging_inside_disable_adapter_still_gives_the_base_model():
    base = logits(GPT(CFG, seed=0, device="cpu").eval())
    model = two_adapters()
    with disable_adapter(model):
        merge_lora(model)
        np.testing.assert_array_equal(logits(model), base)   # the forward unmerges first, as PEFT's


def test_gradcheck_float64_with_two_active_adapters(device):
    from minilora.engine.gradcheck import gradcheck

    model = two_adapters(device, dtype=np.float64)
    set_adapter(model, ["default", "other"])          # both trainable now
    layer = dict(lora_layers(model))["blocks.0.mlp.fc_in"]
    x = nn.Parameter(backend.to_device(np.random.default_rng(6).standard_normal((2, 3, CFG.n_embd)), device))
    assert gradcheck(lambda *_: layer(x), x, *layer.adapter_parameters())


def test_folders_minilora_cannot_load_as_a_further_adapter_are_refused(tmp_path):
    import json

    model = two_adapters()
    save_adapter(apply_vera(GPT(CFG, seed=0, device="cpu"), VeraConfig(r=4)), tmp_path / "vera")
    with pytest.raises(ValueError, match=r"a VeRA adapter cannot be loaded as a further adapter 'v'; expected a LoRA"):
        load_adapter(model, tmp_path / "vera", adapter_name="v")
    save_adapter(model, tmp_path / "ia3")
    config = json.loads((tmp_path / "ia3" / CONFIG_NAME).read_text())
    (tmp_path / "ia3" / CONFIG_NAME).write_text(json.dumps({**config, "peft_type": "IA3"}))
    with pytest.raises(ValueError, match=r"peft_type is 'IA3', expected 'LORA' or 'VERA'") as err:
        load_adapter(model, tmp_path / "ia3", adapter_name="i")
    assert "\n" not in str(err.value) and list(adapter_configs(model)) == ["default", "other"]
