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
# # Reverse-mode autograd from scratch
#
# Everything in minilora — the GPT, full fine-tuning, LoRA — stands on one idea: record each operation
# as it runs, then walk the record backwards applying the chain rule. This notebook opens that box.

# %%
import numpy as np

import minilora as ml
import minilora.functional as F
from minilora.engine import ops

# %% [markdown]
# ## 1. Every result remembers how it was made
# `y = (a * b).sum()` creates two graph nodes: a `Mul` and a `Sum`. Each node is a `Function` object that
# saved what its backward will need.

# %%
a = ml.tensor([1.0, 2.0, 3.0], requires_grad=True)
b = ml.tensor([4.0, 5.0, 6.0], requires_grad=True)
y = (a * b).sum()
print(type(y._ctx).__name__, "<-", type(y._ctx.inputs[0]._ctx).__name__)

# %% [markdown]
# ## 2. backward() applies the chain rule, last node first
# For y = Σ aᵢbᵢ: ∂y/∂a = b and ∂y/∂b = a.

# %%
y.backward()
print(a.grad, b.grad)

# %% [markdown]
# Gradients **accumulate** (`+=`) until you clear them — that is what `zero_grad()` is for:

# %%
(a * b).sum().backward()
print(a.grad)  # 2 · b
a.zero_grad()

# %% [markdown]
# ## 3. Broadcasting, undone once
# Adding a bias of shape (3,) to a (2, 3) matrix copies it to every row. The adjoint of copying is summing,
# so the bias's gradient sums over the rows. The engine does this reduction (`unbroadcast`) for every op,
# so no op has to.

# %%
x = ml.ones((2, 3))
bias = ml.tensor([0.1, 0.2, 0.3], requires_grad=True)
(x + bias).sum().backward()
print(bias.grad)  # each bias entry was used twice

# %% [markdown]
# ## 4. How do we know a backward formula is right? Finite differences.
# ∂f/∂xᵢ ≈ (f(x + εeᵢ) − f(x − εeᵢ)) / 2ε, with error O(ε²), in float64. `ml.gradcheck` compares this with
# `backward()` for every element.

# %%
logits = ml.randn((4, 5), rng=0, dtype=np.float64, requires_grad=True)
targets = np.array([0, 3, 1, 4])
ml.gradcheck(lambda z: F.cross_entropy(z, targets), logits, rtol=1e-5)

# %% [markdown]
# A Function with a wrong backward does not get past it. Here d(x³)/dx is written as 2x² instead of 3x²:

# %%
class WrongCube(ml.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return (g * 2 * x**2,)


try:
    ml.gradcheck(WrongCube.apply, ml.randn((3,), rng=1, dtype=np.float64, requires_grad=True))
except AssertionError as err:
    print(err)

# %% [markdown]
# ## 5. Fused and composed: the same math, different costs
# `F.softmax` is one fused Function with a closed-form backward; `F.softmax_composed` is built from
# primitives (exp, sum, divide), so its graph has several nodes and keeps more arrays alive.
# Both give the same values and gradients:

# %%
z = ml.randn((2, 6), rng=2, dtype=np.float64)
print(np.abs(F.softmax(z).numpy() - F.softmax_composed(z).numpy()).max())

# %% [markdown]
# ## 6. Inputs that need no gradient cost nothing
# This is what makes LoRA's backward cheaper: a frozen weight (`requires_grad=False`) gets no gradient
# computed at all — the op sees `ctx.needs_input_grad` and skips that matmul.

# %%
w_frozen = ml.randn((4, 3), rng=3)
inp = ml.randn((2, 3), rng=4, requires_grad=True)
out = F.linear(inp, w_frozen)
print(out._ctx.needs_input_grad)  # (x needs a gradient, W does not)
out.sum().backward()
print(inp.grad.shape, w_frozen.grad)

# %% [markdown]
# ## 7. no_grad: no graph at all
# Evaluation and inference run inside `ml.no_grad()`: nothing is recorded, nothing is kept for a backward.

# %%
with ml.no_grad():
    q = inp * 2
print(q.requires_grad, q._ctx)

# %% [markdown]
# The primitives live in `minilora/ops.py` (one small class each: read `ops.Mul`, `ops.MatMul`),
# the fused ones in `minilora/fused_ops.py`, and the backward walk in `minilora/autograd.py`.

# %%
print(ops.MatMul.__doc__)
