"""The sweep runner: a list of independent run specs, run by any ``concurrent.futures`` executor, resumable.

A *spec* is a plain JSON-able dict that describes one run completely (task, method, rank, seed, steps, ...);
``run_one(spec)`` is a module-level function that runs it in the current process, seeds everything from the
spec, and returns a JSON-able dict.  Because a run depends on its spec alone, the results do not depend on
which worker ran it or in what order, so ``jobs=1`` and ``jobs=8`` give the same numbers.

    specs ──► already in runs/runs/<key>.json? ──yes──► load it
                         │ no: own its entry (lock <key>.lock; another sweep computing it: wait, then load)
                         ▼
              executor.submit(run_one, spec) ──as_completed──► write runs/runs/<key>.json at once

``jobs=1`` runs everything in this process (no pickling: the easiest to debug); ``jobs=N`` starts a process
pool of N workers, each pinned to one BLAS thread (N workers × 1 thread = N cores, never N × cores); any other
executor, such as a Dask ``distributed`` client's ``client.get_executor()``, can be passed instead.  The runner
only submits and collects: it never schedules by itself.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import os
import signal
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from minilora.experiments.folders import FolderBusy, FolderLock, check_writable
from minilora.experiments.results import write_result
from minilora.experiments.spec import json_key
from minilora.progress import progress
from minilora.train_state import StopSignals

__all__ = ["SweepError", "SweepInterrupted", "SweepValueError", "run_sweep", "spec_key"]

RUNS_FOLDER = "runs"
LOCKS_FOLDER = ".locks"  # beside runs/: one lock per entry being computed (<key>.lock, holding the owner's pid)
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
_worker_limits: Any = None  # the worker's threadpoolctl limiter, kept alive for the worker's lifetime


class SweepError(RuntimeError):
    """A run of the sweep raised; ``spec`` and ``key`` name it, the run's own exception is the ``__cause__``."""

    def __init__(self, message: str, spec: Mapping[str, Any], key: str) -> None:
        super().__init__(message)
        self.spec, self.key = dict(spec), key


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a sweep: ``finished`` of its ``total`` runs are done (cached in ``runs`` when it is not None);
    running the same sweep again loads them and computes only the rest."""

    def __init__(self, finished: int, total: int, runs: Path | None, signum: int = signal.SIGINT) -> None:
        kept = f"; they are cached in {runs}" if runs is not None else " (no run cache: nothing was kept)"
        super().__init__(f"sweep interrupted by {signal.Signals(signum).name}: {finished} of {total} runs "
                         f"finished{kept}")
        self.finished, self.total, self.runs, self.signal = finished, total, runs, int(signum)


class SweepValueError(SweepError, ValueError):
    """A run raised a ValueError (a bad setting, a diverged run): still a ValueError, so a command that reports
    ValueErrors in one line reports this one too."""


def spec_key(spec: Mapping[str, Any]) -> str:
    """A stable short id of a run spec: the first 12 hex digits of sha1(json.dumps(spec, sort_keys=True)).

    Key order does not matter ({"a": 1, "b": 2} and {"b": 2, "a": 1} have one key); any change of a value does.
    """
    return json_key(_plain(spec, "spec"))


def _plain(obj: Mapping[str, Any], what: str) -> dict[str, Any]:
    """``obj`` as plain JSON data (tuples become lists), as it would read back from a file; TypeError otherwise."""
    if not isinstance(obj, Mapping):
        raise TypeError(f"sweep: a {what} must be a dict, got {type(obj).__name__}: {obj!r}")
    try:
        return json.loads(json.dumps(obj, sort_keys=True))
    except (TypeError, ValueError) as err:
        raise TypeError(f"sweep: a {what} must be JSON-able ({err}); got {obj!r}") from None


def _pin_one_thread() -> None:
    """Worker initializer: one BLAS/OpenMP thread and no progress bars in this process."""
    global _worker_limits
    for name in _THREAD_VARS:
        os.environ[name] = "1"
    os.environ["TQDM_DISABLE"] = "1"  # minilora.progress reads it at every bar, also in a forked worker
    from threadpoolctl import threadpool_limits

    _worker_limits = threadpool_limits(limits=1)


def _load_finished(folder: Path, specs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """key → result of every spec whose run file exists in ``folder``; a file holding another spec is an error."""
    done = {}
    for key, spec in specs.items():
        path = folder / f"{key}.json"
        if not path.exists():
            continue
        saved = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(saved, dict) or saved.get("spec") != spec or "result" not in saved:
            raise ValueError(f"sweep: {path} does not hold the result of spec {spec!r} (edited file or key "
                             f"collision); delete it to rerun that spec")
        done[key] = saved["result"]
    return done


def _failure(desc: str, spec: dict[str, Any], key: str, err: BaseException, others: int) -> SweepError:
    """One clear error naming the failed spec (and how many other runs failed with it)."""
    more = f" ({others} other run(s) failed too)" if others else ""
    kind = SweepValueError if isinstance(err, ValueError) else SweepError
    return kind(f"sweep {desc!r}: run {key} {json.dumps(spec, sort_keys=True)} failed with "
                      f"{type(err).__name__}: {err}{more}; finished runs are saved, rerun to resume", spec, key)


def run_sweep(specs: Sequence[Mapping[str, Any]], run_one: Callable[[Mapping[str, Any]], dict],
              runs: str | Path | None = None, jobs: int = 1, executor: cf.Executor | None = None,
              desc: str = "sweep") -> list[dict[str, Any]]:
    """Run ``run_one(spec)`` for every spec; return ``[{"spec", "result", "key"}, ...]`` in the order of ``specs``.

    ``key = spec_key(spec)``.  With ``runs`` (the run cache) each finished run is written at once to
    ``runs/runs/<key>.json`` ({"key", "spec", "result"}); a rerun loads those and runs only the missing
    specs.  Each entry is owned while it runs (a lock ``runs/.locks/<key>.lock``): a second sweep on the same cache
    waits for a run another one is computing and loads its result instead of computing it twice.  ``jobs=1`` runs
    in this process; ``jobs=N`` in a pool of N worker processes with one BLAS thread each; ``executor`` (instead of
    ``jobs``) is any ``concurrent.futures.Executor``.  Results are JSON round-tripped, so a fresh result equals one
    loaded from disk.  Identical specs run once.

    If a run raises, nothing more is started, the runs already running finish and are saved, and a
    ``SweepError`` naming the spec is raised (the run's exception is its ``__cause__``).  Ctrl-C raises
    ``SweepInterrupted`` saying how many runs finished (and are cached).
    """
    if executor is not None and jobs != 1:
        raise ValueError(f"run_sweep: pass jobs (got {jobs!r}) or executor, not both")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"run_sweep: jobs must be a positive integer, got {jobs!r}")
    plain = [_plain(spec, "spec") for spec in specs]
    keys = [spec_key(spec) for spec in plain]
    unique = dict(zip(keys, plain))
    folder = None if runs is None else Path(runs) / RUNS_FOLDER
    if folder is not None:
        check_writable(folder, "run cache")
    results = {} if folder is None else _load_finished(folder, unique)
    locks: dict[str, FolderLock] = {}

    def finish(key: str, result: Any) -> None:
        result = _plain(result, f"result of run {key}")
        if folder is not None:
            write_result(folder / f"{key}.json", {"key": key, "spec": unique[key], "result": result})
        results[key] = result
        bar.update(1)
        if key in locks:
            locks.pop(key).release()

    # SIGTERM and SIGHUP stop a sweep as Ctrl-C does, also while this process only waits for its workers
    with StopSignals() as stop, progress(total=len(unique), initial=len(results), desc=desc) as bar:
        try:
            todo = [key for key in unique if key not in results]
            while todo:
                mine, busy = _claim(None if runs is None else Path(runs) / LOCKS_FOLDER, todo, locks)
                results.update(_load_finished(folder, {k: unique[k] for k in mine}) if folder is not None else {})
                for key in [k for k in mine if k in results]:
                    locks.pop(key).release()  # another sweep finished it while we waited
                    bar.update(1)
                _run_owned([k for k in mine if k not in results], unique, run_one, finish, jobs, executor, desc)
                for key in busy:  # computed by another sweep on this cache: wait for it, then load its result
                    FolderLock(Path(runs) / LOCKS_FOLDER / f"{key}.lock").acquire(wait=True).release()  # type: ignore[arg-type]
                results.update(_load_finished(folder, {k: unique[k] for k in busy}) if busy else {})
                bar.update(sum(k in results for k in busy))
                todo = [key for key in busy if key not in results]
        except KeyboardInterrupt:
            raise SweepInterrupted(len(results), len(unique), None if runs is None else Path(runs),
                                   stop.received or signal.SIGINT) from None
        finally:
            for lock in locks.values():
                lock.release()
    return [{"spec": spec, "result": results[key], "key": key} for spec, key in zip(plain, keys)]


def _claim(folder: Path | None, keys: list[str], locks: dict[str, FolderLock]) -> tuple[list[str], list[str]]:
    """(keys this sweep now owns, keys another process is computing); ``folder`` holds the entries' locks (without
    a cache every key is ours)."""
    if folder is None:
        return keys, []
    mine, busy = [], []
    for key in keys:
        lock = FolderLock(folder / f"{key}.lock", "run cache entry")
        try:
            locks[key] = lock.acquire()
            mine.append(key)
        except FolderBusy:
            busy.append(key)
    return mine, busy


def _run_owned(todo: list[str], unique: dict[str, dict[str, Any]], run_one: Callable[[Mapping[str, Any]], dict],
               finish: Callable[[str, Any], None], jobs: int, executor: cf.Executor | None, desc: str) -> None:
    """Run the specs of ``todo`` in this process (``jobs=1``), in a pool of ``jobs`` processes, or on ``executor``."""
    if not todo:
        return
    if executor is None and jobs == 1:
        for key in todo:
            try:
                result = run_one(unique[key])
            except Exception as err:
                raise _failure(desc, unique[key], key, err, 0) from err
            finish(key, result)
        return
    own = executor is None
    pool = cf.ProcessPoolExecutor(jobs, initializer=_pin_one_thread) if own else executor
    try:
        _run_parallel(pool, run_one, todo, unique, finish, desc)
    except KeyboardInterrupt:
        if own:  # a stop: the workers' unfinished runs are lost anyway, so they stop now rather than run on
            _stop_workers(pool)
        raise
    finally:
        if own:
            pool.shutdown(wait=True, cancel_futures=True)


def _stop_workers(pool: cf.ProcessPoolExecutor) -> None:
    """Kill a process pool's workers (Ctrl-C from a terminal reaches them too, a ``kill`` of this process does not;
    SIGKILL, because a worker forked under the sweep's stop handlers would catch SIGTERM as a failed run and go on).
    ``kill_workers`` is public from Python 3.14; before it, the pool's own process table is used."""
    if hasattr(pool, "kill_workers"):
        pool.kill_workers()
        return
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.kill()


def _run_parallel(pool: cf.Executor, run_one: Callable[[Mapping[str, Any]], dict], todo: list[str],
                  unique: dict[str, dict[str, Any]], finish: Callable[[str, Any], None], desc: str) -> None:
    """Submit every missing run to ``pool`` and save each as it completes.

    On the first failure the runs that have not started are cancelled, those already running are
    waited for and saved, then the failure is raised.  On Ctrl-C the pending runs are cancelled at once.
    """
    futures = {pool.submit(run_one, unique[key]): key for key in todo}
    failed: list[tuple[str, BaseException]] = []
    try:
        for future in cf.as_completed(futures):
            if future.cancelled():
                continue
            err = future.exception()
            if err is None:
                finish(futures[future], future.result())
                continue
            if not failed:
                for other in futures:
                    other.cancel()  # only runs that have not started can be cancelled
            failed.append((futures[future], err))
    except BaseException:
        for future in futures:
            future.cancel()
        raise
    if failed:
        key, err = failed[0]
        raise _failure(desc, unique[key], key, err, len(failed) - 1) from err
