"""SubspaceModel: θ = θ0 + P z over any module: exact start, gradients, training, state, devices, errors."""

import numpy as np
import pytest
from copy_tasks import FewEvalTask

import minilora as ml
from minilora import backend, nn
from minilora.data import get_task
from minilora.models import GPT, GPTConfig
from minilora.subspace import FastfoodProjection, Projection, SubspaceModel
from minilora.train import CHECKPOINT_FILE, TrainConfig, train

KINDS = ["fastfood", "dense", "sparse"]


def tiny_gpt(seed=0, device=None, vocab=11, block=8, dtype=np.float32):
    model = GPT(GPTConfig(vocab, block, n_layer=1, n_head=2, n_embd=8), seed=seed, device=device)
    return model.astype(dtype)


def batch(vocab=11, block=8, seed=0, device="cpu"):
    seq = np.random.default_rng(seed).integers(0, vocab, size=(3, block + 1))
    return backend.to_device(seq[:, :-1], device), ml.tensor(backend.to_device(seq[:, 1:], device))


class TiedPair(nn.Module):
    """Two Linear layers sharing one weight Parameter (as a tied embedding and head would)."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(3, 3, rng=0), nn.Linear(3, 3, bias=False, rng=1)
        self.b.weight = self.a.weight

    def forward(self, x):
        return self.b(self.a(x))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("said", [False, True])
@pytest.mark.parametrize("fused", [True, False])
def test_z_zero_reproduces_the_model_bit_for_bit(device, kind, said, fused):
    x, y = batch(device=device)
    reference, reference_loss = tiny_gpt(device=device)(x, y)
    sm = SubspaceModel(tiny_gpt(device=device), 7, projection=kind, said=said, fused=fused)
    logits, loss = sm(x, y)
    assert np.array_equal(logits.numpy(), reference.numpy())
    assert loss.item() == reference_loss.item()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fused", [True, False])
def test_gradcheck_with_respect_to_z(device, kind, fused):
    sm = SubspaceModel(tiny_gpt(device=device, dtype=np.float64), 5, projection=kind, seed=1, fused=fused)
    sm.z.data[...] = backend.to_device(np.random.default_rng(2).standard_normal(5) * 0.3, device)
    x, y = batch(device=device)
    assert ml.gradcheck(lambda z: sm(x, y)[1], sm.z)


@pytest.mark.parametrize("fused", [True, False])
def test_gradcheck_of_the_said_scales_and_z(fused):
    sm = SubspaceModel(tiny_gpt(dtype=np.float64), 4, said=True, fused=fused)
    sm.z.data[...] = np.random.default_rng(3).standard_normal(4) * 0.3
    sm.said_scales.data[...] = 1 + 0.5 * np.random.default_rng(4).standard_normal(sm.said_scales.size)
    x, y = batch()
    assert ml.gradcheck(lambda z, s: sm(x, y)[1], sm.z, sm.said_scales)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-10), (np.float32, 2e-4)])
def test_composed_path_equals_the_fused_one(device, kind, dtype, rtol):
    """fused=False (θ from ordinary engine ops, the engine's own backward) against the custom Functions:
    the same logits, loss and gradients to float rounding, not bit for bit: the butterfly and the
    Kronecker-factored FWHT, and the two ways of summing a row of a sparse P, add in different orders."""
    x, y = batch(device=device)
    rng = np.random.default_rng(5)
    z, scales = rng.standard_normal(40) * 0.3, None
    results = []
    for fused in (True, False):
        sm = SubspaceModel(tiny_gpt(device=device, dtype=dtype), 40, projection=kind, seed=2, said=True, fused=fused)
        sm.z.data = backend.to_device(z.astype(dtype), device)
        scales = 1 + 0.3 * rng.standard_normal(sm.said_scales.size) if scales is None else scales
        sm.said_scales.data = backend.to_device(scales.astype(dtype), device)
        logits, loss = sm(x, y)
        loss.backward()
        results.append([logits.numpy(), loss.numpy(), backend.to_host(sm.z.grad), backend.to_host(sm.said_scales.grad)])
        assert f"fused={fused}" in repr(sm)
    for fast, book in zip(*results):
        np.testing.assert_allclose(book, fast, rtol=rtol, atol=rtol * np.abs(fast).max())
    assert np.abs(results[0][2]).max() > 0


@pytest.mark.parametrize("kind, D, d",
                         [("fastfood", 20, 70), ("fastfood", 300, 7), ("sparse", 500, 9), ("dense", 30, 4)])
def test_project_composed_is_matvec_and_its_gradient_is_rmatvec(device, kind, D, d):
    """P z by engine ops equals ``matvec``; backward through it gives Pᵀ g = ``rmatvec`` (d = 70 > n = 32: three
    Fastfood blocks)."""
    from minilora.subspace.composed import project_composed
    from minilora.subspace.projections import make_projection

    projection = make_projection(kind, D, d, seed=4)
    rng = np.random.default_rng(6)
    z = ml.tensor(backend.to_device(rng.standard_normal(d), device), requires_grad=True)
    g = backend.to_device(rng.standard_normal(D), device)
    delta = project_composed(projection, z)
    np.testing.assert_allclose(delta.numpy(), backend.to_host(projection.matvec(z.data)), rtol=1e-12, atol=1e-12)
    (delta * ml.tensor(g)).sum().backward()
    np.testing.assert_allclose(backend.to_host(z.grad), backend.to_host(projection.rmatvec(g)), rtol=1e-12, atol=1e-12)


def test_composed_path_needs_a_known_projection():
    from minilora.subspace.composed import project_composed

    with pytest.raises(TypeError, match="no composed form for Identity"):
        project_composed(type("Identity", (Projection,), {})(3, 3), ml.tensor(np.ones(3)))


def test_theta_is_theta0_plus_P_z_with_said_scales():
    model = tiny_gpt(dtype=np.float64)
    theta0 = {k: v.copy() for k, v in model.state_dict().items()}
    sm = SubspaceModel(model, 6, projection="dense", seed=3, said=True)
    sm.z.data[...] = np.arange(6) / 10
    sm.said_scales.data[...] = np.linspace(0.5, 2, sm.said_scales.size)
    delta = sm.projection.matvec(sm.z.data)
    theta, start = sm.theta(), 0
    for i, name in enumerate(sm.param_names):
        size = theta0[name].size
        expected = theta0[name] + sm.said_scales.data[i] * delta[start:start + size].reshape(theta0[name].shape)
        np.testing.assert_allclose(theta[name], expected, rtol=1e-12)
        start += size
    assert start == sm.D == model.num_parameters()


def test_only_z_trains_and_the_counts_say_so():
    model = tiny_gpt()
    D = model.num_parameters()
    sm = SubspaceModel(model, 12)
    assert [n for n, p in sm.named_parameters() if p.requires_grad] == ["z"]
    assert sm.num_parameters(trainable_only=True) == 12 and sm.z.shape == (12,) and not sm.z.numpy().any()
    count = sm.count_parameters()
    assert (count.d, count.D, count.trainable, count.total) == (12, D, 12, D)
    assert "trainable params: 12" in str(count)
    said = SubspaceModel(tiny_gpt(), 12, said=True)
    tensors = len(list(tiny_gpt().parameters()))
    assert said.count_parameters().trainable == 12 + tensors == said.num_parameters(trainable_only=True)
    assert np.array_equal(said.said_scales.numpy(), np.ones(tensors, dtype=np.float32))
    assert sm.projection.shape == (D, 12) and sm.d == 12 and sm.D == D


def test_training_z_lowers_the_loss(device):
    task = get_task("copy", n_eval=10)
    model = GPT(GPTConfig(task.tokenizer.vocab_size, task.block_size, n_layer=1, n_head=2, n_embd=16), device=device)
    sm = SubspaceModel(model, 200, seed=0)
    before = {k: v.copy() for k, v in model.state_dict().items()}
    result = train(sm, task, TrainConfig(steps=40, batch_size=16, lr=0.05, warmup_steps=4))
    first = np.mean([h["loss"] for h in result.history[:4]])
    last = np.mean([h["loss"] for h in result.history[-4:]])
    assert last < 0.9 * first
    assert result.trainable_parameters == 200
    after = model.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before), "θ0 must stay frozen"
    assert np.abs(sm.z.numpy()).sum() > 0


def test_resume_after_a_crash_matches_an_uninterrupted_run(tmp_path):
    """Checkpoint every 3 steps, crash at step 5, resume: z and the SAID scales end as if it never stopped."""
    config = TrainConfig(steps=8, batch_size=8, lr=0.05, warmup_steps=2, checkpoint_every=3, seed=1)

    def fresh(seed=0):
        task = FewEvalTask(n_eval=10)
        gpt = GPT(GPTConfig(task.tokenizer.vocab_size, task.block_size, n_layer=1, n_head=2, n_embd=16), seed=seed)
        return SubspaceModel(gpt, 50, said=True)

    straight = fresh()
    train(straight, FewEvalTask(n_eval=10), config)
    with pytest.raises(KeyboardInterrupt):
        train(fresh(), FewEvalTask(fail_after=5, n_eval=10), config, out_dir=tmp_path)
    assert (tmp_path / CHECKPOINT_FILE).is_file()
    resumed = fresh(seed=5)  # another θ0: the checkpoint restores the wrapped model's weights too
    train(resumed, FewEvalTask(n_eval=10), config, out_dir=tmp_path, resume=True)
    assert np.array_equal(resumed.z.numpy(), straight.z.numpy())
    assert np.array_equal(resumed.said_scales.numpy(), straight.said_scales.numpy())


def test_state_dict_round_trip():
    sm = SubspaceModel(tiny_gpt(), 9, said=True)
    sm.z.data[...] = np.random.default_rng(0).standard_normal(9).astype(np.float32)
    sm.said_scales.data[...] = 2.0
    state = sm.state_dict()
    assert "z" in state and "said_scales" in state
    other = SubspaceModel(tiny_gpt(), 9, said=True)
    other.load_state_dict(state)
    x, _ = batch()
    assert np.array_equal(other(x)[0].numpy(), sm(x)[0].numpy())


def test_parameters_are_restored_after_the_call_even_when_it_raises():
    model = tiny_gpt()
    sm = SubspaceModel(model, 3)
    with pytest.raises(ValueError, match="token ids of shape"):
        sm(np.zeros(4, dtype=np.int64))
    for module in model.modules():
        for name, p in module._parameters.items():
            assert getattr(module, name) is p
    sm(batch()[0])
    assert model.head.weight is model._modules["head"]._parameters["weight"]


def test_nested_calls_keep_the_outer_theta():
    model = tiny_gpt()
    sm = SubspaceModel(model, 3, seed=1)
    sm.z.data[...] = 5.0
    x, _ = batch()
    with sm.weights_in_place():
        before = model(x)[0].numpy()
        sm(x)  # an inner call puts θ in place and takes it out again
        after = model(x)[0].numpy()
    assert np.array_equal(before, after) and np.array_equal(before, sm(x)[0].numpy())
    assert not np.array_equal(before, model(x)[0].numpy())  # outside the block: θ0 again
    assert model.head.weight is model._modules["head"]._parameters["weight"]


def test_shared_parameters_get_one_theta():
    model = TiedPair()
    sm = SubspaceModel(model, 4, projection="dense", seed=0)
    assert sm.D == 9 + 3  # the tied weight once, plus a's bias
    sm.z.data[...] = np.array([0.3, -0.2, 0.1, 0.5], dtype=np.float32)
    x = ml.tensor(np.ones((2, 3), dtype=np.float32))
    theta = sm.theta()
    w, b = theta["a.weight"], theta["a.bias"]
    expected = (np.ones((2, 3)) @ w.T + b) @ w.T
    np.testing.assert_allclose(sm(x).numpy(), expected, rtol=1e-5)


def test_a_chosen_subset_of_parameters():
    model = tiny_gpt()
    sm = SubspaceModel(model, 4, params=["blocks.0.attn", "head.weight"])
    expected = [n for n, _ in model.named_parameters() if n.startswith("blocks.0.attn.") or n == "head.weight"]
    assert sm.param_names == expected
    assert sm.D == sum(p.size for n, p in model.named_parameters() if n in expected)
    sm.z.data[...] = 1.0
    x, _ = batch()
    reference = tiny_gpt()
    full = SubspaceModel(reference, 4)
    full.z.data[...] = 1.0
    assert not np.array_equal(sm(x)[0].numpy(), full(x)[0].numpy())
    with pytest.raises(ValueError, match=r"params \['blocks.7'\] match no parameter"):
        SubspaceModel(tiny_gpt(), 4, params=["blocks.7"])
    with pytest.raises(TypeError, match="sequence of names"):
        SubspaceModel(tiny_gpt(), 4, params="head")


def test_moves_between_devices(device):
    x, y = batch()
    sm = SubspaceModel(tiny_gpt(), 5, seed=2, said=True)
    sm.z.data[...] = np.linspace(-1, 1, 5).astype(np.float32)
    host_logits, host_loss = sm(x, y)
    sm.to(device)
    assert sm.z.device == device and sm.model.head.weight.device == device
    logits, loss = sm(backend.to_device(x, device), ml.tensor(backend.to_device(y.data, device)))
    np.testing.assert_allclose(logits.numpy(), host_logits.numpy(), rtol=1e-5, atol=1e-6)
    loss.backward()
    assert backend.device_of(sm.z.grad) == device and sm.z.grad.shape == (5,)


def test_generate_uses_theta():
    sm = SubspaceModel(tiny_gpt(), 5, seed=2)
    prompt = np.zeros((1, 2), dtype=np.int64)
    assert np.array_equal(sm.generate(prompt, 4, rng=0), sm.model.generate(prompt, 4, rng=0))
    sm.z.data[...] = 50.0
    assert sm.generate(prompt, 6, rng=0).shape == (1, 8) and sm.config is sm.model.config


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="unknown projection 'random'"):
        SubspaceModel(tiny_gpt(), 3, projection="random")
    with pytest.raises(ValueError, match=r"projection has shape \(10, 3\), expected \(D, d\) = \(\d+, 3\)"):
        SubspaceModel(tiny_gpt(), 3, projection=FastfoodProjection(10, 3))
    with pytest.raises(ValueError, match="d must be a positive integer"):
        SubspaceModel(tiny_gpt(), 0)
    with pytest.raises(TypeError, match="wraps an nn.Module"):
        SubspaceModel(object(), 3)
