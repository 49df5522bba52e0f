"""Benchmarks: the time, FLOP/s and memory of a training step, beside a PyTorch twin (``python -m minilora.bench``).

    steps.py       the benchmark: configs, methods, measurements, the table and JSON
    torch_twin.py  the same GPT written in PyTorch (loaded only when torch is installed)
"""
