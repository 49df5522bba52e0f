"""Solutions to the exercises of 08_gpu_with_cupy (try them yourself first)."""


def weight_bytes(model) -> int:
    """Σ over every parameter (trainable or frozen) of its number of elements × bytes per element."""
    return sum(p.size * p.dtype.itemsize for p in model.parameters())


# An n×n @ n×n product has n² outputs, each a dot product of n multiplies and n adds: 2n³ operations.  Doubling n
# multiplies them by 2³ = 8, so at a constant speed the time grows 8-fold.
matmul_time_ratio = 8

# minilora never falls back silently: device="cuda" without CuPy (or without a working GPU) is a ValueError that names
# what is missing, so a "GPU" timing can never be a CPU timing in disguise.
without_gpu = "b"


# --- wrong answers: tests/test_tutorials.py checks that each one fails its check ---
MISTAKES = {
    "weight_bytes": [
        # trainable only
        lambda model: sum(p.size * p.dtype.itemsize for p in model.parameters() if p.requires_grad),
        lambda model: 4 * 110_720,  # the skills model's count, hard-coded
        lambda model: 4 * sum(p.size for p in model.parameters()),  # 4 bytes a number assumed: not for float16
        lambda model: sum(p.size for p in model.parameters()),  # numbers, not bytes
    ],
    "matmul_time_ratio": [2, 4, 6],  # linear in n; n² outputs only; 2 · 3
    "without_gpu": ["a", "c", "d"],
}
