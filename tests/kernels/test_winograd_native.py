"""Winograd's stages as native jobs: the same outputs as the Python tasks, with no Python task."""
from __future__ import annotations

import numpy as np
import pytest

from omrt.kernels import TensorSpec, parallel, prepack, winograd, winograd_native
from omrt.kernels.conv_common import conv_geom
from omrt.kernels.winograd import by_channel_blocks
from tests.kernels.test_conv import make_spec, ort_run, run_in_view

pytestmark = pytest.mark.skipif(not winograd_native.available(), reason="numba or the LLVM kernels are missing")


class CountingPool(parallel.Pool):
    """A pool that counts the jobs it runs as Python tasks and as native tasks."""

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.python_jobs = self.native_jobs = 0

    def run(self, fn, n, threaded=True):
        self.python_jobs += 1
        super().run(fn, n, threaded)

    def run_native(self, task, args, n, threaded=True):
        self.native_jobs += 1
        super().run_native(task, args, n, threaded)


def _conv(rng, x_shape, cout: int, pads, bias: bool, residual: bool):
    """(spec packed for Winograd with a Relu, operands, onnxruntime's output with the residual and Relu)."""
    x = rng.standard_normal(x_shape, dtype=np.float32)
    w = rng.standard_normal((cout, x_shape[1], 3, 3), dtype=np.float32) / 10
    b = rng.standard_normal(cout, dtype=np.float32)
    ins = [x, w, b] if bias else [x, w]
    attrs = {"kernel_shape": [3, 3], "pads": pads}
    want = ort_run("Conv", ins, attrs)[0]
    res = rng.standard_normal(want.shape, dtype=np.float32)
    if residual:
        want = want + res
    want = np.maximum(want, 0)
    consts = {1: w, 2: b} if bias else {1: w}
    spec = make_spec("Conv", ins, [want], dict(attrs, _activation="Relu", _residual=int(residual)), consts)
    packed = prepack(spec)
    assert packed is not None and packed[0].get("_winograd") and packed[0].get("_packed")
    spec.attrs.update(packed[0])
    spec.consts.update(packed[1])
    spec.inputs[1] = TensorSpec(packed[1][1].shape, packed[1][1].dtype)
    operands = [x, packed[1][1]] + ([b] if bias else [])
    if residual:
        spec.inputs.append(TensorSpec(res.shape, res.dtype))
        operands.append(res)
    return spec, operands, want


CASES = [  # x shape, outputs, pads, tiles read in place, split by output channels
    ((1, 32, 14, 14), 96, [1, 1, 1, 1], True, True),     # few tiles
    ((2, 32, 9, 13), 64, [1, 1, 1, 1], True, True),      # few tiles, partial edge tiles, two images
    ((1, 32, 28, 22), 64, [1, 1, 1, 1], True, False),    # tile bands
    ((5, 32, 13, 10), 64, [0, 2, 1, 0], True, False),    # bands of whole images, uneven pads
    ((1, 32, 40, 37), 64, [1, 1, 1, 1], False, False),   # tiles gathered into rows first
    ((1, 48, 14, 14), 64, [1, 1, 1, 1], False, True),
]


@pytest.mark.parametrize("small_winograd", ["packed GEMM"], indirect=True)
@pytest.mark.parametrize("x_shape,cout,pads,in_place,by_channels", CASES)
@pytest.mark.parametrize("bias,residual", [(True, True), (False, False)])
def test_native_jobs_match_python_tasks(small_winograd, monkeypatch, x_shape, cout, pads, in_place, by_channels,
                                        bias, residual) -> None:
    """Both paths give onnxruntime's output (bias, residual, Relu on edge tiles too), and the same
    bits where their arithmetic is the same; the native path runs no Python task."""
    monkeypatch.setattr(winograd, "MIN_PARALLEL_FLOPS", 0.0)
    if not in_place:
        monkeypatch.setattr(winograd, "IN_PLACE_MAX_TILES", 0)
    spec, operands, want = _conv(np.random.default_rng(sum(x_shape) + cout), x_shape, cout, pads, bias, residual)
    got = {}
    for native in (0, 1):
        pool = CountingPool(2)
        monkeypatch.setattr(parallel, "_pool", pool)
        monkeypatch.setattr(winograd, "NATIVE_JOBS", native)
        got[native] = run_in_view(spec, operands)
        assert (pool.python_jobs == 0) == bool(native) and (pool.native_jobs > 0) == bool(native)
    tol = {"rtol": 1e-3, "atol": max(1e-4, 4e-6 * float(np.abs(want).max()))}
    np.testing.assert_allclose(got[1], want, **tol)
    np.testing.assert_array_equal(got[1], got[0])
    assert by_channel_blocks(conv_geom(spec), 2) == by_channels
