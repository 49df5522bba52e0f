"""Tests for minilora.io: atomic writes and safetensors round trips with clear errors on bad files."""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest

from minilora import io


def _listing(folder):
    return sorted(p.name for p in folder.iterdir())


# -- atomic writes -------------------------------------------------------------------------------


def test_atomic_write_creates_parents_and_overwrites(tmp_path):
    target = tmp_path / "a" / "b" / "file.bin"
    io.atomic_write_bytes(target, b"first")
    assert target.read_bytes() == b"first"
    io.atomic_write_bytes(str(target), b"second")
    assert target.read_bytes() == b"second"
    assert _listing(target.parent) == ["file.bin"]  # no temporary files left


def test_atomic_write_json(tmp_path):
    target = tmp_path / "config.json"
    io.atomic_write_json(target, {"r": 4, "targets": ["q_proj", "v_proj"]})
    assert json.loads(target.read_text()) == {"r": 4, "targets": ["q_proj", "v_proj"]}
    assert target.read_text().endswith("\n")


class _HalfWriter:
    """A file whose write() stores half the bytes and then fails, like a full disk."""

    def __init__(self, f):
        self._f = f

    def write(self, data):
        self._f.write(data[: len(data) // 2])
        self._f.flush()
        raise OSError(28, "No space left on device")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()

    def __getattr__(self, name):
        return getattr(self._f, name)


@pytest.mark.parametrize("failure", ["write", "fsync", "replace", "interrupt"])
def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch, failure):
    target = tmp_path / "model.safetensors"
    target.write_bytes(b"the good old checkpoint")
    real_fdopen = os.fdopen

    def boom(*args, **kwargs):
        raise KeyboardInterrupt if failure == "interrupt" else OSError("simulated failure")

    if failure == "write":
        monkeypatch.setattr(os, "fdopen", lambda *a, **k: _HalfWriter(real_fdopen(*a, **k)))
    elif failure in ("fsync", "interrupt"):
        monkeypatch.setattr(os, "fsync", boom)
    else:
        monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(KeyboardInterrupt if failure == "interrupt" else OSError):
        io.atomic_write_bytes(target, b"new content that never fully lands" * 100)
    assert target.read_bytes() == b"the good old checkpoint"
    assert _listing(tmp_path) == ["model.safetensors"]


def test_failed_first_write_creates_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(OSError("simulated")))
    with pytest.raises(OSError):
        io.save_arrays(tmp_path / "new.safetensors", {"w": np.ones(3)})
    assert _listing(tmp_path) == []


def test_written_files_get_normal_permissions(tmp_path):
    plain = tmp_path / "plain"
    plain.write_bytes(b"x")  # what open() would give under the current umask
    atomic = tmp_path / "atomic"
    io.atomic_write_bytes(atomic, b"x")
    assert stat.S_IMODE(atomic.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)


# -- safetensors round trips ---------------------------------------------------------------------


def test_save_load_round_trip_with_metadata(tmp_path):
    rng = np.random.default_rng(0)
    square = rng.standard_normal((4, 3)).astype(np.float32)
    arrays = {
        "f32": square,
        "f64": rng.standard_normal((2, 2, 5)),
        "i64": np.arange(7, dtype=np.int64),
        "i32": np.array([[1, -2]], dtype=np.int32),
        "transposed": square.T,                 # non-contiguous view
        "strided": np.arange(20.0)[::3],       # non-contiguous slice
        "scalar": np.asarray(5, dtype=np.int64),  # 0-d stays 0-d
        "empty": np.zeros((0, 3), dtype=np.float32),
    }
    assert not arrays["transposed"].flags.c_contiguous
    meta = {"format": "x", "step": 3, "nested": {"lr": 1e-3, "names": ["a", "b"]}}
    path = tmp_path / "arrays.safetensors"
    io.save_arrays(path, arrays, meta)
    loaded, loaded_meta = io.load_arrays(path)
    assert loaded_meta == meta
    assert set(loaded) == set(arrays)
    for k, a in arrays.items():
        assert loaded[k].dtype == a.dtype and loaded[k].shape == a.shape, k
        np.testing.assert_array_equal(loaded[k], a)
    assert _listing(tmp_path) == ["arrays.safetensors"]


def test_save_without_metadata_loads_empty_metadata(tmp_path):
    io.save_arrays(tmp_path / "a.safetensors", {"w": np.ones(2)})
    arrays, meta = io.load_arrays(tmp_path / "a.safetensors")
    assert meta == {} and list(arrays) == ["w"]


def test_a_foreign_safetensors_file_loads_with_empty_metadata(tmp_path):
    from safetensors.numpy import save_file

    save_file({"w": np.ones(2, np.float32)}, str(tmp_path / "foreign.safetensors"))
    arrays, meta = io.load_arrays(tmp_path / "foreign.safetensors")
    assert meta == {}
    np.testing.assert_array_equal(arrays["w"], np.ones(2, np.float32))


# -- bad files -----------------------------------------------------------------------------------


def test_missing_file_is_a_value_error_naming_it(tmp_path):
    path = tmp_path / "nothing-here.safetensors"
    with pytest.raises(ValueError, match="nothing-here.safetensors"):
        io.load_arrays(path)
    with pytest.raises(ValueError, match="no such file"):
        io.load_arrays(tmp_path)  # a folder is not a file either


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "bad-json-metadata"])
def test_corrupt_file_is_a_value_error_naming_it(tmp_path, damage):
    path = tmp_path / "broken.safetensors"
    io.save_arrays(path, {"w": np.arange(100, dtype=np.float32)}, {"step": 1})
    good = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(good[: len(good) - 50])
    elif damage == "garbage":
        path.write_bytes(b"this is not a safetensors file, just some text" * 3)
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        from safetensors.numpy import save_file

        save_file({"w": np.ones(2, np.float32)}, str(path), metadata={"minilora": "{not json"})
    with pytest.raises(ValueError, match=r"cannot read .*broken\.safetensors"):
        io.load_arrays(path)


# -- output folders and what killed writes leave behind ------------------------------------------


def test_temporary_names_match_the_pattern_that_cleaning_removes(tmp_path):
    name = io.temporary_name(tmp_path / "checkpoint.safetensors").name
    assert name.startswith(".checkpoint.safetensors.") and io.TEMP_PATTERN.match(name)


def test_clean_temporaries_removes_only_minilora_temporaries(tmp_path):
    killed = io.temporary_name(tmp_path / "history.json")
    killed.write_text("{half")
    keep = [".notes.tmp", "data.tmp", ".history.json.XYZ.tmp", ".a.0123456789abc.tmp", "history.json"]
    for name in keep:
        (tmp_path / name).write_text("x")
    (tmp_path / ".dir.0123456789ab.tmp").mkdir()  # a folder is never removed
    assert io.clean_temporaries(tmp_path) == [killed]
    assert _listing(tmp_path) == sorted([*keep, ".dir.0123456789ab.tmp"])
    assert io.clean_temporaries(tmp_path / "missing") == []


def test_check_writable_folder_creates_nothing_and_names_the_problem(tmp_path, monkeypatch):
    assert io.check_writable_folder(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert _listing(tmp_path) == []  # checked in the nearest existing parent, nothing left behind
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match=r"--out .*file is a file, not a folder"):
        io.check_writable_folder(tmp_path / "file", "--out")
    with pytest.raises(ValueError, match=r"is a file, not a folder \(.*file is a file\)"):
        io.check_writable_folder(tmp_path / "file" / "below")

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "open", refuse)  # as a read-only folder would (the tests may run as root)
    with pytest.raises(ValueError, match="output folder .* is not writable: Permission denied"):
        io.check_writable_folder(tmp_path)


def test_load_metadata_reads_no_arrays(tmp_path):
    path = tmp_path / "a.safetensors"
    io.save_arrays(path, {"w": np.ones(3)}, {"step": 7})
    assert io.load_metadata(path) == {"step": 7}
    with pytest.raises(ValueError, match="no such file"):
        io.load_metadata(tmp_path / "b.safetensors")
    path.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="cannot read"):
        io.load_metadata(path)
