"""``minilora quant-report``: bits per weight, bytes resident per method, NF4 against uniform int4, the merge."""

import json

import pytest

from minilora.bench.quant import bits_per_parameter, merge_pitfall, quantization_errors, resident_bytes
from minilora.cli import main
from minilora.experiments.methods import get_method
from minilora.experiments.runs import load_base


def test_bits_per_weight_are_4_5_and_4_127():
    bits = bits_per_parameter()
    assert bits["nf4"] == 4.5 and round(bits["nf4_double_quant"], 3) == 4.127


def test_nf4_beats_the_uniform_4bit_code_on_normal_weights_at_every_block_size():
    rows = quantization_errors(blocksizes=(64, 4096), size=256)
    assert [r["blocksize"] for r in rows] == [64, 4096]
    assert all(r["nf4_mae"] < r["uniform4_mae"] for r in rows)
    assert rows[0]["nf4_mae"] < rows[1]["nf4_mae"]  # smaller blocks, smaller error


def test_qlora_keeps_fewer_bytes_resident_than_lora_and_lora_than_full():
    settings = {"r": 8, "target_modules": ["q_proj", "v_proj"]}
    full = resident_bytes(get_method("full").prepare(load_base("skills")))
    lora = resident_bytes(get_method("lora").prepare(load_base("skills"), settings))
    qlora = resident_bytes(get_method("qlora").prepare(load_base("skills"), settings))
    assert full["total"] == 4 * 4 * full["trainable"]  # weights + grads + two AdamW moments, float32
    assert lora["trainable"] == qlora["trainable"] and lora["adamw"] == qlora["adamw"]
    assert full["total"] > lora["total"] > qlora["total"]


def test_merging_into_the_4bit_base_moves_the_weights():
    merge = merge_pitfall(steps=5)
    assert merge["max_abs_change"] > merge["mean_abs_change"] > 0


def test_the_command_prints_the_report_as_json(capsys):
    assert main(["quant-report", "--json", "--merge-steps", "0"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["bits_per_parameter"]["nf4"] == pytest.approx(4.5)
    assert {(r["model"], r["method"]) for r in report["memory"]} >= {("skills", "qlora"), ("bench-small", "lora")}
    assert [r["blocksize"] for r in report["errors"]] == [64, 256, 4096] and "merge" not in report
