"""Parameter accounting (minilora/lora/accounting.py)."""

from __future__ import annotations

import pytest
from lora_fixtures import CFG

from minilora.lora import LoraConfig, apply_lora, count_parameters, lora_param_count, lora_report
from minilora.models import GPT


def test_gpt3_numbers_from_the_lora_paper():
    # GPT-3 175B: d_model = 12288, 96 layers (Hu et al. 2021, Sec. 4.2 and Tables 4-5)
    assert lora_param_count(12288, 96, r=1, targets=("q", "v")) == 4_718_592     # "4.7M"
    assert lora_param_count(12288, 96, r=8, targets=("q", "v")) == 37_748_736    # "37.7M"
    # Table 5: the same 18M budget spent on one, two or four weight types
    budget = {lora_param_count(12288, 96, r=8, targets=t) for t in ("q", "k", "v", "o")}
    budget |= {lora_param_count(12288, 96, r=4, targets=t) for t in ("qk", "qv")}
    budget.add(lora_param_count(12288, 96, r=2, targets=("q", "k", "v", "o")))
    assert budget == {18_874_368}


@pytest.mark.parametrize("args, message", [
    ((0, 96, 1), "d_model must be a positive integer, got 0"),
    ((12288, 96, 1.5), "r must be a positive integer, got 1.5"),
    ((12288, 96, 1, ("q", "x")), "got ('q', 'x')"),
    ((12288, 96, 1, ("q", "q")), "distinct"),
    ((12288, 96, 1, ()), "got ()"),
])
def test_param_count_rejects_bad_values(args, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        lora_param_count(*args)


def test_count_parameters_and_report():
    model = GPT(CFG)
    total = model.num_parameters()
    before = count_parameters(model)
    assert (before.trainable, before.total, before.percent) == (total, total, 100.0)
    apply_lora(model, LoraConfig(r=2))
    count = count_parameters(model)
    lora = 4 * 2 * (16 + 16)                                  # 4 layers × r(d + k)
    assert count.trainable == lora == lora_param_count(16, 2, r=2)
    assert count.total == total + lora
    assert count.percent == pytest.approx(100 * lora / (total + lora))
    assert str(count) == f"trainable params: 256 || all params: {total + lora:,} || trainable%: {count.percent:.4f}"

    rows, table = lora_report(model)
    assert [r.name for r in rows] == [f"blocks.{i}.attn.{p}" for i in range(2) for p in ("q_proj", "v_proj")]
    assert all(tuple(r)[1:] == (16, 16, 256, 2, 64) and r.ratio == 0.25 for r in rows)
    assert "blocks.1.attn.v_proj" in table and "r(d+k)" in table
    assert table.splitlines()[-1].split() == ["total", "1,024", "256", "25.00%"]


def test_report_rectangular_layers():
    model = apply_lora(GPT(CFG), LoraConfig(r=3, target_modules=("fc_in", "fc_out")))
    rows, _ = lora_report(model)
    assert [tuple(r)[1:] for r in rows[:2]] == [(64, 16, 1024, 3, 240), (16, 64, 1024, 3, 240)]


def test_report_without_lora_is_an_error():
    with pytest.raises(ValueError, match="no LoRA layers"):
        lora_report(GPT(CFG))
