# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 08 · minilora on a GPU with CuPy
#
# [CuPy](https://cupy.dev) has NumPy's API on an NVIDIA GPU. minilora never calls `numpy` on tensor data directly: it
# asks `backend.get_xp(array)` for the module that owns the array — NumPy for a host array, CuPy for a GPU array — so
# the same engine, GPT and LoRA code runs on both (DeZero's `get_array_module` idea). Install the extra with
# `pip install -e ".[gpu]"`.
#
# **What you will learn**
# - how minilora finds a GPU (`ml.cuda_available()`), and the device switch (`device=`, `MINILORA_DEVICE`,
#   `ml.set_default_device`) — and what it does when there is no GPU;
# - creating tensors on a device, moving tensors and models, getting results back to the host, and what a model
#   costs in device memory;
# - that the same seed gives the same model on every device;
# - timing a GPU honestly (kernels run asynchronously: wait for the result), CPU against GPU for matmuls and for
#   training steps.
#
# **No GPU? Run it anyway.** On a machine without a GPU (or without CuPy) this notebook says so and runs every cell on
# the CPU; the device switch is taught the same way, and the timings show the CPU alone. The copy shipped in the
# repository was rendered on such a machine: its first output says so.
#
# **Read first:** [01 autograd from scratch](01_autograd_from_scratch.ipynb),
# [04 full fine-tuning vs LoRA](04_lora_side_by_side.ipynb).
#
# **Run time:** under a minute on one CPU core with `OMP_NUM_THREADS=1` (how `tutorials/render.py` runs it: the CPU
# timings below are single-thread); about 5 seconds with `MINILORA_FAST=1 OMP_NUM_THREADS=1` (smaller matrices, the
# tiny GPT instead of bench-small). More CPU threads make the CPU numbers larger.

# %%
import os
import time

import course
import numpy as np
from checks import check
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

import minilora as ml
from minilora import backend
from minilora.data import SKILL_TOKENIZER
from minilora.lora import LoraConfig, apply_lora
from minilora.models import GPT
from minilora.models.configs import model_config
from minilora.train import TrainConfig, make_optimizer, train_step

# %% [markdown]
# ## 1. Is there a GPU?
# `ml.cuda_available()` imports CuPy, asks for a device *and runs one tiny kernel* — `import cupy` succeeding
# proves nothing. The answer is cached.

# %%
HAS_GPU = ml.cuda_available()
DEVICE = "cuda" if HAS_GPU else "cpu"
print("devices here:", backend.available_devices())
print("GPU found: the cells below compare CPU and GPU." if HAS_GPU else
      "No GPU here (or no CuPy): every cell below runs on the CPU, and the timings show the CPU alone.")

# %% [markdown]
# ## 2. Tensors live on a device
# Creation functions take `device=` (default: `MINILORA_DEVICE`, else `"cpu"`). The tensor's data is a NumPy or a
# CuPy array, and `get_xp` names its module. `DEVICE` is `"cuda"` when a GPU was found, else `"cpu"`:

# %%
# drawn on the host, then moved: same numbers everywhere
x = ml.randn((3, 4), rng=0, device=DEVICE, requires_grad=True)
print(x.device, type(x.data).__module__, backend.get_xp(x.data).__name__)
(x * x).sum().backward()
print("the gradient lives there too:", backend.device_of(x.grad), x.grad.shape)

# %% [markdown]
# The switch for a whole program: `ml.set_default_device(...)` (or `MINILORA_DEVICE=cuda` in the environment) sends
# every new tensor and model there without a `device=` on each call.

# %%
ml.set_default_device(DEVICE)
print("default:", ml.default_device(), "  ml.zeros(2) lives on", ml.zeros(2).device)
ml.set_default_device(None)  # back to the environment's choice (cpu unless MINILORA_DEVICE says otherwise)

# %% [markdown]
# **Exercise 1 — asking for a GPU that is not there (predict, then run).** On a machine without a GPU, or without
# CuPy, what does `ml.zeros(2, device="cuda")` do?
#
# - `"a"`: it quietly runs on the CPU instead;
# - `"b"`: it raises an error at once that says what is missing and what to install;
# - `"c"`: it creates the tensor, and the first operation on it crashes;
# - `"d"`: it hangs, waiting for a GPU.
#
# Write your answer as a string, check it, then run the cell after the check (on a GPU machine it simply works).

# %%
without_gpu = None  # your prediction: "a", "b", "c" or "d"

# %%
check("without_gpu", without_gpu)

# %%
try:
    print("made on", ml.zeros(2, device="cuda").device)
except ValueError as err:
    print("ValueError:", err)

# %% [markdown]
# A silent fallback would make every "GPU" timing a CPU timing in disguise, so the switch refuses instead; the same
# goes for `MINILORA_DEVICE=cuda` and `ml.set_default_device("cuda")`.
#
# `x.numpy()` always returns a host NumPy array (a copy from the GPU); `x.to(device)` moves a tensor — gradients
# flow back across the move. An operation on two devices is an error that names both:

# %%
print(type(x.numpy()), x.to("cpu").device)
if HAS_GPU:
    try:
        x + ml.randn((3, 4), rng=1, device="cpu")
    except (TypeError, ValueError) as err:
        print(type(err).__name__, err)
else:
    print("(with a GPU, x + a CPU tensor raises an error naming both devices)")

# %% [markdown]
# ## 3. Moving a model
# `ml.pretrained(name, device=...)` loads straight onto a device; `model.to(device)` moves every parameter of a
# model you have. Weights are drawn and saved on the host, so the same seed gives the same model everywhere, and a
# GPU-trained checkpoint loads on a machine without CuPy.

# %%
cpu_model = ml.pretrained("skills")
model = ml.pretrained("skills", device=DEVICE)
print("model on", model.device, "; a LoRA model too:",
      apply_lora(ml.pretrained("skills").to(DEVICE), LoraConfig(r=4)).device)
ids = np.array([SKILL_TOKENIZER.encode("Rhello=")])                 # (1, 7) token ids, on the host
with ml.no_grad():
    difference = np.abs(cpu_model(ids)[0].numpy() - model(backend.to_device(ids, DEVICE))[0].numpy()).max()
print(f"max |logits on cpu − logits on {DEVICE}| = {difference:.2g}")
print("greedy outputs agree:",
      np.array_equal(cpu_model.generate(ids, 6, temperature=0), model.generate(ids, 6, temperature=0)))

# %% [markdown]
# **Exercise 2 — what a model costs on a device.** Moving a model copies all its weights. Write
# `weight_bytes(model)`: the bytes a model's weights occupy (every parameter, trainable or frozen, in whatever dtype
# it has). Check it, then run the cell after the check, which compares yours with three models.

# %%
def weight_bytes(model) -> int:
    raise NotImplementedError  # your code


# %%
check("weight_bytes", weight_bytes)

# %%
models = {"skills": ml.pretrained("skills"), "names": ml.pretrained("names"),
          "bench-small (random init)": GPT(model_config("bench-small", vocab_size=67), seed=0)}
rows = []
for name, m in models.items():
    try:
        yours = f"{weight_bytes(m) / 2**20:.2f}"
    except NotImplementedError:
        yours = "(write weight_bytes)"
    rows.append({"model": name, "parameters": f"{m.num_parameters():,}",
                 "MiB of weights": sum(int(p.data.nbytes) for p in m.parameters()) / 2**20, "yours": yours})
course.table(rows, digits=2)

# %% [markdown]
# **What these numbers say:** float32 weights take 4 bytes each, so even bench-small's 4.8 million parameters take
# about 18 MiB — nothing beside a GPU's memory. In training, the gradients and AdamW's two moments add up to three
# more copies of the *trainable* weights ([04](04_lora_side_by_side.ipynb)), and the activations come on top.
#
# ## 4. Timing matmuls
# A GPU kernel launch returns before the kernel finishes. A timer that stops right after `a @ b` measures the
# launch, not the work; copying one number of the result to the host waits for it.
#
# **Exercise 3 — how a matmul's time grows (predict, then run).** If a processor ran at a constant speed in FLOP/s,
# by what factor would the time of an $n \times n$ by $n \times n$ product grow when n doubles? Write one number,
# check it, then run the timings and compare with what the machine does.

# %%
matmul_time_ratio = None  # your prediction: one number

# %%
check("matmul_time_ratio", matmul_time_ratio)

# %%
def seconds_per_matmul(n, device, repeats):
    """Median wall time of an (n × n) @ (n × n) float32 product on ``device``, waiting for the result."""
    a, b = ml.randn((n, n), rng=0, device=device), ml.randn((n, n), rng=1, device=device)
    times = []
    for _ in range(repeats + 1):  # the first one warms up (allocations, kernel compilation)
        start = time.perf_counter()
        backend.to_host((a @ b).data[:1, :1])  # waits for the device
        times.append(time.perf_counter() - start)
    return float(np.median(times[1:]))


devices = ["cpu", "cuda"] if HAS_GPU else ["cpu"]
sizes = course.fast_or_full([64, 128, 256, 512], [64, 128, 256, 512, 1024, 2048])
seconds = {d: [seconds_per_matmul(n, d, repeats=5) for n in sizes] for d in devices}
gflops = {d: [2 * n**3 / s / 1e9 for n, s in zip(sizes, seconds[d])] for d in devices}
course.table([{"n": n, **{f"{d} ms": 1e3 * seconds[d][i] for d in devices},
               **{f"{d} GFLOP/s": gflops[d][i] for d in devices},
               **{f"{d} time / time at n/2": "–" if i == 0 else f"{seconds[d][i] / seconds[d][i - 1]:.1f}"
                  for d in devices}} for i, n in enumerate(sizes)], digits=2)

# %% [markdown]
# **What these numbers say:**

# %%
for d in devices:
    ratios = [seconds[d][i] / seconds[d][i - 1] for i in range(1, len(sizes))]
    best = int(np.argmax(gflops[d]))
    print(f"{d}: doubling n multiplied the time by {min(ratios):.1f} to {max(ratios):.1f}; the speed peaked at "
          f"{gflops[d][best]:.0f} GFLOP/s at n = {sizes[best]}.")
    if min(ratios) < 7:
        print("  A factor below 8: the speed rose with n (small products leave the hardware partly idle).")
    if max(ratios) > 9:
        print("  A factor above 8: the speed fell (matrices that no longer fit in a cache, or a busy machine).")

# %% [markdown]
# The same numbers as speed against size:

# %%
fig = Figure(figsize=(6.5, 3.4), layout="constrained")
ax = fig.add_subplot()
for d in devices:
    ax.plot(sizes, gflops[d], "o-", label=d)
ax.set_xscale("log", base=2)
if HAS_GPU:
    ax.set_yscale("log")  # GPU and CPU speeds differ by orders of magnitude
else:
    ax.set_ylim(0, 1.1 * max(gflops["cpu"]))
ax.set_xticks(sizes, [str(n) for n in sizes])
ax.xaxis.set_minor_locator(NullLocator())
ax.set_xlabel("n  (an n×n @ n×n float32 product)")
ax.set_ylabel("GFLOP/s")
ax.set_title("GPU and CPU" if HAS_GPU else "CPU only: no GPU on this machine")
ax.legend(loc="lower right")
course.show(fig)

# %% [markdown]
# **What this figure says:**

# %%
if HAS_GPU:
    faster = [n for n, c, g in zip(sizes, gflops["cpu"], gflops["cuda"]) if g > c]
    print(f"The GPU is faster from n = {min(faster)} on" if faster else "The CPU was faster at every size here",
          f"and reaches {max(gflops['cuda']) / max(gflops['cpu']):.0f}× the CPU's best speed.")
else:
    threads = os.environ.get("OMP_NUM_THREADS", "the default number of")
    print(f"The CPU with {threads} BLAS thread(s): {min(gflops['cpu']):.0f} to {max(gflops['cpu']):.0f} GFLOP/s. "
          "On a GPU, small products "
          "cannot keep it busy (each launch costs microseconds whatever the size), so look for the size where its "
          "curve crosses the CPU's: below it, a tiny model such as the skills GPT can train as fast on a CPU.")

# %% [markdown]
# ## 5. Timing training steps
# A whole training step (forward, backward, AdamW) of a larger GPT (bench-small: 6 layers, 256 wide; under
# `MINILORA_FAST=1` the tiny 64-wide one), full fine-tuning and LoRA, per device. `loss.item()` waits for the
# device, as `train` does for its timings.

# %%
def step_ms(device, method, size, steps):
    """Median milliseconds of a training step of a ``size`` GPT on ``device``, full or LoRA (r = 8 on q, v)."""
    model = GPT(model_config(size, vocab_size=67), seed=0, device=device)
    if method == "lora":
        apply_lora(model, LoraConfig(r=8, target_modules=("q_proj", "v_proj")))
    optimizer = make_optimizer(model, TrainConfig())
    rng = np.random.default_rng(0)
    times = []
    for _ in range(steps + 2):  # two warm-up steps
        tokens = backend.to_device(rng.integers(0, 67, size=(16, model.config.block_size + 1)), device)
        start = time.perf_counter()
        loss, _ = train_step(model, optimizer, tokens[:, :-1], ml.Tensor(tokens[:, 1:]), grad_clip=1.0)
        loss.item()
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times[2:]))


size = course.fast_or_full("tiny", "bench-small")
print(f"{size}: {model_config(size, vocab_size=67)}")
step_times = {(d, method): step_ms(d, method, size, steps=course.fast_or_full(3, 10))
              for d in devices for method in ("full", "lora")}
course.table([{"device": d, "method": method, "ms per step": ms} for (d, method), ms in step_times.items()], digits=1)

# %% [markdown]
# **What these numbers say:**

# %%
for d in devices:
    ratio = step_times[(d, "lora")] / step_times[(d, "full")]
    print(f"{d}: a LoRA step takes {ratio:.2f}× a full one"
          + (" — LoRA skips the frozen weights' gradients and their AdamW updates." if ratio < 0.95 else
             " — on this size the skipped work and the adapter's extra matmuls about cancel."))
if HAS_GPU:
    print(f"GPU over CPU, full fine-tuning: {step_times[('cpu', 'full')] / step_times[('cuda', 'full')]:.1f}× faster.")

# %% [markdown]
# ## Recap
# - One code path for two devices: `get_xp(array)` picks NumPy or CuPy; a tensor's device follows its data.
# - `device=`, `MINILORA_DEVICE` and `ml.set_default_device` choose the device; asking for a GPU that is not there
#   is an error at once, never a silent fallback.
# - Random numbers are drawn on the host and moved, so a seed gives the same weights on every device, and checkpoints
#   are written from host arrays.
# - A model's device memory is $\sum_p \text{size}_p \times \text{itemsize}_p$; training adds gradients and
#   optimizer state for the trainable part.
# - Time a GPU by waiting for the result; an $n \times n$ product is $2n^3$ operations, so a GPU pays off only when
#   the matrices are large enough to keep it busy.
#
# ## Questions
# 1. Why does minilora draw random numbers on the host and then move them, rather than drawing them on the GPU?
# 2. A timer around `a @ b` on a GPU reports 20 µs for n = 4096. What did it measure, and how do you fix it?
# 3. Why might the tiny skills model train no faster on a GPU than on a CPU, while bench-small gains from it?
# 4. Fine-tuning with LoRA on a GPU: which of weights, gradients, optimizer state and activations shrink compared
#    with full fine-tuning, and which do not?
#
# <details><summary>Answers, briefly</summary>
#
# 1. So that one seed gives bit-identical initial weights on every device (CuPy's generator draws different
#    numbers), and tests can compare CPU and GPU runs.
# 2. The kernel launch, not the product (kernels run asynchronously); wait for the result — copy one number of it
#    to the host, or synchronise the device — before stopping the timer.
# 3. Its matrices are 64 wide: each kernel launch costs more than its arithmetic, so the GPU idles; bench-small's
#    larger matrices keep the GPU's cores busy.
# 4. Gradients and optimizer state shrink to the adapters' size; the frozen weights stay on the device, and the
#    activations are kept just as in full fine-tuning.
#
# </details>
