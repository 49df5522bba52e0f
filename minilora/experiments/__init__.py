"""Experiments: the runs behind the tables and figures, each callable from a notebook and the ``minilora`` command.

``compare``  full fine-tuning and LoRA at several ranks side by side (``minilora compare``).
``measure``  the timing and memory helpers the experiments share.
"""
