"""Solutions to the exercises of 04_lora_side_by_side (try them yourself first)."""

import minilora as ml
from minilora.lora import load_adapter


def optimizer_state_bytes(n_trainable: int) -> int:
    """AdamW keeps m and v, one float32 (4 bytes) each, per trainable weight: 2 · 4 · n bytes."""
    return 2 * 4 * n_trainable


def reload_adapter(folder):
    """A fresh shipped base model; load_adapter applies LoRA from adapter_config.json, then loads A and B."""
    return load_adapter(ml.pretrained("skills"), folder)


# Common mistakes, one per exercise: tests/test_tutorials.py checks that each one fails its check.
MISTAKES = {
    "optimizer_state_bytes": lambda n: 4 * n,  # one moment instead of two
    "reload_adapter": lambda folder: ml.pretrained("skills"),  # the adapter forgotten
}
