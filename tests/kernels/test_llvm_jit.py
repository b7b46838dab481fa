"""The IR kernels compile wherever the host has the vector instructions they target."""
from __future__ import annotations

import pytest

from omrt.kernels import avgpool_jit, jit, llvm_jit, maxpool_jit, packed_gemm, phase_conv, spin_wait


@pytest.mark.skipif(not jit.enabled() or not llvm_jit.vector_floats(), reason="no AVX2/AVX-512 or llvmlite here")
def test_every_ir_module_compiles_here() -> None:
    """A module LLVM rejects would quietly send its convs back to the numpy paths."""
    assert packed_gemm.available()
    assert phase_conv._kernel() is not None
    assert maxpool_jit.available() and avgpool_jit.available()
    assert spin_wait.available()


def test_splat_and_lanes() -> None:
    assert llvm_jit.lanes(4, 8) == "<i64 8, i64 9, i64 10, i64 11>"
    lines = llvm_jit.splat("v", "%x", 4)
    assert lines[-1] == "  %v = shufflevector <4 x float> %v.s, <4 x float> poison, <4 x i32> zeroinitializer"


@pytest.mark.skipif(not jit.enabled() or not llvm_jit.vector_floats(), reason="no AVX2/AVX-512 or llvmlite here")
def test_avx2_width_kernels_match_numpy(monkeypatch) -> None:
    """The 8-float (AVX2) build of each IR module, run on this host, gives numpy's results on the
    same packed weights (32-row panels whatever the width) and its own tile shapes."""
    import numpy as np

    from omrt.kernels import OpSpec, TensorSpec, build_kernel, workspace_bytes
    from omrt.kernels.conv_common import conv_geom

    monkeypatch.setattr(llvm_jit, "_modules", {"vector": 8})
    assert llvm_jit.vector_floats() == 8 and phase_conv._rows(8) == 4
    rng = np.random.default_rng(0)
    w, x = rng.standard_normal((37, 300), dtype=np.float32), rng.standard_normal((300, 13), dtype=np.float32)
    y = np.empty((37, 13), np.float32)
    packed_gemm.multiply(packed_gemm.pack(w), x, y, np.empty(packed_gemm.accumulator_floats(13), np.float32))
    np.testing.assert_allclose(y, w @ x, rtol=1e-4, atol=1e-3)

    f32 = np.dtype(np.float32)
    image = rng.standard_normal((1, 3, 40, 70), dtype=np.float32)
    weights = rng.standard_normal((10, 3, 3, 3), dtype=np.float32)
    attrs = {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}
    spec = OpSpec("Conv", attrs, [TensorSpec(image.shape, f32), TensorSpec(weights.shape, f32)],
                  [TensorSpec((1, 10, 20, 35), f32)], {1: weights})
    assert phase_conv.phase_eligible(conv_geom(spec), f32, True)
    out = np.empty((1, 10, 20, 35), np.float32)
    build_kernel(spec)([image, weights], [out], np.empty(workspace_bytes(spec), np.uint8))
    padded = np.pad(image[0], ((0, 0), (1, 1), (1, 1)))
    want = np.zeros((10, 20, 35))
    for kh in range(3):
        for kw in range(3):
            taps = padded[:, kh:kh + 40:2, kw:kw + 70:2]
            want += np.einsum("oc,chw->ohw", weights[:, :, kh, kw], taps)
    np.testing.assert_allclose(out[0], want, rtol=1e-4, atol=1e-4)


def test_broadcast_fmas_names_its_step() -> None:
    lines = llvm_jit.broadcast_fmas(4, "%x", "%xo", 2, ["%w0", "%w1"], "x")
    assert "  %xo1 = add i64 %xo, 1" in lines
    assert "  %n1_0 = call <4 x float> @llvm.fma.v4f32(<4 x float> %w0, <4 x float> %xb1, <4 x float> %a1_0)" in lines
    assert sum("@llvm.fma" in line for line in lines) == 4


def test_strided_pointers_step_each_base() -> None:
    lines = llvm_jit.strided_pointers("%p", [("x", "%x_all", "%plane"), ("y", "%y_all", "64")])
    assert lines == ["  %x_at = mul i64 %p, %plane", "  %x = getelementptr float, ptr %x_all, i64 %x_at",
                     "  %y_at = mul i64 %p, 64", "  %y = getelementptr float, ptr %y_all, i64 %y_at"]
