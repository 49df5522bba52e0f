"""The training-step profile (minilora/bench/profile.py): shares, recorded products, patching undone, the table."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from minilora import nn
from minilora.bench import profile
from minilora.bench.profile import (
    format_profile,
    profile_step,
    profiling,
    recording_matmuls,
)
from minilora.bench.steps import BenchConfig, make_batches, step_flops
from minilora.engine.tensor import Function, Tensor
from minilora.models import GPT, GPTConfig
from minilora.optim import AdamW
from minilora.train import train_step

B, T, C, V = 2, 8, 8, 16  # batch, tokens, channels, vocabulary of the tiny model
TINY = BenchConfig("test-tiny", GPTConfig(vocab_size=V, block_size=T, n_layer=1, n_head=2, n_embd=C), batch_size=B)


@pytest.fixture(scope="module")
def full() -> dict:
    return profile_step(TINY, "full", steps=2, untimed_steps=1, repeats=2)


def _patch_points() -> dict:
    """What every patched class holds as its own attribute now (None: inherits it)."""
    points = {(cls, name) for cls, name in profile._function_passes()}
    points |= {(Function, "apply"), (Tensor, "backward"), (AdamW, "step")}
    return {(cls, name): cls.__dict__.get(name) for cls, name in points}


def test_shares_of_the_rows_and_other_sum_to_the_whole_step(full):
    rows = {row["name"]: row for row in full["rows"]}
    assert {"LinearFn", "Attention", profile.GRAPH_ROW, profile.OPTIMIZER_ROW, profile.OTHER_ROW} <= set(rows)
    assert rows["LinearFn"]["forward_ms"] > 0 and rows["LinearFn"]["backward_ms"] > 0
    assert all(row["ms"] >= 0 for row in full["rows"])
    assert sum(row["share"] for row in full["rows"]) == pytest.approx(1.0, abs=1e-9)
    assert sum(row["ms"] for row in full["rows"]) == pytest.approx(full["profiled_step_ms"], rel=1e-9)


def test_a_linear_layer_records_its_forward_product_and_its_two_backward_products():
    k, d = 5, 3
    layer = nn.Linear(k, d)
    x = Tensor(np.ones((B, T, k), dtype=np.float32), requires_grad=True)
    with recording_matmuls() as products:
        layer(x).sum().backward()
    n = B * T  # leading axes flattened into one 2-D product
    assert [(p["where"], p["a_shape"], p["b_shape"], p["dtype"]) for p in products] == [
        ("LinearFn.forward", (n, k), (k, d), "float32"),   # y = x W^T
        ("LinearFn.backward", (n, d), (d, k), "float32"),  # dx = g W
        ("LinearFn.backward", (d, n), (n, k), "float32"),  # dW = g^T x
    ]


def test_the_tiny_gpt_step_records_every_product_of_the_bench_flop_count(full):
    recorded = [((m["where"], tuple(m["a_shape"]), tuple(m["b_shape"])), m["count"]) for m in full["matmuls"]]
    n = B * T
    fc_in = [("LinearFn.forward", (n, C), (C, 4 * C)), ("LinearFn.backward", (n, 4 * C), (4 * C, C)),
             ("LinearFn.backward", (4 * C, n), (n, C))]
    shapes = dict(recorded)
    assert all(key in shapes for key in fc_in)
    flops = sum(profile._product_flops(a, b) * count for (_, a, b), count in recorded)
    assert flops == step_flops(TINY.model, B, T)  # 6 N + 12 L T C per token: every product, each once
    assert full["matmul_count"] == sum(count for _, count in recorded)
    assert full["matmul_limit_ms"] == pytest.approx(sum(m["ms"] for m in full["matmuls"]))
    assert full["ratio"] == pytest.approx(full["step_ms"] / full["matmul_limit_ms"])
    assert full["ratio_cpu"] == pytest.approx(full["step_cpu_ms"] / full["matmul_limit_cpu_ms"])


def test_a_recorded_step_computes_what_a_plain_step_computes():
    def one_step(context):
        model = GPT(TINY.model, seed=0)
        optimizer = AdamW(model.parameters())
        x, y = make_batches(TINY.model, B, 1)[0]
        with context():
            loss, _ = train_step(model, optimizer, x, y, grad_clip=0.0)
        return loss.item(), [type(a) for p in model.parameters() for a in (p.data, p.grad)], model.state_dict()

    plain, recorded = one_step(lambda: np.errstate()), one_step(recording_matmuls)
    assert plain[0] == recorded[0]
    assert set(recorded[1]) == {np.ndarray}  # no recording view left in the model
    assert all(np.array_equal(plain[2][name], recorded[2][name]) for name in plain[2])


def test_patching_is_undone_also_after_an_error(full):
    before = _patch_points()
    optimizer = AdamW([nn.Parameter(np.zeros(2, dtype=np.float32))])
    for context in (lambda: profiling(optimizer), recording_matmuls):
        with pytest.raises(RuntimeError, match="boom"), context():
            assert _patch_points() != before  # patched inside
            raise RuntimeError("boom")
        after = _patch_points()
        assert after.keys() == before.keys()
        assert all(after[key] is before[key] for key in before)
    assert profile._Recorded.sink is None


def test_the_table_shows_the_limit_the_ratio_and_every_row(full):
    text = format_profile(full)
    assert f"matmul limit {full['matmul_limit_ms']:.2f} ms" in text
    assert f"ratio step / limit {full['ratio']:.2f}x" in text
    assert f"matmul limit {full['matmul_limit_cpu_ms']:.2f} ms   ratio {full['ratio_cpu']:.2f}x" in text  # CPU time
    assert all(row["name"] in text for row in full["rows"])
    assert "100.0%" in text


def test_each_function_row_carries_its_own_products_timed_alone(full):
    rows = {row["name"]: row for row in full["rows"]}
    for name in ("LinearFn", "Attention"):
        own = [m["ms"] for m in full["matmuls"] if m["where"].startswith(name + ".")]
        assert own and rows[name]["products_ms"] == pytest.approx(sum(own))
    assert rows[profile.GRAPH_ROW]["products_ms"] is None and rows["LayerNorm"]["products_ms"] is None  # no products
    total = format_profile(full).splitlines()
    assert any(line.startswith("total") and line.rstrip().endswith(f"{full['matmul_limit_ms']:.2f}") for line in total)


def test_products_are_timed_in_turn_never_twice_in_a_row():
    keys = [((4, 3), (3, 2), "float32"), ((2, 5), (5, 1), "float32"), ((1, 1), (1, 1), "float64")]
    calls = []
    timer = profile.ProductTimer(keys, product=lambda a, b: lambda: calls.append((a.shape, b.shape)))
    timer.run(3)
    assert calls == [(a, b) for a, b, _ in keys] * 3  # each product once a pass, three passes
    assert set(timer.medians()) == set(keys)


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="PyTorch not installed (the torch extra)")
def test_the_same_products_are_timed_in_pytorch_and_compared(full):
    assert all(m["torch_ms_each"] > 0 for m in full["matmuls"])
    assert full["torch_matmul_limit_ms"] == pytest.approx(sum(m["count"] * m["torch_ms_each"] for m in full["matmuls"]))
    beside_torch = sum(m["count"] * m["ms_each_beside_torch"] for m in full["matmuls"])  # NumPy's, by turns
    assert full["limit_over_torch"] == pytest.approx(beside_torch / full["torch_matmul_limit_ms"])
    text = format_profile(full)
    assert (f"{full['torch_matmul_limit_ms']:.2f} ms; NumPy's take {full['limit_over_torch']:.2f}x as long" in text
            and f"({full['torch_cpu_capability']} kernels" in text)
    assert "/ torch" in text.splitlines()[-len(full["matmuls"]) - 1]  # the products' table has the ratio column


def test_without_pytorch_the_profile_has_no_torch_numbers():
    result = profile_step(TINY, "full", steps=1, untimed_steps=0, repeats=1, torch=False)
    assert result["torch_matmul_limit_ms"] is None and result["limit_over_torch"] is None
    assert all(m["torch_ms_each"] is None and m["ms_each_beside_torch"] is None for m in result["matmuls"])
    text = format_profile(result)
    assert "PyTorch" not in text and "/ torch" not in text


@pytest.mark.parametrize(("kwargs", "message"), [({"config": "bench-huge"}, "unknown config 'bench-huge'"),
                                                 ({"method": "dora"}, "unknown method 'dora'"),
                                                 ({"steps": 0}, "steps=0")])
def test_bad_settings_are_refused_in_one_line(kwargs, message):
    with pytest.raises(ValueError, match=message) as err:
        profile_step(**{"config": TINY, **kwargs})
    assert "\n" not in str(err.value)
