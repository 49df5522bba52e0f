"""The result-file contract: one reader with one-line errors, one atomic writer."""

import pytest

from minilora.experiments.results import (
    intrinsic_file,
    png_name,
    read_result,
    write_result,
)


def test_read_result_names_missing_corrupt_and_other_files(tmp_path):
    good = write_result(tmp_path / "a.json", {"experiment": "compare", "rows": []})
    assert read_result(good, expected="compare", require=("rows",))["rows"] == []
    with pytest.raises(ValueError, match="no result file .*missing.json"):
        read_result(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="cannot read the result file"):
        read_result(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="holds the result of experiment 'compare', expected 'budget'"):
        read_result(good, expected="budget")
    with pytest.raises(ValueError, match="lacks 'settings'"):
        read_result(good, require=("settings",))


def test_write_result_turns_os_errors_into_one_line(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="cannot write .*file/r.json"):
        write_result(tmp_path / "file" / "r.json", {})


def test_a_full_disk_is_one_line_naming_the_result_not_a_temporary_file(tmp_path, monkeypatch):
    import errno
    import os

    import minilora.io

    def no_space(path, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), f"{path}.tmp-1234")

    monkeypatch.setattr(minilora.io, "atomic_write_json", no_space)
    with pytest.raises(ValueError) as info:
        write_result(tmp_path / "r.json", {})
    assert str(info.value) == f"cannot write {tmp_path / 'r.json'}: {os.strerror(errno.ENOSPC)}"


def test_names():
    assert intrinsic_file("budget") == "intrinsic-budget.json" and png_name("lora-budget.json") == "lora-budget.png"
