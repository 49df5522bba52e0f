"""Solutions to the exercises of 04_lora_side_by_side (try them yourself first)."""

import numpy as np

import minilora as ml
from minilora.lora import LoraConfig, apply_lora, load_adapter


def optimizer_state_bytes(model) -> int:
    """AdamW keeps two running averages (m and v) per trainable weight, each an array like the weight itself:
    2 · Σ over trainable parameters of (numbers × bytes per number).  Frozen weights get no state."""
    return sum(2 * p.size * p.dtype.itemsize for p in model.parameters() if p.requires_grad)


# While merged, forward is x Wᵀ with W = W0 + s·B A: A and B are not in the computation, so they would get no
# gradient and training would silently do nothing; LoRALinear refuses a training-mode forward instead.
after_merge = "c"

# ∂L/∂B = s·(∂L/∂h)(A x)ᵀ = 0 when A = 0; ∂L/∂A = s·Bᵀ(∂L/∂h) xᵀ ≠ 0 when B ≠ 0: A moves first.
a_zero_init = "A"


def reload_adapter(folder):
    """A fresh shipped base model; load_adapter applies LoRA from adapter_config.json, then loads A and B."""
    return load_adapter(ml.pretrained("skills"), folder)


# --- wrong answers: tests/test_tutorials.py checks that each one fails its check ---

def _trainable_numbers(model) -> int:
    return sum(p.size for p in model.parameters() if p.requires_grad)


# the notebook's global LoRA model (section 2): already adapted, trained, merged in section 5
_NOTEBOOK_LORA = apply_lora(ml.pretrained("skills"), LoraConfig(r=2, target_modules=("q_proj", "v_proj")), seed=0)


def _into_the_notebook_model(folder):
    """Loads into a model that exists outside the function (the notebook's adapted global): every call changes it."""
    return load_adapter(_NOTEBOOK_LORA, folder)


def _applied_but_not_loaded(folder):
    """LoRA applied from scratch (B = 0) instead of loaded: the model is the base model."""
    return apply_lora(ml.pretrained("skills"), LoraConfig(r=2, target_modules=("q_proj", "v_proj")))


def _into_a_changed_base(folder):
    """Loaded into a base whose weights moved (e.g. the notebook's fully fine-tuned model)."""
    model = ml.pretrained("skills")
    rng = np.random.default_rng(0)
    for p in model.parameters():
        p.data = p.data + rng.normal(0.0, 0.01, p.shape).astype(p.dtype)
    return load_adapter(model, folder)


MISTAKES = {
    "optimizer_state_bytes": [
        lambda model: 4 * _trainable_numbers(model),  # one moment instead of two
        lambda model: 8 * 110_720,  # the full skills model's count, hard-coded: right for one model only
        lambda model: 8 * _trainable_numbers(model),  # 4 bytes a number assumed: wrong for a float64 model
        lambda model: sum(2 * p.size * p.dtype.itemsize for p in model.parameters()),  # frozen weights too
        lambda model: sum(3 * p.size * p.dtype.itemsize for p in model.parameters() if p.requires_grad),  # + grads
    ],
    "after_merge": ["a", "b", "d"],
    "a_zero_init": ["B", "both", "neither"],
    "reload_adapter": [
        lambda folder: ml.pretrained("skills"),  # the adapter forgotten
        _into_the_notebook_model,
        _applied_but_not_loaded,
        _into_a_changed_base,
    ],
}
