"""Devices: lookup, transfers, the default device, cuda detection, and the strict test device itself."""

import importlib.util
import sys
import types

import numpy as np
import pytest

import minilora as ml
from minilora import backend


def test_numpy_arrays_and_scalars_live_on_cpu():
    assert backend.device_of(np.zeros(2)) == "cpu"
    assert backend.device_of(np.float32(1.0)) == "cpu"
    assert backend.get_xp(np.zeros(2)) is np
    assert backend.get_xp(3.0) is np


def test_transfer_round_trip_keeps_values_shape_and_dtype(device):
    host = np.arange(6, dtype=np.float32).reshape(2, 3)
    moved = backend.to_device(host, device)
    assert backend.device_of(moved) == device
    assert backend.get_xp(moved) is backend._lookup(device).xp
    back = backend.to_host(moved)
    assert isinstance(back, np.ndarray) and back.dtype == np.float32
    np.testing.assert_array_equal(back, host)


def test_transfer_keeps_zero_dimensional_arrays_zero_dimensional(device):
    """np.ascontiguousarray would turn a 0-d array into shape (1,): a scalar must stay a scalar."""
    moved = backend.to_device(np.asarray(2.5), device)
    assert moved.shape == ()
    assert backend.to_host(moved).shape == ()


def test_transfer_to_the_same_device_is_not_a_copy(device):
    array = backend.to_device(np.ones(3), device)
    assert backend.to_device(array, device) is array


def test_unknown_device_error_lists_the_available_ones():
    with pytest.raises(ValueError, match=r"'tpu'.*'cpu'"):
        backend.to_device(np.ones(2), "tpu")
    with pytest.raises(ValueError, match="tpu"):
        backend.set_default_device("tpu")


def test_cpu_device_cannot_be_replaced():
    with pytest.raises(ValueError, match="cpu"):
        backend.register_device(backend.Device("cpu", np, np.ndarray, lambda a: a, np.asarray))


def test_available_devices_include_the_fixture_devices(device):
    assert backend.available_devices()[0] == "cpu"
    assert device in backend.available_devices()


def test_default_device_comes_from_setter_then_env_then_cpu(device, monkeypatch):
    monkeypatch.delenv("MINILORA_DEVICE", raising=False)
    assert backend.default_device() == "cpu"
    monkeypatch.setenv("MINILORA_DEVICE", device)
    assert backend.default_device() == device
    assert ml.zeros(2).device == device
    backend.set_default_device("cpu")
    assert ml.ones(2).device == "cpu"
    backend.set_default_device(None)
    assert backend.default_device() == device


def _other_device(device):
    return "cpu" if device != "cpu" else [d for d in backend.available_devices() if d != "cpu"][0]


def test_check_same_device_names_both_devices(device):
    other = _other_device(device)
    a, b = backend.to_device(np.ones(2), device), backend.to_device(np.ones(2), other)
    backend.check_same_device((a, a + 1), "Op")  # same device: no error
    with pytest.raises(RuntimeError, match=rf"Op.*'{device}'.*'{other}'"):
        backend.check_same_device((a, b), "Op")


def test_seeded_random_numbers_are_identical_on_every_device(device):
    on_device = ml.randn((3, 4), rng=7, device=device)
    on_cpu = ml.randn((3, 4), rng=7, device="cpu")
    assert on_device.device == device
    np.testing.assert_array_equal(on_device.numpy(), on_cpu.numpy())
    np.testing.assert_array_equal(ml.rand(5, rng=1, device=device).numpy(), ml.rand(5, rng=1).numpy())


def test_cuda_available_is_false_when_cupy_cannot_be_imported(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # makes `import cupy` raise ImportError
    assert backend.cuda_available.__wrapped__() is False


def test_cuda_available_is_false_when_the_probe_kernel_fails(monkeypatch):
    """`import cupy` and is_available() succeeding is not enough: a kernel must actually run."""

    def broken_arange(*args, **kwargs):
        raise RuntimeError("CUDA driver version is insufficient")

    fake = types.SimpleNamespace(cuda=types.SimpleNamespace(is_available=lambda: True),
                                 arange=broken_arange, float32=np.float32)
    monkeypatch.setitem(sys.modules, "cupy", fake)
    assert backend.cuda_available.__wrapped__() is False


@pytest.mark.skipif(backend.cuda_available(), reason="this machine has a working GPU: 'cuda' is available")
def test_cuda_without_cupy_says_how_to_install_the_gpu_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # CuPy not installed
    with pytest.raises(ValueError) as info:
        ml.zeros(2, device="cuda")
    message = str(info.value)
    assert 'pip install "minilora[gpu]"' in message and "cupy-cuda12x" in message and "\n" not in message
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object())  # CuPy installed, but no GPU
    message = backend.cuda_unavailable_message()
    assert "found no working GPU" in message and "pip install" not in message and "\n" not in message


# -- the strict test device: it must fail exactly where CuPy would ------------------------------

strict_only = pytest.mark.skipif("strict" not in backend.available_devices(),
                                 reason="the strict device stands in for CuPy only on machines without a GPU")


def _strict(values):
    return backend.to_device(np.asarray(values, dtype=np.float64), "strict")


@strict_only
def test_strict_array_refuses_implicit_conversion_to_numpy():
    x = _strict([1.0, 2.0])
    with pytest.raises(TypeError, match="strict device"):
        np.asarray(x)
    with pytest.raises(TypeError, match="strict device"):
        np.array(x)
    with pytest.raises(TypeError, match="strict device"):
        np.sum(x)  # a numpy function on a device array is a host leak too


@strict_only
def test_strict_array_refuses_mixing_with_host_arrays():
    x, host = _strict([1.0, 2.0]), np.array([1.0, 2.0])
    for mix in (lambda: x + host, lambda: host + x, lambda: x * host, lambda: host @ x, lambda: x < host):
        with pytest.raises(TypeError):
            mix()
    with pytest.raises(TypeError, match="host"):
        x[np.array([0])]  # host index arrays must be moved to the device first
    with pytest.raises(TypeError, match="host"):
        x[0:2] = host
    xp = backend.get_xp(x)
    with pytest.raises(TypeError, match="host"):
        xp.maximum(x, host)
    with pytest.raises(TypeError, match="host"):
        xp.asarray(host)  # uploads go through backend.to_device only


@strict_only
def test_strict_array_allows_explicit_conversions_and_device_math():
    x = _strict([[1.0, 2.0], [3.0, 4.0]])
    xp = backend.get_xp(x)
    total = x.sum()
    assert type(total) is type(x) and total.shape == ()  # 0-d array, like CuPy, not a numpy scalar
    assert total.item() == 10.0 and float(total) == 10.0 and int(total) == 10
    assert bool(x[0, 0] == 1.0) and len(x) == 2
    assert type(x[0, 0]) is type(x)
    y = x.copy()
    y += 1
    y[0] -= 1
    np.testing.assert_array_equal(backend.to_host(y), [[1.0, 2.0], [4.0, 5.0]])
    acc = xp.zeros(3)
    xp.add.at(acc, xp.asarray([0, 0, 2]), 1.0)  # ufunc methods survive the wrapping
    np.testing.assert_array_equal(backend.to_host(acc), [2.0, 0.0, 1.0])
    np.testing.assert_array_equal(backend.to_host(xp.exp(x, out=x)), np.exp([[1.0, 2.0], [3.0, 4.0]]))
    assert xp.float32 is np.float32 and xp.pi == np.pi


@strict_only
def test_strict_transfers_copy_so_host_and_device_never_alias():
    host = np.zeros(2)
    x = backend.to_device(host, "strict")
    host[0] = 5.0
    back = backend.to_host(x)
    back[1] = 7.0
    np.testing.assert_array_equal(backend.to_host(x), [0.0, 0.0])


def test_keeping_freed_host_memory_is_applied_once_and_reports_it(monkeypatch):
    import ctypes
    import platform

    calls = []

    class FakeLibc:
        def mallopt(self, param, value):
            calls.append((param, value))
            return 1

    backend.keep_freed_host_memory.cache_clear()
    monkeypatch.setattr(ctypes, "CDLL", lambda name: FakeLibc())
    assert backend.keep_freed_host_memory() is True
    assert backend.keep_freed_host_memory() is True
    assert calls == [(-3, 32 << 20), (-1, 1 << 30)]  # M_MMAP_THRESHOLD, M_TRIM_THRESHOLD, once
    monkeypatch.undo()
    backend.keep_freed_host_memory.cache_clear()
    if platform.libc_ver()[0] == "glibc":
        assert backend.keep_freed_host_memory() is True  # the real glibc accepts both settings


def test_keeping_freed_host_memory_is_a_no_op_without_glibc(monkeypatch):
    import ctypes

    def no_libc(name):
        raise OSError(f"{name}: cannot open shared object file")

    backend.keep_freed_host_memory.cache_clear()
    monkeypatch.setattr(ctypes, "CDLL", no_libc)
    assert backend.keep_freed_host_memory() is False
    backend.keep_freed_host_memory.cache_clear()
