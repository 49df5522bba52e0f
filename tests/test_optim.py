"""Tests for minilora.optim: SGD, AdamW (by hand and against PyTorch), clipping, schedules, groups, state."""

from __future__ import annotations

import math

import numpy as np
import pytest

import minilora as ml
from minilora import backend, nn, optim

GRADS = [np.array([0.5, -1.0, 2.0]), np.array([-0.25, 0.5, 1.0]), np.array([1.0, 1.0, -3.0])]


def _param(values=(1.0, -2.0, 0.5), device="cpu"):
    return nn.Parameter(backend.to_device(np.array(values, dtype=np.float64), device))


def _run(opt, p, grads, device="cpu"):
    for g in grads:
        p.grad = backend.to_device(g.copy(), device)
        opt.step()
    return p.numpy()


# -- SGD -----------------------------------------------------------------------------------------


def test_sgd_plain_by_hand(device):
    p = _param(device=device)
    out = _run(optim.SGD([p], lr=0.1), p, GRADS[:2], device)
    # p - 0.1 * (g1 + g2)
    np.testing.assert_allclose(out, [1.0 - 0.025, -2.0 + 0.05, 0.5 - 0.3], rtol=1e-12)
    assert p.device == device


def test_sgd_momentum_by_hand():
    p = _param()
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    _run(opt, p, GRADS[:1])
    np.testing.assert_allclose(p.numpy(), [0.95, -1.9, 0.3])  # v1 = g1
    _run(opt, p, GRADS[1:2])
    v2 = 0.9 * GRADS[0] + GRADS[1]  # [0.2, -0.4, 2.8]
    np.testing.assert_allclose(p.numpy(), np.array([0.95, -1.9, 0.3]) - 0.1 * v2, rtol=1e-12)
    np.testing.assert_allclose(opt.state[id(p)]["momentum"], v2)


def test_sgd_weight_decay_is_l2_added_to_the_gradient():
    p = _param()
    _run(optim.SGD([p], lr=0.1, weight_decay=0.5), p, GRADS[:1])
    p0 = np.array([1.0, -2.0, 0.5])
    np.testing.assert_allclose(p.numpy(), p0 - 0.1 * (GRADS[0] + 0.5 * p0), rtol=1e-12)


def test_sgd_rejects_negative_settings():
    with pytest.raises(ValueError, match="must be >= 0"):
        optim.SGD([_param()], lr=-1.0)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)


# -- AdamW ---------------------------------------------------------------------------------------


def test_adamw_first_step_is_lr_times_sign_plus_decoupled_decay():
    p0 = np.array([1.0, -2.0, 0.5])
    p = _param()
    _run(optim.AdamW([p], lr=0.1, weight_decay=0.2, eps=1e-8), p, GRADS[:1])
    # bias correction makes m̂ = g and v̂ = g² at t = 1, so the step is lr·g/(|g|+eps)
    expected = p0 * (1 - 0.1 * 0.2) - 0.1 * GRADS[0] / (np.abs(GRADS[0]) + 1e-8)
    np.testing.assert_allclose(p.numpy(), expected, rtol=1e-12)


@pytest.mark.parametrize("fused", [True, False])
def test_adamw_matches_numpy_reference_over_three_steps(device, fused):
    lr, (b1, b2), eps, wd = 0.05, (0.8, 0.95), 1e-6, 0.1
    p = _param(device=device)
    opt = optim.AdamW([p], lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd, fused=fused)
    ref, m, v = np.array([1.0, -2.0, 0.5]), np.zeros(3), np.zeros(3)
    for t, g in enumerate(GRADS, start=1):
        ref = ref * (1 - lr * wd)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        ref = ref - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    _run(opt, p, GRADS, device)
    np.testing.assert_allclose(p.numpy(), ref, rtol=1e-12)
    state = opt.state[id(p)]
    assert state["step"] == 3
    np.testing.assert_allclose(backend.to_host(state["exp_avg"]), m, rtol=1e-12)
    np.testing.assert_allclose(backend.to_host(state["exp_avg_sq"]), v, rtol=1e-12)
    assert backend.device_of(state["exp_avg"]) == device


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_adamw_fast_path_equals_textbook_step(device, dtype, rtol):
    """fused=True (in place, one scratch array) against fused=False (``adamw_step``, the paper's four lines).

    The moments m and v come out bit for bit equal: both paths do the same products and sums in the same
    order.  The parameters agree to float rounding only: the fast path folds the bias corrections into
    scalars, (lr/c1)·m / (sqrt(v)·(1/sqrt(c2)) + eps), where the textbook divides, lr·(m/c1) / (sqrt(v/c2) + eps),
    equal in exact arithmetic, rounded differently (a few ulps a step; 20 steps here).
    """
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal((4, 5)).astype(dtype)
    grads = [rng.standard_normal((4, 5)).astype(dtype) for _ in range(20)]
    runs = {}
    for fused in (True, False):
        p = nn.Parameter(backend.to_device(p0.copy(), device))
        opt = optim.AdamW([p], lr=0.01, weight_decay=0.1, fused=fused)
        first = p.data
        for g in grads:
            p.grad = backend.to_device(g.copy(), device)
            opt.step()
        assert (p.data is first) == fused and p.dtype == dtype and p.device == device   # only the fast path is in place
        state = opt.state[id(p)]
        runs[fused] = [backend.to_host(a) for a in (p.data, state["exp_avg"], state["exp_avg_sq"])]
    (p_fast, m_fast, v_fast), (p_book, m_book, v_book) = runs[True], runs[False]
    np.testing.assert_array_equal(m_fast, m_book)
    np.testing.assert_array_equal(v_fast, v_book)
    np.testing.assert_allclose(p_fast, p_book, rtol=rtol, atol=0)
    assert not np.allclose(p_fast, p0, rtol=rtol)                  # the parameters did move


def test_adamw_rejects_invalid_settings():
    for kwargs in ({"lr": -1}, {"betas": (1.0, 0.9)}, {"eps": 0.0}, {"weight_decay": -0.1}):
        with pytest.raises(ValueError, match="AdamW: invalid settings"):
            optim.AdamW([_param()], **kwargs)


# -- against PyTorch -----------------------------------------------------------------------------


def _torch_compare(make_ours, make_theirs):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    init = [rng.standard_normal((4, 3)), rng.standard_normal(3)]
    ours = [nn.Parameter(a.copy()) for a in init]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in init]
    opt, topt = make_ours(ours), make_theirs(torch, theirs)
    for _ in range(5):
        grads = [rng.standard_normal(a.shape) for a in init]
        for p, tp, g in zip(ours, theirs, grads):
            p.grad, tp.grad = g.copy(), torch.tensor(g.copy())
        opt.step()
        topt.step()
    for p, tp in zip(ours, theirs):
        np.testing.assert_allclose(p.numpy(), tp.detach().numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("momentum,wd", [(0.0, 0.0), (0.9, 0.0), (0.9, 0.01), (0.0, 0.1)])
def test_sgd_matches_torch(momentum, wd):
    _torch_compare(
        lambda ps: optim.SGD(ps, lr=0.1, momentum=momentum, weight_decay=wd),
        lambda torch, ps: torch.optim.SGD(ps, lr=0.1, momentum=momentum, weight_decay=wd),
    )


@pytest.mark.parametrize("wd", [0.0, 0.1])
def test_adamw_matches_torch(wd):
    _torch_compare(
        lambda ps: optim.AdamW(ps, lr=0.01, betas=(0.9, 0.99), eps=1e-8, weight_decay=wd),
        lambda torch, ps: torch.optim.AdamW(ps, lr=0.01, betas=(0.9, 0.99), eps=1e-8, weight_decay=wd),
    )


# -- what gets updated, and state ----------------------------------------------------------------


def test_frozen_and_gradless_parameters_are_skipped_without_state(device):
    live, frozen, idle = _param(device=device), _param(device=device), _param(device=device)
    frozen.requires_grad_(False)
    frozen.grad = backend.to_device(np.ones(3), device)  # a stale gradient must not move a frozen weight
    opt = optim.AdamW([live, frozen, idle], lr=0.1)
    live.grad = backend.to_device(np.ones(3), device)
    opt.step()
    assert list(opt.state) == [id(live)]
    assert opt.state_bytes() == 2 * live.data.nbytes  # two moments, float64
    np.testing.assert_array_equal(frozen.numpy(), [1.0, -2.0, 0.5])
    np.testing.assert_array_equal(idle.numpy(), [1.0, -2.0, 0.5])
    assert not np.array_equal(live.numpy(), [1.0, -2.0, 0.5])


def test_state_bytes_for_sgd():
    p = _param()
    plain, heavy = optim.SGD([p], lr=0.1), optim.SGD([p], lr=0.1, momentum=0.9)
    p.grad = np.ones(3)
    plain.step()
    heavy.step()
    assert plain.state_bytes() == 0 and heavy.state_bytes() == p.data.nbytes


def test_zero_grad_and_lr_setter():
    a, b = _param(), _param()
    opt = optim.SGD([{"params": [a], "lr": 0.5}, {"params": [b]}], lr=0.1)
    a.grad, b.grad = np.ones(3), np.ones(3)
    opt.zero_grad()
    assert a.grad is None and b.grad is None
    assert opt.lr == 0.5  # the first group's
    opt.lr = 0.01
    assert [g["lr"] for g in opt.param_groups] == [0.01, 0.01]


def test_parameter_groups_have_their_own_settings():
    a, b = _param(), _param()
    opt = optim.AdamW([{"params": [a], "weight_decay": 0.5, "lr": 0.2}, {"params": iter([b])}], lr=0.1,
                      weight_decay=0.0)
    assert opt.param_groups[1]["params"] == [b] and opt.param_groups[1]["lr"] == 0.1
    a.grad, b.grad = np.zeros(3), np.zeros(3)  # a zero gradient leaves only the decay
    opt.step()
    np.testing.assert_allclose(a.numpy(), np.array([1.0, -2.0, 0.5]) * (1 - 0.2 * 0.5), rtol=1e-12)
    np.testing.assert_array_equal(b.numpy(), [1.0, -2.0, 0.5])


def test_unknown_group_setting_is_an_error():
    with pytest.raises(ValueError, match="unknown optimizer setting 'momentun'.*'momentum'"):
        optim.SGD([{"params": [_param()], "momentun": 0.9}], lr=0.1)


# -- clipping and schedules ----------------------------------------------------------------------


def test_clip_grad_norm_returns_norm_before_and_scales(device):
    a, b, c = _param(device=device), _param(device=device), _param(device=device)
    a.grad = backend.to_device(np.array([3.0, 4.0, 0.0]), device)
    b.grad = backend.to_device(np.array([0.0, 0.0, 12.0]), device)  # c has no gradient: ignored
    assert optim.clip_grad_norm([a, b, c], max_norm=6.5) == pytest.approx(13.0)
    after = math.sqrt(sum(float((backend.to_host(p.grad) ** 2).sum()) for p in (a, b)))
    assert after == pytest.approx(6.5, rel=1e-6)
    np.testing.assert_allclose(backend.to_host(a.grad), [1.5, 2.0, 0.0], rtol=1e-6)  # direction kept
    assert c.grad is None


def test_clip_grad_norm_leaves_small_gradients_alone():
    p = _param()
    p.grad = np.array([0.3, 0.4, 0.0])
    assert optim.clip_grad_norm(iter([p]), max_norm=1.0) == pytest.approx(0.5)
    np.testing.assert_array_equal(p.grad, [0.3, 0.4, 0.0])
    assert optim.clip_grad_norm([_param()], max_norm=1.0) == 0.0


def test_warmup_cosine_values():
    kw = dict(max_lr=1.0, warmup_steps=10, total_steps=110, min_lr=0.1)
    assert optim.warmup_cosine(0, **kw) == pytest.approx(0.1)       # (0 + 1) / 10
    assert optim.warmup_cosine(4, **kw) == pytest.approx(0.5)
    assert optim.warmup_cosine(9, **kw) == pytest.approx(1.0)       # end of warm-up
    assert optim.warmup_cosine(10, **kw) == pytest.approx(1.0)      # cosine starts at the top
    assert optim.warmup_cosine(60, **kw) == pytest.approx(0.55)     # midpoint: (max + min) / 2
    assert optim.warmup_cosine(110, **kw) == pytest.approx(0.1)     # end
    assert optim.warmup_cosine(500, **kw) == pytest.approx(0.1)     # after the end
    decay = [optim.warmup_cosine(s, **kw) for s in range(10, 111)]
    assert all(x >= y for x, y in zip(decay, decay[1:]))
    assert optim.warmup_cosine(0, max_lr=2.0, warmup_steps=0, total_steps=10) == pytest.approx(2.0)


# -- optimizer state_dict ------------------------------------------------------------------------


@pytest.mark.parametrize("make", [
    lambda ps: optim.AdamW(ps, lr=0.01, weight_decay=0.1),
    lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
], ids=["adamw", "sgd"])
def test_optimizer_state_dict_round_trip(device, make):
    def setup():
        model = nn.Sequential(nn.Linear(3, 4, rng=0, device=device), nn.Linear(4, 2, rng=1, device=device))
        model[1].requires_grad_(False)
        return model, make(model.parameters())

    def train(model, opt, steps, seed):
        rng = np.random.default_rng(seed)
        for _ in range(steps):
            opt.zero_grad()
            x = ml.tensor(rng.standard_normal((5, 3)).astype(np.float32), device=device)
            (model(x) ** 2).mean().backward()
            opt.step()

    model, opt = setup()
    train(model, opt, 3, seed=0)
    names = {id(p): n for n, p in model.named_parameters()}
    saved = opt.state_dict(names)
    assert all(type(v) is np.ndarray for v in saved.values())
    assert all(k.startswith("0.") for k in saved)  # the frozen layer has no state
    if "0.weight.step" in saved:
        assert int(saved["0.weight.step"]) == 3

    model2, opt2 = setup()
    model2.load_state_dict(model.state_dict())
    opt2.load_state_dict(saved, dict(model2.named_parameters()))
    assert opt2.state_dict({id(p): n for n, p in model2.named_parameters()}).keys() == saved.keys()
    for p in model2.parameters():
        for value in opt2.state.get(id(p), {}).values():
            if hasattr(value, "shape"):
                assert backend.device_of(value) == device
    train(model, opt, 2, seed=1)
    train(model2, opt2, 2, seed=1)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(model2.state_dict()[k], v)


def test_optimizer_load_state_dict_rejects_unknown_parameter():
    p = _param()
    opt = optim.AdamW([p])
    with pytest.raises(ValueError, match="'ghost.weight'"):
        opt.load_state_dict({"ghost.weight.exp_avg": np.zeros(3)}, {"w": p})


def test_optimizer_state_round_trip_keeps_step_an_int_and_scalar_buffers_arrays():
    scale = nn.Parameter(np.array(2.0))  # a 0-d parameter: its moments are 0-d arrays, not numbers
    opt = optim.AdamW([scale], lr=0.1)
    for g in (0.5, -1.0):
        scale.grad = np.array(g)
        opt.step()
    saved = opt.state_dict({id(scale): "scale"})
    opt2 = optim.AdamW([scale], lr=0.1)
    opt2.load_state_dict(saved, {"scale": scale})
    state = opt2.state[id(scale)]
    assert state["step"] == 2 and isinstance(state["step"], int)
    assert isinstance(state["exp_avg"], np.ndarray) and state["exp_avg"].shape == ()
    before = float(state["exp_avg"])
    scale.grad = np.array(1.0)
    opt2.step()  # the restored moments must keep updating in place
    assert float(opt2.state[id(scale)]["exp_avg"]) == pytest.approx(0.9 * before + 0.1)
