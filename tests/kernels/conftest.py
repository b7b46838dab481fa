"""Fixtures shared by the kernel tests."""
from __future__ import annotations

import pytest

from omrt.kernels import parallel


@pytest.fixture
def kernel_pool(monkeypatch):
    """kernel_pool(threads): kernels built after the call run on a pool of that many threads,
    whatever the machine has, until the test ends (the process's own pool created first, so BLAS
    is limited as it is for any kernel)."""
    parallel.get_pool()

    def use(threads: int) -> None:
        monkeypatch.setattr(parallel, "_pool", parallel.Pool(threads))
    return use


@pytest.fixture
def two_threads(kernel_pool):
    """Run kernels with a 2-thread pool whatever the machine has."""
    kernel_pool(2)


@pytest.fixture(params=["packed GEMM", "numpy GEMM"])
def small_winograd(request, monkeypatch):
    """Let prepack pick Winograd for convs below WINOGRAD_MIN_FLOPS, and for small maps or few
    inputs the packed or phase conv would take, so small shapes test its paths, with its 36
    GEMMs on the packed micro-kernel (where it runs) and on numpy's matmul."""
    from omrt.kernels import conv, winograd

    monkeypatch.setattr(conv, "beats_winograd", lambda g, dtype: False)
    monkeypatch.setattr(conv, "PHASE_OVER_WINOGRAD_INPUTS", 0)
    monkeypatch.setattr(winograd, "WINOGRAD_MIN_FLOPS", 0.0)
    monkeypatch.setattr(winograd, "WINOGRAD_MIN_FLOPS_NUMPY", 0.0)
    monkeypatch.setattr(winograd, "PACKED_MIN_CHANNELS", 0 if request.param == "packed GEMM" else 1 << 30)


@pytest.fixture(params=["compiled", "numpy"])
def kernel_paths(request, monkeypatch):
    """Build kernels with the compiled loops (omrt.kernels.jit) and again with numpy only."""
    monkeypatch.setenv("OMRT_JIT", "1" if request.param == "compiled" else "0")
    yield request.param


@pytest.fixture
def avx2_width(monkeypatch):
    """The IR kernels built for 8-float vectors (AVX2), whatever this CPU has beyond them."""
    from omrt.kernels import llvm_jit

    if not llvm_jit.vector_floats():
        pytest.skip("no AVX2/AVX-512 here")
    monkeypatch.setattr(llvm_jit, "_modules", {"vector": 8})
