"""Solutions to the exercises of 08_gpu_with_cupy (try them yourself first)."""


def weight_bytes(model) -> int:
    """Σ over every parameter (trainable or frozen) of its number of elements × bytes per element."""
    return sum(p.size * p.dtype.itemsize for p in model.parameters())


def matmul_gflops(n: int, seconds: float) -> float:
    """An n×n @ n×n product: n² outputs, each n multiplies and n adds, so 2n³ operations; per second, in 10⁹."""
    return 2 * n**3 / seconds / 1e9


# Common mistakes, one per exercise: tests/test_tutorials.py checks that each one fails its check.
MISTAKES = {
    # trainable only
    "weight_bytes": lambda model: sum(p.size * p.dtype.itemsize for p in model.parameters() if p.requires_grad),
    "matmul_gflops": lambda n, seconds: n**3 / seconds / 1e9,  # the multiply-add counted as one operation
}
