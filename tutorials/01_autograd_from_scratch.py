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
# as it runs, then walk the record backwards applying the chain rule (reverse-mode automatic differentiation; a
# survey: Baydin et al. 2018, [arXiv 1502.05767](https://arxiv.org/abs/1502.05767)). This notebook opens that box.
#
# **What you will learn**
# - every result remembers the operation that made it: the graph, drawn as a picture;
# - `backward()` applies the chain rule once per node, last node first, and gradients accumulate;
# - broadcasting's adjoint: a gradient is *summed* back to its input's shape;
# - how to check any backward formula against finite differences, and how to choose the step $\varepsilon$;
# - how to write a `Function` of your own — one that stays finite for any input — and have `gradcheck` vouch for it;
# - why a frozen weight costs nothing in backward (the reason LoRA trains faster).
#
# **Read first:** nothing — this is the first notebook. Next: [02 · the tiny GPT](02_tiny_gpt.ipynb).
#
# **Run time:** about 5 seconds with one BLAS thread (`OMP_NUM_THREADS=1 jupyter lab`, as the timings in this
# course are measured); the same with `MINILORA_FAST=1`, since nothing here trains.

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

# %%
course.show(course.draw_graph(y, a=a, b=b, y=y))  # before backward(), which frees the graph

# %% [markdown]
# **What the picture says:** `a` has two arrows leaving it (into `Mul` and into `PowScalar`), `b` only one. Its
# gradient will therefore arrive along two paths, and the engine must add them.
#
# ## 2. backward() applies the chain rule, last node first
# For $y = \sum_i (a_i b_i + a_i^2)$: $\partial y/\partial a = b + 2a$ (both paths add up) and
# $\partial y/\partial b = a$.

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
# The central difference
# $$\frac{\partial f}{\partial x_i} \approx \frac{f(x + \varepsilon e_i) - f(x - \varepsilon e_i)}{2\varepsilon}$$
# has a truncation error of order $\varepsilon^2$. `ml.gradcheck` compares it with `backward()` for every element,
# in float64, with $\varepsilon = 10^{-6}$:

# %%
logits = ml.randn((4, 5), rng=0, dtype=np.float64, requires_grad=True)
targets = np.array([0, 3, 1, 4])
ml.gradcheck(lambda z: F.cross_entropy(z, targets), logits, rtol=1e-5)

# %% [markdown]
# Why float64, and why that $\varepsilon$? The error has two parts: the truncation error, about
# $\frac{\varepsilon^2}{6}|f'''|$, and the rounding error of subtracting two nearly equal numbers, about
# $u|f|/\varepsilon$, where $u$ is the unit roundoff of the dtype ($2^{-53} \approx 1.1 \times 10^{-16}$ in
# float64, $2^{-24} \approx 6 \times 10^{-8}$ in float32). Their sum is smallest near
# $\varepsilon^* \approx \sqrt[3]{3u|f|/|f'''|}$, where the error is of order $u^{2/3}$. Measured on
# $\frac{d}{dx}\sin x$ at $x = 1$ (exact: $\cos 1$):

# %%
eps = np.logspace(-12, -1, 45)


def central_error(dtype, steps):
    """|central difference of sin at 1 − cos(1)|, computed in ``dtype``, for each step in ``steps``."""
    x0, h = dtype(1.0), np.asarray(steps).astype(dtype)
    numeric = (np.sin(x0 + h) - np.sin(x0 - h)) / (2 * h)
    return np.abs(numeric.astype(np.float64) - np.cos(1.0))


fig = Figure(figsize=(6.5, 3.4), layout="constrained")
ax = fig.add_subplot()
for dtype, color in ((np.float32, "C0"), (np.float64, "C1")):
    error = central_error(dtype, eps)
    u = np.finfo(dtype).eps / 2
    best = int(np.argmin(error))
    theory = (3 * u * np.sin(1.0) / np.cos(1.0)) ** (1 / 3)
    ax.loglog(eps, error + 1e-17, ".-", color=color, label=np.dtype(dtype).name)
    print(f"{np.dtype(dtype).name}: smallest error {error[best]:.1e} at ε = {eps[best]:.1e} "
          f"(estimate ε* = {theory:.1e}, error of order u^(2/3) = {u ** (2 / 3):.0e});  "
          f"at gradcheck's ε = 1e-6 the error is {central_error(dtype, [1e-6])[0]:.1e}")
ax.axvline(1e-6, color="gray", linestyle=":", label="gradcheck's ε")
ax.set_xlabel("ε")
ax.set_ylabel("|finite difference − cos(1)|")
ax.set_ylim(1e-14, 10)
ax.legend(loc="lower left")
course.show(fig)

# %% [markdown]
# **What these numbers say.** Read the two printed lines with the figure. Right of the valley the truncation error
# rises like $\varepsilon^2$ (slope 2 on log–log axes); left of it the rounding error rises like $1/\varepsilon$
# (slope −1, ragged, because rounding is erratic; and in float32, far left,
# $1 \pm \varepsilon$ rounds to 1, the difference is 0 and the error is $\cos 1$).
# In float32 even the best error (printed) is orders of magnitude above float64's floor, and at gradcheck's
# $\varepsilon$ float32 is off by more than gradcheck's tolerance (`rtol=1e-3`) — which is why gradcheck refuses
# float32 inputs. In float64 the valley's bottom sits near the estimate $\varepsilon^*$ and
# gradcheck's $10^{-6}$ lies inside it. The single smallest value can be far below $u^{2/3}$: at one lucky
# $\varepsilon$ the two rounding errors happen to cancel, so read the valley's floor, not its lowest dot.
#
# ## 5. Writing a Function of your own
# A `Function` has two static methods on raw arrays (NumPy here, CuPy on a GPU): `forward` computes the
# output and saves what backward needs; `backward` gets $g = \partial L/\partial\,\text{output}$ and returns one
# gradient per input, $\partial L/\partial x = g \cdot f'(x)$. Here is $x^3$:

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
# A Function with a wrong backward does not get past the check. Here $\frac{d}{dx}x^3$ is written as $2x^2$
# instead of $3x^2$:

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
composed = F.softmax_composed(z, axis=-1).sum()
print("nodes in the composed graph:", sum(v._ctx is not None for v in course.graph_edges(composed)[0]),
      "  in the fused one:", sum(v._ctx is not None for v in course.graph_edges(F.softmax(z, axis=-1).sum())[0]))
course.show(course.draw_graph(composed, z=z))

# %% [markdown]
# **What the picture says:** the composed softmax is a chain of primitives (the max is detached: it only shifts
# the exponent for stability and does not change the result), and each box is one array the backward walk must
# keep until it gets there. The fused `Softmax` is one box that keeps only its output, because
# $\partial\,\mathrm{softmax}$ can be written from the output alone: $g_x = s \odot (g - \sum g \odot s)$.
#
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
# Each exercise cell raises `NotImplementedError` (or holds `None`) until you fill it in; the cell after it checks
# your answer and prints `correct: ...` or `not yet: ...`. Two of them ask for a **prediction first**: write it
# down, check it, then run the cell that shows what really happens. Solutions:
# `tutorials/solutions/01_autograd_from_scratch.py` (try first!).
#
# **Exercise 1 — softplus, for every x.** Write the Function $\mathrm{softplus}(x) = \log(1 + e^x)$. Its derivative
# is the sigmoid $\sigma(x) = 1/(1 + e^{-x})$. The check also feeds it large inputs, up to $x = \pm 800$: in
# float64 $e^x$ overflows to `inf` above $x \approx 709$, so both forward and backward must be written so that they
# stay finite (and right) there. Use `minilora.backend.get_xp(x)` for the array module, so that it also runs on a GPU.

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
# **Exercise 3 — predict, then run: two backward passes, no `zero_grad`.** The cell after the check runs
# ```python
# (a * b + a**2).sum().backward()
# (a * a * b).sum().backward()
# ```
# on fresh tensors `a`, `b` of the same shape. *Before running it*, write what `a.grad` will hold, as a function
# of the NumPy arrays `a` and `b` (by hand: no `backward()`). Then run the cell and compare.

# %%
def predicted_a_grad(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    raise NotImplementedError  # your prediction


# %%
check("predicted_a_grad", predicted_a_grad)

# %%
a_host, b_host = np.array([1.0, -2.0, 0.5]), np.array([3.0, 1.0, -1.0])
a, b = ml.tensor(a_host, requires_grad=True), ml.tensor(b_host, requires_grad=True)
(a * b + a**2).sum().backward()
(a * a * b).sum().backward()
print("a =", a_host, " b =", b_host, " ->  a.grad =", a.grad)

# %% [markdown]
# **Exercise 4 — predict, then run: the forward difference's best ε.** The *forward* difference
# $\frac{f(x + \varepsilon) - f(x)}{\varepsilon}$ costs one evaluation of $f$ fewer than the central one. Its
# truncation error is of order $\varepsilon$ (not $\varepsilon^2$); its rounding error is still of order
# $u|f|/\varepsilon$. Predict the $\varepsilon$ (a power of ten, e.g. `1e-3`) at which it is most accurate for
# $\sin$ in float64, using section 4's reasoning; then run the cell after the check.

# %%
forward_difference_best_eps = None  # your prediction, a number such as 1e-3

# %%
check("forward_difference_best_eps", forward_difference_best_eps)

# %%
forward = np.abs((np.sin(1.0 + eps) - np.sin(1.0)) / eps - np.cos(1.0))
fig = Figure(figsize=(6.5, 3.4), layout="constrained")
ax = fig.add_subplot()
ax.loglog(eps, forward + 1e-17, ".-", color="C2", label="forward difference")
ax.loglog(eps, central_error(np.float64, eps) + 1e-17, ".-", color="C1", label="central difference")
if isinstance(forward_difference_best_eps, (int, float)) and forward_difference_best_eps > 0:
    ax.axvline(forward_difference_best_eps, color="C2", linestyle=":", label="your prediction")
ax.set_xlabel("ε")
ax.set_ylabel("|difference − cos(1)|, float64")
ax.set_ylim(1e-14, 10)
ax.legend(loc="lower left")
course.show(fig)
print(f"forward difference: smallest error {forward.min():.1e} at ε = {eps[np.argmin(forward)]:.1e}")

# %% [markdown]
# **What the figure says:** the forward difference's valley has a slope of 1 on its right (truncation of order
# $\varepsilon$), so it bottoms out at a smaller $\varepsilon$ than the central difference's, and higher: its best
# error (printed) is far worse than the central difference's floor. One more evaluation buys several digits —
# which is why gradcheck uses the central form.
#
# ## Recap
# - A tensor made by an op keeps a `Function` (`_ctx`) that saved what its backward needs; `backward()` visits the
#   graph once, last node first, and applies $\partial L/\partial x = \sum_{\text{uses}} g \cdot f'$ — a value used
#   twice gets both contributions, and leaf gradients accumulate across calls until `zero_grad()`.
# - Broadcasting copies, so its adjoint sums: leading axes away, size-1 axes with `keepdims` (`unbroadcast`).
# - Central differences check any backward formula; the step must balance truncation ($\varepsilon^2$) against
#   rounding ($u/\varepsilon$), which only float64 does well.
# - A `Function` is `forward` + `backward` on raw arrays; a numerically stable formula matters in both.
# - An input with `requires_grad=False` gets no gradient computed: a frozen weight costs no backward matmul. In
#   [03 · LoRA's mathematics](03_lora_math.ipynb) this is why only A and B cost anything in LoRA's backward.
#
# ## Questions
# 1. Why must a value used in two places receive the *sum* of the two gradients, not one of them, nor their mean?
# 2. A bias of shape (1, 3) is added to an input of shape (5, 4, 3). What shape does its gradient have, and how
#    many numbers were summed into each of its entries?
# 3. If you halve $\varepsilon$ in the central difference, by how much does the truncation error change? Where on
#    section 4's figure does halving $\varepsilon$ make the error *larger*, and why?
# 4. Why does `backward()` visit the nodes in reverse topological order rather than, say, depth first from the
#    output, one path at a time?
#
# <details><summary>Answers to check yourself against</summary>
#
# 1. The loss changes through both uses; to first order the two changes add (the multivariable chain rule).
# 2. (1, 3); each entry is a sum of 5 · 4 = 20 numbers.
# 3. It falls by a factor of 4 ($\varepsilon^2$). Left of the valley, where rounding ($\propto 1/\varepsilon$)
#    dominates: halving $\varepsilon$ about doubles it.
# 4. A node's gradient is complete only when every use of it has contributed; the topological order guarantees
#    that, so each node's backward runs once, with its whole gradient.
#
# </details>
