"""Where a training step's time goes: per engine Function, beside the step's matmul limit.

    from minilora.bench.profile import profile_step, format_profile
    print(format_profile(profile_step("bench-small", "full")))

A training step of a NumPy engine is mostly matrix products, so it cannot be faster than the products
it needs, timed alone with NumPy on the same machine.  This module measures three things:

1. **the step**: the median wall time of ``steps`` training steps (forward, ``zero_grad``, backward,
   AdamW) after ``untimed_steps`` warm-up steps, the same step as ``bench/steps.py`` times;
2. **per Function**: as many steps again, each right after a plain one, with a timer around every engine
   ``Function``'s ``forward`` and ``backward`` (by class name), around ``Function.apply`` and ``Tensor.backward``
   (the graph's own bookkeeping: creating nodes, the backward walk, gradient accumulation) and around the optimizer's
   ``step``.  Each timer counts *exclusive* time (a timer inside another is subtracted from the outer one),
   so the rows never count a microsecond twice; "other" is the rest of the step (the Python of the model's
   modules, ``zero_grad``, ``loss.item()``).  With T_f the time inside row f over all timed steps and T the
   steps' total,  share_f = T_f / T  and  ms_f = share_f · median step (timers on);
3. **the matmul limit**: every matrix product of one step, (..., m, k) @ (..., k, n) in the forward and
   backward pass (the linears, the attention's per-head products, LoRA's adapters), recorded with its
   shapes and dtype, then each distinct shape timed alone with ``numpy.matmul`` on fresh C-ordered operands
   (median of at least ``repeats`` timings, taken between the steps, never twice in a row: a product repeated
   at once finds its operands in the cache, and on bench-tiny that alone made the limit about a fifth lower),
   times its count, summed, and per Function (the table's "its products alone"):

       limit = Σ_products  t(shape, dtype)          overhead = step − limit          ratio = step / limit

   Step and limit are also given in process CPU time (``time.process_time``), which leaves out the time the
   process waited for a core: on a busy shared machine that ratio is the steadier one.
4. **the libraries compared** (when PyTorch is installed and ``torch`` is True): after the steps, the same products
   timed with ``numpy.matmul`` and with ``torch.matmul`` (MKL on x86) by turns, as many times, one thread each,
   so both meet the same cache; torch limit = Σ count · t_torch, and NumPy's time over PyTorch's at the step's
   shapes = Σ count · t_numpy / torch limit, with t_numpy from these turns (not the limit's timings: PyTorch's
   products in between made NumPy's 5-20% slower on the development machine).  That factor is the BLAS libraries'
   speed at this step's shapes, a part of the step's ratio to the PyTorch twin (``bench/steps.py``) that no
   change to the engine can move.

How it works without changing the engine: a context manager replaces each Function subclass's
``forward`` / ``backward`` (and ``Function.apply``, ``Tensor.backward``, the optimizer's ``step``) by a
wrapper and puts the original objects back on exit.  The engine multiplies with the ``@`` operator on
raw arrays, which Python code cannot patch; so during the one recording step the wrapped methods see their
arrays as ``_Recorded`` views, an ``ndarray`` subclass whose ``__array_ufunc__`` notes every
``np.matmul`` (what ``@`` calls) before running it.  Arrays leave a Function as plain ndarrays again.
CPU (NumPy) only; BLAS threads come from the environment (``OPENBLAS_NUM_THREADS`` before NumPy loads).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import numpy as np

from minilora.backend import keep_freed_host_memory
from minilora.bench.steps import (
    ADAMW,
    BENCH_CONFIGS,
    METHODS,
    BenchConfig,
    load_torch_twin,
    make_batches,
    prepare_method,
)
from minilora.engine.tensor import Function, Tensor
from minilora.models import GPT
from minilora.optim import AdamW
from minilora.train import train_step

__all__ = ["ProductTimer", "format_profile", "profile_step", "profiling", "recording_matmuls"]

GRAPH_ROW = "graph (apply, backward walk)"
OPTIMIZER_ROW = "optimizer (AdamW.step)"
OTHER_ROW = "other"
_PASSES = ("forward", "backward")


# -- timers ---------------------------------------------------------------------------------------


class _Clock:
    """Exclusive wall time per label: a timed call nested in another is subtracted from the outer one."""

    def __init__(self) -> None:
        self.totals: dict[tuple[str, str], float] = defaultdict(float)
        self._children: list[float] = []  # time spent in nested timed calls, one slot per open call

    def timed(self, label: tuple[str, str], fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn`` with its exclusive time added to ``totals[label]`` (label = (row name, pass))."""
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            self._children.append(0.0)
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                self.totals[label] += elapsed - self._children.pop()
                if self._children:
                    self._children[-1] += elapsed
        return wrapper


def _function_classes() -> list[type]:
    """Every loaded subclass of ``Function`` (subclasses of subclasses too)."""
    found, todo = [], list(Function.__subclasses__())
    while todo:
        cls = todo.pop()
        if cls not in found:
            found.append(cls)
            todo.extend(cls.__subclasses__())
    return found


@contextlib.contextmanager
def _patched(replacements: list[tuple[type, str, Callable[[Callable[..., Any]], Any]]]) -> Iterator[None]:
    """Set ``cls.name = make(original function)`` for each (cls, name, make); on exit put back exactly what
    each class had (its own attribute object, or no own attribute when it inherited one)."""
    saved = [(cls, name, name in cls.__dict__, inspect.getattr_static(cls, name)) for cls, name, _ in replacements]
    try:
        for (cls, name, make), (_, _, _, original) in zip(replacements, saved):
            func = original.__func__ if isinstance(original, (staticmethod, classmethod)) else original
            setattr(cls, name, make(func))
        yield
    finally:
        for cls, name, own, original in saved:
            if own:
                setattr(cls, name, original)
            else:
                delattr(cls, name)


def _function_passes() -> list[tuple[type, str]]:
    """(Function subclass, "forward" | "backward") for every concrete pass of every loaded Function."""
    return [(cls, p) for cls in _function_classes() for p in _PASSES
            if getattr(cls, p) is not getattr(Function, p)]


@contextlib.contextmanager
def profiling(optimizer: Any) -> Iterator[_Clock]:
    """Inside: every Function's forward/backward, ``Function.apply``, ``Tensor.backward`` and
    ``type(optimizer).step`` add their exclusive time to the yielded clock's ``totals``; undone on exit."""
    clock = _Clock()
    replacements = [(cls, p, lambda f, lab=(cls.__name__, p): staticmethod(clock.timed(lab, f)))
                    for cls, p in _function_passes()]
    replacements += [(Function, "apply", lambda f: classmethod(clock.timed((GRAPH_ROW, "forward"), f))),
                     (Tensor, "backward", lambda f: clock.timed((GRAPH_ROW, "backward"), f)),
                     (type(optimizer), "step", lambda f: clock.timed((OPTIMIZER_ROW, "step"), f))]
    with _patched(replacements):
        yield clock


# -- recording the matrix products ----------------------------------------------------------------


class _Recorded(np.ndarray):
    """An ndarray view that notes each ``np.matmul`` it takes part in (``a @ b`` calls that ufunc) in
    ``_Recorded.sink`` (a list; None: not recording), then computes as a plain ndarray would."""

    sink: ClassVar[list[dict[str, Any]] | None] = None
    where: ClassVar[list[str]] = []  # the Function pass now running, innermost last

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        plain = [_plain(x) for x in inputs]
        out = kwargs.get("out")
        if out is not None:
            kwargs["out"] = tuple(_plain(o) for o in out)
        result = getattr(ufunc, method)(*plain, **kwargs)
        if ufunc is np.matmul and method == "__call__" and _Recorded.sink is not None:
            _Recorded.sink.append({"a_shape": tuple(plain[0].shape), "b_shape": tuple(plain[1].shape),
                                   "dtype": str(np.result_type(plain[0], plain[1])),
                                   "where": _Recorded.where[-1] if _Recorded.where else "outside a Function"})
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _viewed(result)


def _viewed(x: Any) -> Any:
    """ndarrays (also inside a tuple) as ``_Recorded`` views; anything else unchanged."""
    if isinstance(x, tuple):
        return tuple(_viewed(v) for v in x)
    return x.view(_Recorded) if isinstance(x, np.ndarray) else x


def _plain(x: Any) -> Any:
    """``_Recorded`` views (also inside a tuple) as plain ndarrays; anything else unchanged."""
    if isinstance(x, tuple):
        return tuple(_plain(v) for v in x)
    return x.view(np.ndarray) if isinstance(x, _Recorded) else x


def _recording(label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` run on ``_Recorded`` views of its array arguments, returning plain ndarrays, under ``label``."""
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _Recorded.where.append(label)
        try:
            result = fn(*(_viewed(a) for a in args), **{k: _viewed(v) for k, v in kwargs.items()})
        finally:
            _Recorded.where.pop()
        return _plain(result)
    return wrapper


@contextlib.contextmanager
def recording_matmuls() -> Iterator[list[dict[str, Any]]]:
    """Inside: every matrix product computed in a Function's forward or backward is appended to the yielded
    list as {a_shape, b_shape, dtype, where ("LinearFn.backward")}; the Functions are restored on exit."""
    products: list[dict[str, Any]] = []
    replacements = [(cls, p, lambda f, lab=f"{cls.__name__}.{p}": staticmethod(_recording(lab, f)))
                    for cls, p in _function_passes()]
    with _patched(replacements):
        _Recorded.sink = products
        try:
            yield products
        finally:
            _Recorded.sink = None
            _Recorded.where.clear()


def numpy_product(a: np.ndarray, b: np.ndarray) -> Callable[[], Any]:
    """A call that computes a @ b with ``numpy.matmul`` into a buffer made once."""
    out = np.matmul(a, b)  # warm-up; the output buffer
    return functools.partial(np.matmul, a, b, out=out)


class ProductTimer:
    """Times matrix products alone: for each distinct (a_shape, b_shape, dtype), fresh C-ordered random operands
    and an output buffer made once by ``product(a, b)`` (``numpy_product``, or the PyTorch twin's ``product``);
    each ``run(repeats)`` adds ``repeats`` timings per product, wall and process CPU seconds; ``medians()``
    summarises them."""

    def __init__(self, keys: list[tuple[tuple[int, ...], tuple[int, ...], str]],
                 product: Callable[[np.ndarray, np.ndarray], Callable[[], Any]] = numpy_product) -> None:
        rng = np.random.default_rng(0)
        self._products = {}
        for a_shape, b_shape, dtype in keys:
            a = rng.standard_normal(a_shape).astype(dtype)
            b = rng.standard_normal(b_shape).astype(dtype)
            self._products[(a_shape, b_shape, dtype)] = product(a, b)
        self._times: dict[Any, list[tuple[float, float]]] = {key: [] for key in self._products}

    def run(self, repeats: int) -> None:
        """Time every product ``repeats`` times, one after another: a product is never timed right after itself,
        so its operands are not left in the cache by its own previous run (as in a step, where other work
        comes between two products)."""
        for _ in range(repeats):
            for key, multiply in self._products.items():
                cpu_start, start = time.process_time(), time.perf_counter()
                multiply()
                self._times[key].append((time.perf_counter() - start, time.process_time() - cpu_start))

    def medians(self) -> dict[Any, tuple[float, float]]:
        """(median wall seconds, median CPU seconds) per product key."""
        return {key: (statistics.median(w for w, _ in t), statistics.median(c for _, c in t))
                for key, t in self._times.items()}


def _product_flops(a_shape: tuple[int, ...], b_shape: tuple[int, ...]) -> int:
    """2·m·k·n per matrix of a (..., m, k) @ (..., k, n) product, times the broadcast batch size."""
    m, k = (1, a_shape[0]) if len(a_shape) == 1 else a_shape[-2:]
    n = 1 if len(b_shape) == 1 else b_shape[-1]
    batch = int(np.prod(np.broadcast_shapes(a_shape[:-2], b_shape[:-2]), dtype=np.int64))
    return 2 * batch * m * k * n


# -- the profile ----------------------------------------------------------------------------------


def _bench(config: str | BenchConfig) -> BenchConfig:
    if isinstance(config, BenchConfig):
        return config
    if config not in BENCH_CONFIGS:
        raise ValueError(f"profile_step: unknown config {config!r}; expected one of {sorted(BENCH_CONFIGS)}")
    return BENCH_CONFIGS[config]


def _rows(totals: dict[tuple[str, str], float], total_s: float, step_ms: float) -> list[dict[str, Any]]:
    """One row per timed name, T_f / T of the step and that share of ``step_ms``; "other" is the rest."""
    scale = step_ms / total_s  # seconds over all timed steps -> ms per median step
    by_name: dict[str, dict[str, float]] = defaultdict(dict)
    for (name, part), seconds in totals.items():
        by_name[name][part] = seconds * scale
    rows = [{"name": name, "forward_ms": parts.get("forward"), "backward_ms": parts.get("backward"),
             "ms": sum(parts.values())} for name, parts in by_name.items()]
    rows.sort(key=lambda r: -r["ms"])
    rows.append({"name": OTHER_ROW, "forward_ms": None, "backward_ms": None,
                 "ms": step_ms - sum(r["ms"] for r in rows)})
    for row in rows:
        row["share"] = row["ms"] / step_ms
    return rows


def _library_pair(keys: list[tuple[tuple[int, ...], tuple[int, ...], str]], twin: Any,
                  repeats: int) -> dict[str, dict[Any, tuple[float, float]]]:
    """The products timed in NumPy and in PyTorch by turns, ``repeats`` passes each, so both meet the same cache:
    {"numpy": medians, "torch": medians}.  Kept apart from the limit, which is timed between the steps with no
    PyTorch work near it (PyTorch's products in between made NumPy's 5-20% slower on the development machine)."""
    threads = os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS")
    if threads:
        twin.set_threads(int(threads))  # as many threads as NumPy's BLAS
    timers = {"numpy": ProductTimer(keys), "torch": ProductTimer(keys, product=twin.product)}
    for _ in range(repeats):
        for timer in timers.values():
            timer.run(1)
    return {name: timer.medians() for name, timer in timers.items()}


def _matmul_rows(products: list[dict[str, Any]], seconds: dict[Any, tuple[float, float]],
                 pair: dict[str, dict[Any, tuple[float, float]]] | None) -> list[dict[str, Any]]:
    """The recorded products grouped by (where, shapes, dtype), with their (wall, CPU) ``seconds`` each and, when
    ``pair`` was timed (``_library_pair``), the wall time each of NumPy and of PyTorch timed by turns
    (``ms_each_beside_torch``, ``torch_ms_each``; else None)."""
    counts = Counter((p["where"], p["a_shape"], p["b_shape"], p["dtype"]) for p in products)
    rows = []
    for (where, a_shape, b_shape, dtype), count in counts.items():
        key = (a_shape, b_shape, dtype)
        each, cpu_each = seconds[key]
        rows.append({"where": where, "a_shape": list(a_shape), "b_shape": list(b_shape), "dtype": dtype,
                     "count": count, "ms_each": each * 1e3, "ms": count * each * 1e3, "cpu_ms": count * cpu_each * 1e3,
                     "gflops": _product_flops(a_shape, b_shape) / each / 1e9,
                     "ms_each_beside_torch": None if pair is None else pair["numpy"][key][0] * 1e3,
                     "torch_ms_each": None if pair is None else pair["torch"][key][0] * 1e3})
    rows.sort(key=lambda r: -r["ms"])
    return rows


def profile_step(config: str | BenchConfig = "bench-small", method: str = "full", steps: int = 10,
                 untimed_steps: int = 3, seed: int = 0, repeats: int = 20, torch: bool = True) -> dict[str, Any]:
    """Profile the bench's training step for one (config, method); the module docstring defines every number.

    Runs one step recording the matrix products, ``untimed_steps`` warm-up steps, then ``steps`` rounds of:
    one plain step, one step with the timers on, each product alone ``ceil(repeats / steps)`` times (so a slow
    spell of a shared machine hits the step and its limit alike); medians over the rounds.  Returns a JSON-plain dict:
    step_ms (median plain step), profiled_step_ms, rows (per Function: forward_ms, backward_ms, ms, share;
    then the graph, the optimizer and "other"; shares sum to 1), matmuls (per product: where, shapes, dtype,
    count, ms_each, ms, cpu_ms, gflops), matmul_count, matmul_limit_ms, overhead_ms = step_ms − matmul_limit_ms,
    ratio = step_ms / matmul_limit_ms, and in process CPU time step_cpu_ms, matmul_limit_cpu_ms, ratio_cpu; with
    ``torch`` and PyTorch installed also torch_matmul_limit_ms (the same products in PyTorch, timed by turns with
    NumPy's), limit_over_torch (NumPy's time over PyTorch's for them) and torch_cpu_capability (else None).
    """
    bench = _bench(config)
    if method not in METHODS:
        raise ValueError(f"profile_step: unknown method {method!r}; expected one of {sorted(METHODS)}")
    if steps < 1 or untimed_steps < 0 or repeats < 1:
        raise ValueError(f"profile_step: need steps >= 1, untimed_steps >= 0 and repeats >= 1, got steps={steps}, "
                         f"untimed_steps={untimed_steps}, repeats={repeats}")
    keep_freed_host_memory()  # as the bench and train() do
    model = prepare_method(GPT(bench.model, seed=seed), method)  # exactly as the bench prepares it
    optimizer = AdamW(model.parameters(), **ADAMW)
    batches = make_batches(bench.model, bench.batch_size, 1 + untimed_steps + 2 * steps, seed=seed)

    def step(i: int) -> tuple[float, float]:
        x, y = batches[i]
        cpu_start, start = time.process_time(), time.perf_counter()
        train_step(model, optimizer, x, y, grad_clip=0.0)  # no clipping, as in the bench
        return time.perf_counter() - start, time.process_time() - cpu_start

    with recording_matmuls() as products:
        step(0)
    per_round = -(-repeats // steps)  # ceil(repeats / steps)
    keys = sorted({(p["a_shape"], p["b_shape"], p["dtype"]) for p in products})
    timer = ProductTimer(keys)
    for i in range(1, 1 + untimed_steps):
        step(i)
    plain, profiled, totals = [], [], defaultdict(float)
    for i in range(1 + untimed_steps, len(batches), 2):
        plain.append(step(i))
        with profiling(optimizer) as clock:
            profiled.append(step(i + 1)[0])
        for key, seconds in clock.totals.items():
            totals[key] += seconds
        timer.run(per_round)
    twin = load_torch_twin() if torch else None
    pair = _library_pair(keys, twin, steps * per_round) if twin is not None else None

    step_ms, profiled_ms = 1e3 * statistics.median(t for t, _ in plain), 1e3 * statistics.median(profiled)
    step_cpu_ms = 1e3 * statistics.median(c for _, c in plain)
    matmuls = _matmul_rows(products, timer.medians(), pair)
    limit_ms, limit_cpu_ms = sum(r["ms"] for r in matmuls), sum(r["cpu_ms"] for r in matmuls)
    torch_limit_ms = limit_over_torch = None
    if pair is not None:
        torch_limit_ms = sum(r["count"] * r["torch_ms_each"] for r in matmuls)
        limit_over_torch = sum(r["count"] * r["ms_each_beside_torch"] for r in matmuls) / torch_limit_ms
    rows = _rows(totals, sum(profiled), profiled_ms)
    for row in rows:  # a Function's products alone, beside its time in the step
        row["products_ms"] = sum((m["ms"] for m in matmuls if m["where"].split(".")[0] == row["name"]), 0.0) or None
    return {"config": bench.name, "method": method, "batch_size": bench.batch_size, "seq_len": bench.model.block_size,
            "steps": steps, "untimed_steps": untimed_steps, "repeats": steps * per_round,
            "threads": os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS"),
            "step_ms": step_ms, "profiled_step_ms": profiled_ms,
            "rows": rows,
            "matmuls": matmuls, "matmul_count": len(products), "matmul_limit_ms": limit_ms,
            "overhead_ms": step_ms - limit_ms, "ratio": step_ms / limit_ms if limit_ms else None,
            "step_cpu_ms": step_cpu_ms, "matmul_limit_cpu_ms": limit_cpu_ms,
            "ratio_cpu": step_cpu_ms / limit_cpu_ms if limit_cpu_ms else None,
            "torch_matmul_limit_ms": torch_limit_ms,
            "limit_over_torch": limit_over_torch,
            "torch_cpu_capability": twin.environment()["torch_cpu_capability"] if twin is not None else None}


# -- the table ------------------------------------------------------------------------------------


def _table(head: tuple[str, ...], lines: list[tuple[str, ...]], left: int = 1) -> list[str]:
    """Aligned columns: the first ``left`` columns left-aligned, the rest right-aligned."""
    cells = [head, *lines]
    widths = [max(len(line[i]) for line in cells) for i in range(len(head))]
    return ["  ".join(c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths)))
            for line in cells]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def format_profile(result: dict[str, Any]) -> str:
    """``profile_step``'s result as text: the step against its matmul limit, where the time goes, the products."""
    r = result
    ratio, ratio_cpu = ("-" if v is None else f"{v:.2f}x" for v in (r["ratio"], r["ratio_cpu"]))
    setting = (f"{r['config']}, {r['method']}: {r['batch_size']} sequences x {r['seq_len']} tokens; median of "
               f"{r['steps']} steps after {r['untimed_steps']} untimed; BLAS threads {r['threads'] or 'default'}")
    summary = (f"step {r['step_ms']:.2f} ms   matmul limit {r['matmul_limit_ms']:.2f} ms ({r['matmul_count']} "
               f"products)   overhead {r['overhead_ms']:.2f} ms   ratio step / limit {ratio}")
    cpu = (f"in CPU time (steadier on a busy machine): step {r['step_cpu_ms']:.2f} ms   matmul limit "
           f"{r['matmul_limit_cpu_ms']:.2f} ms   ratio {ratio_cpu}")
    lines = [setting, summary, cpu]
    if r["torch_matmul_limit_ms"] is not None:
        lines.append(f"the same products in PyTorch ({r['torch_cpu_capability']} kernels), timed by turns with "
                     f"NumPy's: {r['torch_matmul_limit_ms']:.2f} ms; NumPy's take {r['limit_over_torch']:.2f}x as long")
    lines += ["",
             f"where the time goes (a step with timers on: {r['profiled_step_ms']:.2f} ms; exclusive time per row)"]
    rows = [(row["name"], _ms(row["forward_ms"]), _ms(row["backward_ms"]), _ms(row["ms"]), f"{100 * row['share']:.1f}%",
             _ms(row["products_ms"])) for row in r["rows"]]
    rows.append(("total", "", "", _ms(sum(row["ms"] for row in r["rows"])),
                 f"{100 * sum(row['share'] for row in r['rows']):.1f}%", _ms(r["matmul_limit_ms"])))
    lines += _table(("row", "forward ms", "backward ms", "ms/step", "share", "its products alone ms"), rows)
    lines.append("its products alone: the row's matrix products as the table below times them; the rest of the row's "
                 "time is its other work (softmax, masks, sums, copies); a row below its products ran them faster "
                 "inside the step than alone")
    lines += ["", (f"matrix products of one step, each timed alone (C-ordered operands, median of {r['repeats']} "
                   "timings taken between the steps)")]
    with_torch = r["torch_matmul_limit_ms"] is not None
    products = [(m["where"], "x".join(map(str, m["a_shape"])), "x".join(map(str, m["b_shape"])), m["dtype"],
                 str(m["count"]), f"{m['ms_each']:.3f}", f"{m['ms']:.2f}", f"{m['gflops']:.1f}",
                 *([f"{m['ms_each_beside_torch'] / m['torch_ms_each']:.2f}"] if with_torch else []))
                for m in r["matmuls"]]
    head = ("where", "a", "b", "dtype", "count", "ms each", "ms/step", "GFLOP/s", *(["/ torch"] if with_torch else []))
    lines += _table(head, products, left=4)
    return "\n".join(lines)
