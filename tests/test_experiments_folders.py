"""One owner per run folder: an OS lock naming its holder, released by the kernel when the holder dies."""

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from minilora.experiments.folders import (
    LOCK_FILE,
    FolderBusy,
    FolderLock,
    prepare_run_folder,
    run_folder,
)
from minilora.experiments.sweep import run_sweep

HOLD = ("import sys, time; from minilora.experiments.folders import FolderLock; "
        "FolderLock(sys.argv[1]).acquire(); print('locked', flush=True); time.sleep(60)")


def _holder(path):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_live_holder_is_named_and_a_killed_one_never_blocks(tmp_path):
    lock = tmp_path / "run" / LOCK_FILE
    proc = _holder(lock)
    try:
        with pytest.raises(FolderBusy, match=f"in use by process {proc.pid}") as info:
            FolderLock(lock).acquire()
        assert info.value.pid == proc.pid
        with pytest.raises(ValueError, match=f"process {proc.pid}"), run_folder(tmp_path / "run"):
            pass
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with run_folder(tmp_path / "run") as folder:  # the kernel released the dead process's lock
        assert folder == tmp_path / "run" and lock.read_text().strip() == str(os.getpid())


def test_a_holder_that_has_not_written_its_pid_yet_is_still_named(tmp_path):
    import fcntl

    lock = tmp_path / "run" / LOCK_FILE
    lock.parent.mkdir()
    fd = os.open(lock, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # a holder between taking the lock and writing its pid
    threading.Timer(0.01, lambda: os.pwrite(fd, b"4242\n", 0)).start()
    try:
        with pytest.raises(FolderBusy, match="in use by process 4242") as info:
            FolderLock(lock).acquire()
        assert info.value.pid == 4242
    finally:
        os.close(fd)


def test_two_owners_started_together_one_wins(tmp_path):
    outcomes = []
    barrier = threading.Barrier(2)

    def start():
        barrier.wait()
        try:
            with run_folder(tmp_path / "new"):
                time.sleep(0.3)
            outcomes.append("ran")
        except FolderBusy:
            outcomes.append("refused")

    threads = [threading.Thread(target=start) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ran", "refused"]


def test_a_refused_new_folder_is_not_left_behind_and_resume_needs_a_checkpoint(tmp_path):
    with pytest.raises(ValueError, match="nothing to resume"), run_folder(tmp_path / "new", resume=True):
        pass
    assert not (tmp_path / "new").exists()
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "run.json").write_text('{"kind": "finetune", "status": "running", "steps_done": 0, '
                                              '"train_config": {"steps": 9}}')
    with pytest.raises(ValueError, match=r"stopped \(its process died\) at step 0 of 9; --overwrite") as info:
        prepare_run_folder(tmp_path / "old")
    assert "--resume" not in str(info.value)  # no checkpoint: resuming would fail, so it is not suggested


def _slow(spec):
    time.sleep(0.2)
    return {"x": spec["x"]}


def test_a_cache_entry_being_computed_elsewhere_is_waited_for_not_recomputed(tmp_path):
    from minilora.experiments.spec import json_key

    key = json_key({"x": 1})
    lock = FolderLock(tmp_path / ".locks" / f"{key}.lock").acquire()  # "another sweep" computes x = 1
    calls = []

    def finish_elsewhere():
        time.sleep(0.3)
        from minilora.experiments.results import write_result

        write_result(tmp_path / "runs" / f"{key}.json", {"key": key, "spec": {"x": 1}, "result": {"x": "theirs"}})
        lock.release()

    threading.Thread(target=finish_elsewhere).start()
    rows = run_sweep([{"x": 0}, {"x": 1}], lambda s: calls.append(s) or _slow(s), runs=tmp_path)
    assert calls == [{"x": 0}] and rows[1]["result"] == {"x": "theirs"}
