"""The IR kernels compile wherever the host has the vector instructions they target."""
from __future__ import annotations

import pytest

from omrt.kernels import jit, llvm_jit, packed_gemm, phase_conv


@pytest.mark.skipif(not jit.enabled() or not llvm_jit.vector_floats(), reason="no AVX2/AVX-512 or llvmlite here")
def test_every_ir_module_compiles_here() -> None:
    """A module LLVM rejects would quietly send its convs back to the numpy paths."""
    assert packed_gemm.available()
    assert phase_conv._kernel() is not None


def test_splat_and_lanes() -> None:
    assert llvm_jit.lanes(4, 8) == "<i64 8, i64 9, i64 10, i64 11>"
    lines = llvm_jit.splat("v", "%x", 4)
    assert lines[-1] == "  %v = shufflevector <4 x float> %v.s, <4 x float> poison, <4 x i32> zeroinitializer"
