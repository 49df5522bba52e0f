"""``minilora compare``: full fine-tuning and LoRA side by side, on a tiny budget."""

import json

import numpy as np
import pytest

import minilora
from minilora.cli import main
from minilora.data import get_task
from minilora.experiments.compare import (
    COMPARE_FILE,
    compare,
    format_table,
    parse_ranks,
)

COLUMNS = ("method", "r", "trainable", "%", "accuracy", "loss", "step ms", "peak MiB", "optim KiB", "file KiB",
           "base ms", "merged ms", "unmerged ms")


@pytest.fixture(scope="module")
def base():
    return minilora.pretrained("skills")


@pytest.fixture(scope="module")
def result(base, tmp_path_factory):
    before = {k: v.copy() for k, v in base.state_dict().items()}
    out = tmp_path_factory.mktemp("compare")
    rows = compare(get_task("reverse-shift", n_eval=20), base=base, ranks=(1, 2), steps=5, batch_size=8,
                   out=out, memory_steps=2, latency_batch=8, latency_repeats=3)
    return rows, out, before


def test_one_row_per_method_and_rank(result):
    rows, _, _ = result
    assert [(r["run"], r["method"], r["rank"]) for r in rows] == [("full", "full", None), ("lora-r1", "lora", 1),
                                                                    ("lora-r2", "lora", 2)]
    for r in rows:
        assert r["metric"] == "accuracy" and 0.0 <= r["metric_value"] <= 1.0
        assert len(r["losses"]) == 5 and r["step_ms"] > 0 and r["train_seconds"] > 0
    assert rows[0]["lr"] == 3e-3 and rows[1]["lr"] == 1e-2


def test_trainable_counts_and_optimizer_state(result, base):
    rows, _, _ = result
    full, r1, r2 = rows
    n = base.num_parameters()
    assert full["trainable_params"] == full["total_params"] == n and full["trainable_pct"] == 100.0
    for row, r in ((r1, 1), (r2, 2)):
        # per layer (2 layers): q, v are 64x64, costing r(64 + 64) each; fc_in (256x64) and fc_out (64x256)
        # cost r(64 + 256) each, so 2 · (2·128 + 2·320) · r = 1792 r
        assert row["trainable_params"] == 2 * (2 * 128 + 2 * 320) * r
        assert row["total_params"] == n + row["trainable_params"]
        assert row["trainable_pct"] == pytest.approx(100 * row["trainable_params"] / row["total_params"])
    for row in rows:  # AdamW: two float32 moments per trainable weight
        assert row["optimizer_state_bytes"] == 2 * 4 * row["trainable_params"]


def test_memory_files_and_latency(result):
    full, r1, r2 = result[0]
    # activations dominate a model this small, so LoRA need not use less; the traced peak holds the AdamW moments
    assert (full["peak_train_bytes"] > full["optimizer_state_bytes"]
            and r1["peak_train_bytes"] > r1["optimizer_state_bytes"])
    assert full["file"].endswith("model.safetensors") and r1["file"].endswith("adapter_model.safetensors")
    assert r1["file_bytes"] < r2["file_bytes"] < full["file_bytes"] / 20
    assert full["infer_base_ms"] is None and full["infer_merged_ms"] is None
    for row in (r1, r2):
        assert all(row[k] > 0 for k in ("infer_base_ms", "infer_merged_ms", "infer_unmerged_ms"))


def test_json_written_and_table_formatted(result):
    rows, out, _ = result
    saved = json.loads((out / COMPARE_FILE).read_text())
    assert saved["experiment"] == "compare" and saved["settings"]["task"] == "reverse-shift"
    assert saved["settings"]["ranks"] == [1, 2] and saved["settings"]["train_config"]["steps"] == 5
    assert [r["run"] for r in saved["rows"]] == ["full", "lora-r1", "lora-r2"]
    assert saved["rows"][1]["trainable_params"] == rows[1]["trainable_params"]
    assert (out / "lora-r1" / "adapter_config.json").is_file() and (out / "full" / "model.safetensors").is_file()
    lines = format_table(rows).splitlines()
    assert len(lines) == 2 + len(rows)
    assert lines[0].split() == [w for c in COLUMNS for w in c.split()]
    assert lines[2].startswith("full") and lines[3].startswith("lora")


def test_base_model_is_not_changed(result, base):
    _, _, before = result
    after = base.state_dict()
    assert list(after) == list(before)  # no LoRA layers were put into the base
    for name, value in before.items():
        assert np.array_equal(value, after[name]), name


@pytest.mark.parametrize("text", ["1,x", "0", "2,,4", "-1", "1.5"])
def test_bad_ranks_are_named(text):
    with pytest.raises(ValueError, match="--ranks"):
        parse_ranks(text)
    assert parse_ranks(" 1, 2,8") == [1, 2, 8]


@pytest.mark.parametrize("kwargs,match", [({"ranks": (2, 2)}, "distinct"), ({"ranks": (65,)}, "r=65"),
                                          ({"targets": ("nope",)}, "nope"), ({"lr_lora": 0.0}, "lr_lora")])
def test_bad_settings_fail_before_training(base, kwargs, match):
    with pytest.raises(ValueError, match=match):
        compare(get_task("reverse-shift", n_eval=5), base=base, steps=1, **kwargs)


def test_cli_compare_json_and_errors(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", "--task", "subtract", "--ranks", "1", "--steps", "2", "--batch-size", "4",
                 "--out", str(out), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert [r["run"] for r in printed["rows"]] == ["full", "lora-r1"]
    assert printed == json.loads((out / COMPARE_FILE).read_text())
    assert main(["compare", "--task", "subtract", "--ranks", "1,two", "--out", str(out)]) == 2
    assert "'two'" in capsys.readouterr().err


def test_parse_seeds_names_bad_entries():
    from minilora.experiments.compare import parse_seeds

    assert parse_seeds("0, 1,2") == [0, 1, 2]
    with pytest.raises(ValueError, match="'x'"):
        parse_seeds("0,x")
    with pytest.raises(ValueError, match="repeats"):
        parse_seeds("1,1")


def test_seeds_run_every_method_per_seed_the_same_for_any_jobs(base, tmp_path):
    from minilora.experiments.compare import format_seed_summary

    settings = {"ranks": (1,), "steps": 3, "batch_size": 4, "memory_steps": 1, "latency_batch": 4, "latency_repeats": 1,
                "seeds": (0, 1)}
    one = compare(get_task("reverse-shift", n_eval=20), base=base, jobs=1, out=tmp_path / "one", **settings)
    two = compare(get_task("reverse-shift", n_eval=20), base=base, jobs=2, out=tmp_path / "two", **settings)
    assert [(r["run"], r["seed"]) for r in one] == [("full-seed0", 0), ("full-seed1", 1), ("lora-r1-seed0", 0),
                                                    ("lora-r1-seed1", 1)]
    same = ("metric_value", "losses", "trainable_params", "final_loss", "file_bytes")
    assert [{k: r[k] for k in same} for r in one] == [{k: r[k] for k in same} for r in two]
    assert one[0]["losses"] != one[1]["losses"]  # the seed changes the data order
    assert json.loads((tmp_path / "one" / COMPARE_FILE).read_text())["settings"]["seeds"] == [0, 1]
    summary = format_seed_summary(one).splitlines()
    assert len(summary) == 3 and summary[1].split()[:4] == ["full", "-", "110,720", "2"] and "±" in summary[2]
    assert "seed" in format_table(one).splitlines()[0].split()
    again = compare(get_task("reverse-shift", n_eval=20), base=base, jobs=1, out=tmp_path / "one", resume=True,
                    **settings)
    assert again == one  # every run was loaded from its row.json: identical rows, timings included
    with pytest.raises(ValueError, match="seeds must be distinct"):
        compare(get_task("reverse-shift", n_eval=5), base=base, steps=1, seeds=(1, 1))


def test_cli_compare_seeds_prints_mean_and_spread(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", "--task", "subtract", "--ranks", "1", "--steps", "2", "--batch-size", "4",
                 "--seeds", "0,1,2", "--jobs", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "seeds 0,1,2" in printed and "accuracy (mean ± std)" in printed
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == [f"{m}-seed{s}" for m in ("full", "lora-r1")
                                                                    for s in range(3)]
    assert main(["compare", "--task", "subtract", "--seeds", "0,zero", "--out", str(out)]) == 2


def test_a_compare_folder_in_use_is_refused_naming_the_process(tmp_path, base):
    import os

    from minilora.experiments.folders import LOCK_FILE, FolderLock

    with FolderLock(tmp_path / LOCK_FILE, "compare folder"), pytest.raises(ValueError, match=f"process {os.getpid()}"):
        compare(get_task("reverse-shift", n_eval=20), base=base, ranks=(1,), steps=2, out=tmp_path)


def test_several_variants_in_one_compare_each_with_the_registrys_trainable_count(base, tmp_path):
    """The LoRA family runs at every rank on compare's targets, VeRA and the adapters once; each row trains what
    the registry's entry makes trainable, with AdamW's state for exactly that, and its own files and latencies."""
    from minilora.experiments.methods import get_method

    targets = ("q_proj", "v_proj")
    methods = {"dora": {}, "lora-fa": {}, "lora-plus": {"loraplus_lr_ratio": 4.0}, "vera": {"r": 8},
               "adapter": {"bottleneck": 2}}
    rows = compare(get_task("reverse-shift", n_eval=5), base=base, ranks=(1, 2), steps=2, batch_size=4,
                   targets=targets, out=tmp_path, memory_steps=1, latency_batch=4, latency_repeats=1,
                   methods=methods, lr_methods={"dora": 0.05})
    assert [(r["run"], r["rank"]) for r in rows] == [
        ("full", None), ("lora-r1", 1), ("lora-r2", 2), ("dora-r1", 1), ("dora-r2", 2), ("lora-fa-r1", 1),
        ("lora-fa-r2", 2), ("lora-plus-r1", 1), ("lora-plus-r2", 2), ("vera", 8), ("adapter", None)]
    for row in rows[3:]:
        method = get_method(row["method"])
        settings = {**methods[row["method"]], **({"target_modules": list(targets)} if "target_modules"
                                                 in method.settings else {})}
        if row["method"] != "vera":
            settings.update({"r": row["rank"]} if "r" in method.settings else {})
        fresh = minilora.models.GPT(base.config)
        fresh.load_state_dict(base.state_dict())
        assert row["trainable_params"] == method.trainable(method.prepare(fresh, settings, seed=0)), row["run"]
        assert row["optimizer_state_bytes"] == 2 * 4 * row["trainable_params"]
        assert row["lr"] == (0.05 if row["method"] == "dora" else 1e-2)
        assert row["infer_base_ms"] > 0 and row["infer_unmerged_ms"] > 0
    by_run = {r["run"]: r for r in rows}
    assert by_run["lora-fa-r2"]["trainable_params"] == by_run["lora-r2"]["trainable_params"] // 2  # B only: r·d
    assert by_run["vera"]["trainable_params"] == 2 * 2 * (8 + 64)  # λ_d (r) and λ_b (d) per adapted layer
    assert by_run["vera"]["infer_merged_ms"] > 0 and by_run["adapter"]["infer_merged_ms"] is None  # nothing merges
    assert by_run["vera"]["file"].endswith("adapter_model.safetensors")
    assert by_run["adapter"]["file"].endswith("alternative_model.safetensors")
    base_ms, merged, _, _ = format_table(rows).splitlines()[-1].split()[-4:]  # "0.93  n/a  0.96 (+3%)"
    assert (base_ms, merged) == (f"{by_run['adapter']['infer_base_ms']:.2f}", "n/a")
    saved = json.loads((tmp_path / COMPARE_FILE).read_text())["settings"]["methods"]
    dora = get_method("dora").check({"target_modules": list(targets)})
    assert saved["dora"] == {"settings": {k: v for k, v in dora.items() if k != "r"}, "lr": 0.05}  # ranks give r


@pytest.mark.parametrize("methods, match", [
    ({"dora": {"r": 2}}, "dora's r is compare's ranks"),
    ({"vera": {"target_modules": ["q_proj"]}}, "vera's target_modules is compare's targets"),
    ({"lora-plus": {"d_initial": 0.1}}, "d_initial does not apply to method 'lora-plus'"),
    (["subspace"], "`minilora intrinsic`"),
])
def test_a_setting_compare_owns_or_a_foreign_one_is_refused(base, methods, match):
    with pytest.raises(ValueError, match=match):
        compare(get_task("reverse-shift", n_eval=5), base=base, steps=1, methods=methods)
