"""Model architectures built from ``minilora.nn``."""

from minilora.models.gpt import GPT, GPTConfig

__all__ = ["GPT", "GPTConfig"]
