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
# CuPy has NumPy's API on an NVIDIA GPU. minilora never calls `numpy` on tensor data directly: it asks
# `backend.get_xp(array)` for the module that owns the array — NumPy for a host array, CuPy for a GPU array — so the
# same engine, GPT and LoRA code runs on both. Install the extra with `pip install -e ".[gpu]"`.
#
# **What you will learn**
# - how minilora finds a GPU (`ml.cuda_available()`), and the device switch (`device=`, `MINILORA_DEVICE`);
# - creating tensors on a device, moving tensors and models, and getting results back to the host;
# - that the same seed gives the same model on every device;
# - timing a GPU honestly (kernels run asynchronously: wait for the result), CPU against GPU for matmuls and for
#   training steps.
#
# On a machine without a GPU this notebook says so and runs the same cells on the CPU.
#
# **Read first:** `01_autograd_from_scratch`, `04_lora_side_by_side`. Runs in about a minute.

# %%
import time

import course
import numpy as np
from checks import check
from matplotlib.figure import Figure

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
# CuPy array, and `get_xp` names its module:

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
# ## 4. Timing matmuls
# A GPU kernel launch returns before the kernel finishes. A timer that stops right after `a @ b` measures the
# launch, not the work; copying one number of the result to the host waits for it.

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
gflops = {d: [2 * n**3 / seconds_per_matmul(n, d, repeats=5) / 1e9 for n in sizes] for d in devices}
for d in devices:
    print(f"{d:5s}", "  ".join(f"n={n}: {g:7.1f}" for n, g in zip(sizes, gflops[d])), "GFLOP/s")

# %%
fig = Figure(figsize=(6, 3.2))
ax = fig.add_subplot()
for d in devices:
    ax.loglog(sizes, gflops[d], "o-", label=d)
ax.set_xlabel("n  (an n×n @ n×n float32 product)")
ax.set_ylabel("GFLOP/s")
ax.set_title("GPU" if HAS_GPU else "CPU only: no GPU on this machine", fontsize=10)
ax.legend()
course.show(fig)

# %% [markdown]
# Small products cannot keep a GPU busy — the launch overhead dominates — which is why the tiny skills model trains
# about as fast on a CPU. The GPU pulls ahead as the matrices grow.
#
# ## 5. Timing training steps
# A whole training step (forward, backward, AdamW) of a larger GPT, full fine-tuning and LoRA, per device.
# `loss.item()` waits for the device, as `train` does for its timings.

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
for d in devices:
    for method in ("full", "lora"):
        print(f"  {d:5s} {method:5s} {step_ms(d, method, size, steps=course.fast_or_full(3, 10)):8.1f} ms per step")

# %% [markdown]
# ## Exercises
# Each exercise cell raises `NotImplementedError` until you fill it in; the cell after it checks your answer.
# Solutions: `tutorials/solutions/08_gpu_with_cupy.py` (try first!).
#
# **Exercise 1 — what a model costs on a device.** Return the number of bytes a model's weights occupy
# (every parameter, trainable or frozen).

# %%
def weight_bytes(model) -> int:
    raise NotImplementedError  # your code


# %%
check("weight_bytes", weight_bytes)

# %% [markdown]
# **Exercise 2 — FLOP/s.** An (n × n) @ (n × n) product took `seconds`. Return its speed in GFLOP/s (10⁹
# floating-point operations per second). Section 4 used the formula: work it out before you look.

# %%
def matmul_gflops(n: int, seconds: float) -> float:
    raise NotImplementedError  # your code


# %%
check("matmul_gflops", matmul_gflops)
