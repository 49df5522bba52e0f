"""The sweep runner: a list of independent run specs, run by any ``concurrent.futures`` executor, resumable.

A *spec* is a plain JSON-able dict that describes one run completely (task, method, rank, seed, steps, ...);
``run_one(spec)`` is a module-level function that runs it in the current process, seeds everything from the
spec, and returns a JSON-able dict.  Because a run depends on its spec alone, the results do not depend on
which worker ran it or in what order, so ``jobs=1`` and ``jobs=8`` give the same numbers.

    specs ──► already in out_dir/runs/<key>.json? ──yes──► load it
                         │ no
                         ▼
              executor.submit(run_one, spec) ──as_completed──► write out_dir/runs/<key>.json at once

``jobs=1`` runs everything in this process (no pickling: the easiest to debug); ``jobs=N`` starts a process
pool of N workers, each pinned to one BLAS thread (N workers × 1 thread = N cores, never N × cores); any other
executor, such as a Dask ``distributed`` client's ``client.get_executor()``, can be passed instead.  The runner
only submits and collects: it never schedules by itself.
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from tqdm.auto import tqdm

from minilora.io import atomic_write_json

__all__ = ["SweepError", "SweepValueError", "run_sweep", "spec_key"]

RUNS_FOLDER = "runs"
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
_worker_limits: Any = None  # the worker's threadpoolctl limiter, kept alive for the worker's lifetime


class SweepError(RuntimeError):
    """A run of the sweep raised; ``spec`` and ``key`` name it, the run's own exception is the ``__cause__``."""

    def __init__(self, message: str, spec: Mapping[str, Any], key: str) -> None:
        super().__init__(message)
        self.spec, self.key = dict(spec), key


class SweepValueError(SweepError, ValueError):
    """A run raised a ValueError (a bad setting, a diverged run): still a ValueError, so a command that reports
    ValueErrors in one line reports this one too."""


def spec_key(spec: Mapping[str, Any]) -> str:
    """A stable short id of a run spec: the first 12 hex digits of sha1(json.dumps(spec, sort_keys=True)).

    Key order does not matter ({"a": 1, "b": 2} and {"b": 2, "a": 1} have one key); any change of a value does.
    """
    text = json.dumps(_plain(spec, "spec"), sort_keys=True)
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


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
    os.environ["TQDM_DISABLE"] = "1"
    # tqdm reads TQDM_DISABLE once, when it is imported, and a forked worker has imported it already:
    # make every bar in this worker process silent by default instead
    import tqdm.std
    from threadpoolctl import threadpool_limits

    tqdm.std.tqdm.__init__ = functools.partialmethod(tqdm.std.tqdm.__init__, disable=True)
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
              out_dir: str | Path | None = None, jobs: int | None = None, executor: cf.Executor | None = None,
              desc: str = "sweep") -> list[dict[str, Any]]:
    """Run ``run_one(spec)`` for every spec; return ``[{"spec", "result", "key"}, ...]`` in the order of ``specs``.

    ``key = spec_key(spec)``.  With ``out_dir`` each finished run is written at once to
    ``out_dir/runs/<key>.json`` ({"key", "spec", "result"}); a rerun loads those and runs only the missing
    specs.  ``jobs=1`` runs in this process; ``jobs=N`` (default ``os.cpu_count()``) in a pool of N worker
    processes with one BLAS thread each; ``executor`` (instead of ``jobs``) is any ``concurrent.futures.Executor``.
    Results are JSON round-tripped, so a fresh result equals one loaded from disk.  Identical specs run once.

    If a run raises, nothing more is started, the runs already running finish and are saved, and a
    ``SweepError`` naming the spec is raised (the run's exception is its ``__cause__``).
    """
    if jobs is not None and executor is not None:
        raise ValueError(f"run_sweep: pass jobs (got {jobs!r}) or executor, not both")
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise ValueError(f"run_sweep: jobs must be a positive integer, got {jobs!r}")
    plain = [_plain(spec, "spec") for spec in specs]
    keys = [spec_key(spec) for spec in plain]
    unique = dict(zip(keys, plain))
    folder = None if out_dir is None else Path(out_dir) / RUNS_FOLDER
    results = {} if folder is None else _load_finished(folder, unique)
    todo = [key for key in unique if key not in results]

    def finish(key: str, result: Any) -> None:
        result = _plain(result, f"result of run {key}")
        if folder is not None:
            atomic_write_json(folder / f"{key}.json", {"key": key, "spec": unique[key], "result": result})
        results[key] = result
        bar.update(1)

    with tqdm(total=len(unique), initial=len(results), desc=desc) as bar:
        if todo and executor is None and (jobs or os.cpu_count() or 1) == 1:
            for key in todo:
                try:
                    result = run_one(unique[key])
                except Exception as err:
                    raise _failure(desc, unique[key], key, err, 0) from err
                finish(key, result)
        elif todo:
            own = executor is None
            pool = cf.ProcessPoolExecutor(jobs or os.cpu_count(), initializer=_pin_one_thread) if own else executor
            try:
                _run_parallel(pool, run_one, todo, unique, finish, desc)
            finally:
                if own:
                    pool.shutdown(wait=True, cancel_futures=True)
    return [{"spec": spec, "result": results[key], "key": key} for spec, key in zip(plain, keys)]


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
