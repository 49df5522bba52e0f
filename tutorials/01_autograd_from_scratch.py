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
# # 01 · Reverse-mode autograd from scratch
#
# Everything in minilora — the GPT, full fine-tuning, LoRA — stands on one idea: record each operation
# as it runs, then walk the record backwards applying the chain rule. This notebook opens that box.
#
# **What you will learn**
# - every result remembers the operation that made it: the graph, drawn as a picture;
# - `backward()` applies the chain rule once per node, last node first, and gradients accumulate;
# - broadcasting's adjoint: a gradient is *summed* back to its input's shape;
# - how to check any backward formula against finite differences, and why ε matters;
# - how to write a `Function` of your own and have `gradcheck` vouch for it;
# - why a frozen weight costs nothing in backward (the reason LoRA trains faster).
#
# **Read first:** nothing — this is the first notebook. Next: `02_tiny_gpt`.
# It runs in seconds.

# %%
import course
import numpy as np
from checks import check
from matplotlib.figure import Figure

import minilora as ml
import minilora.functional as F
from minilora.engine import ops
from minilora.engine.autograd import unbroadcast

# %% [markdown]
# ## 1. Every result remembers how it was made
# `y = (a * b + a**2).sum()` creates four graph nodes. Each node is a `Function` object (`Mul`, `PowScalar`,
# `Add`, `Sum`) that saved what its backward will need, and points at the values it was made from.

# %%
a = ml.tensor([1.0, 2.0, 3.0], requires_grad=True)
b = ml.tensor([4.0, 5.0, 6.0], requires_grad=True)
y = (a * b + a**2).sum()
print(type(y._ctx).__name__, "made y from", [v.shape for v in y._ctx.inputs])

# %% [markdown]
# The same graph as a picture: blue boxes are the leaves that want a gradient, orange boxes the Functions.
# Notice that `a` feeds two Functions — its gradient will arrive along two paths.

# %%
course.show(course.draw_graph(y, a=a, b=b, y=y))

# %% [markdown]
# ## 2. backward() applies the chain rule, last node first
# For y = Σ (aᵢbᵢ + aᵢ²): ∂y/∂a = b + 2a (both paths add up) and ∂y/∂b = a.

# %%
y.backward()
print("a.grad =", a.grad, "  b + 2a =", b.numpy() + 2 * a.numpy())
print("b.grad =", b.grad)

# %% [markdown]
# The walk has freed the graph (the saved arrays are gone), and gradients **accumulate** (`+=`) until you clear
# them — that is what `zero_grad()` is for:

# %%
(a * b).sum().backward()
print(a.grad)  # b + 2a from before, plus b now
a.zero_grad()
print(a.grad)

# %% [markdown]
# ## 3. Broadcasting, undone once
# Adding a bias of shape (3,) to a (2, 3) matrix copies it to every row. The adjoint of copying is summing,
# so the bias's gradient sums over the rows. The engine does this reduction (`unbroadcast`, in
# `minilora/engine/autograd.py`) for every op, so no op has to.

# %%
x = ml.ones((2, 3))
bias = ml.tensor([0.1, 0.2, 0.3], requires_grad=True)
out = x + bias
print("x", x.shape, "+ bias", bias.shape, "->", out.shape)
out.sum().backward()
print("bias.grad", bias.grad.shape, bias.grad)  # each bias entry was used twice

# %% [markdown]
# The rule in general: axes that broadcasting *added* in front are summed away; axes where the input had size 1
# are summed and kept. A gradient of shape (4, 3, 5) for an input of shape (3, 1):

# %%
g = np.ones((4, 3, 5))
print(g.shape, "->", unbroadcast(g, (3, 1)).shape, unbroadcast(g, (3, 1)).ravel())  # each entry summed 4·5 = 20 times

# %% [markdown]
# ## 4. How do we know a backward formula is right? Finite differences.
# ∂f/∂xᵢ ≈ (f(x + εeᵢ) − f(x − εeᵢ)) / 2ε, with error O(ε²), in float64. `ml.gradcheck` compares this with
# `backward()` for every element.

# %%
logits = ml.randn((4, 5), rng=0, dtype=np.float64, requires_grad=True)
targets = np.array([0, 3, 1, 4])
ml.gradcheck(lambda z: F.cross_entropy(z, targets), logits, rtol=1e-5)

# %% [markdown]
# Why float64, and why ε = 1e-6? The error of the central difference has two parts: the truncation error,
# which shrinks like ε², and the rounding error of subtracting two nearly equal numbers, which grows like
# (machine epsilon)/ε. Measured on d/dx sin(x) at x = 1:

# %%
eps = np.logspace(-12, -1, 45)
fig = Figure(figsize=(6, 3.2))
ax = fig.add_subplot()
for dtype in (np.float32, np.float64):
    x0 = dtype(1.0)
    numeric = (np.sin(x0 + eps.astype(dtype)) - np.sin(x0 - eps.astype(dtype))) / (2 * eps.astype(dtype))
    ax.loglog(eps, np.abs(numeric.astype(np.float64) - np.cos(1.0)) + 1e-17, label=str(np.dtype(dtype)))
ax.axvline(1e-6, color="gray", linestyle=":", label="gradcheck's ε")
ax.set_xlabel("ε")
ax.set_ylabel("|finite difference − cos(1)|")
ax.set_ylim(1e-13, 10)
ax.legend()
course.show(fig)

# %% [markdown]
# In float32, at gradcheck's ε the difference is off by about 1e-3, and even the best ε (near 1e-2) leaves an
# error near 1e-6 — too coarse to catch a subtly wrong gradient. In float64 the valley sits around ε ≈ 1e-6,
# with errors near 1e-11.
#
# ## 5. Writing a Function of your own
# A `Function` has two static methods on raw arrays (NumPy here, CuPy on a GPU): `forward` computes the
# output and saves what backward needs; `backward` gets g = ∂L/∂output and returns one gradient per input,
# ∂L/∂x = g · f′(x). Here is x³:

# %%
class Cube(ml.Function):
    """y = x³;  ∂L/∂x = g · 3x²."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return (g * 3 * x**2,)


x = ml.randn((3,), rng=1, dtype=np.float64, requires_grad=True)
print(Cube.apply(x).shape, ml.gradcheck(Cube.apply, x))

# %% [markdown]
# A Function with a wrong backward does not get past the check. Here d(x³)/dx is written as 2x² instead of 3x²:

# %%
class WrongCube(Cube):
    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return (g * 2 * x**2,)


try:
    ml.gradcheck(WrongCube.apply, x)
except AssertionError as err:
    print(err)

# %% [markdown]
# ## 6. Fused and composed: the same math, different costs
# `F.softmax` is one fused Function with a closed-form backward; `F.softmax_composed` is built from
# primitives (exp, sum, divide), so its graph has several nodes and keeps more arrays alive.
# Both give the same values and gradients:

# %%
z = ml.randn((2, 6), rng=2, dtype=np.float64, requires_grad=True)
print("max |fused − composed| =", np.abs(F.softmax(z).numpy() - F.softmax_composed(z).numpy()).max())
course.show(course.draw_graph(F.softmax_composed(z, axis=-1).sum(), z=z))

# %% [markdown]
# ## 7. Inputs that need no gradient cost nothing
# This is what makes LoRA's backward cheaper: a frozen weight (`requires_grad=False`) gets no gradient
# computed at all — the op sees `ctx.needs_input_grad` and skips that matmul.

# %%
w_frozen = ml.randn((4, 3), rng=3)
inp = ml.randn((2, 3), rng=4, requires_grad=True)
out = F.linear(inp, w_frozen)
print(out._ctx.needs_input_grad)  # (x needs a gradient, W does not)
out.sum().backward()
print("inp.grad", inp.grad.shape, "  w_frozen.grad", w_frozen.grad)

# %% [markdown]
# ## 8. no_grad: no graph at all
# Evaluation and inference run inside `ml.no_grad()`: nothing is recorded, nothing is kept for a backward.

# %%
with ml.no_grad():
    q = inp * 2
print(q.requires_grad, q._ctx)

# %% [markdown]
# The engine is small enough to read in an afternoon: the primitives live in `minilora/engine/ops.py` (one
# small class each: read `ops.Mul`, `ops.MatMul`), the fused ones in `minilora/engine/fused.py`, and the
# backward walk in `minilora/engine/autograd.py`.

# %%
print(ops.MatMul.__doc__)

# %% [markdown]
# ## Exercises
# Each exercise cell raises `NotImplementedError` until you fill it in; the cell after it checks your answer
# and prints `correct: ...` or `not yet: ...`. Solutions: `tutorials/solutions/01_autograd_from_scratch.py`
# (try first!).
#
# **Exercise 1 — softplus.** Write the Function softplus(x) = log(1 + eˣ). Its derivative is the sigmoid
# σ(x) = 1 / (1 + e⁻ˣ). Use `minilora.backend.get_xp(x)` for the array module so it also runs on a GPU;
# `xp.logaddexp(0, x)` is a stable log(1 + eˣ).

# %%
class Softplus(ml.Function):
    @staticmethod
    def forward(ctx, x):
        raise NotImplementedError  # your code: save what backward needs, return log(1 + eˣ)

    @staticmethod
    def backward(ctx, g):
        raise NotImplementedError  # your code: return a 1-tuple (∂L/∂x,)


# %%
check("Softplus", Softplus)

# %% [markdown]
# **Exercise 2 — broadcasting's adjoint.** Write `sum_to(grad, shape)`: reduce a gradient of a broadcast result
# back to the input's `shape` (section 3's rule), without calling `unbroadcast`.

# %%
def sum_to(grad: np.ndarray, shape: tuple) -> np.ndarray:
    raise NotImplementedError  # your code


# %%
check("sum_to", sum_to)

# %% [markdown]
# **Exercise 3 — two paths.** For y = Σ(a·b + a²) with a, b of the same shape, return (∂y/∂a, ∂y/∂b) as NumPy
# arrays, worked out by hand (no `backward()`).

# %%
def fanout_grads(a: np.ndarray, b: np.ndarray) -> tuple:
    raise NotImplementedError  # your code


# %%
check("fanout_grads", fanout_grads)
