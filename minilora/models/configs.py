"""Named model sizes.  The vocabulary comes from the task's tokenizer, so a size is a GPT minus its vocab."""

from __future__ import annotations

from minilora.models.gpt import GPTConfig

__all__ = ["MODEL_SIZES", "model_config"]

MODEL_SIZES: dict[str, dict[str, int]] = {
    # the pretrained skills and names models: a student pretrains them on a laptop CPU in minutes
    "tiny": {"block_size": 32, "n_layer": 2, "n_head": 4, "n_embd": 64},
    # benchmark sizes (python -m minilora.bench)
    "bench-tiny": {"block_size": 64, "n_layer": 4, "n_head": 4, "n_embd": 128},
    "bench-small": {"block_size": 128, "n_layer": 6, "n_head": 8, "n_embd": 256},
}


def model_config(name: str, vocab_size: int, **overrides: int | float | bool) -> GPTConfig:
    """The GPTConfig of a named size for a given vocabulary (``overrides`` replace single fields)."""
    if name not in MODEL_SIZES:
        raise ValueError(f"unknown model size {name!r}; expected one of {sorted(MODEL_SIZES)}")
    return GPTConfig(vocab_size=vocab_size, **{**MODEL_SIZES[name], **overrides})
