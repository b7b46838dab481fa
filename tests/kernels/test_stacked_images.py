"""Small-map convs at batch > 1 as one GEMM over a block of images, against onnxruntime."""
from __future__ import annotations

import numpy as np
import pytest

from omrt.kernels import stacked_images
from omrt.kernels.conv import _stacked
from omrt.kernels.conv_common import conv_geom
from tests.kernels.test_conv import make_spec, ort_run, run_in_view

# (kernel, stride, pads, input size): 1x1 stride 1 (the input is the GEMM operand), 1x1 stride 2
# and 3x3 stride 2 (im2col, padded), 2x2 stride 2 unpadded.
GEOMETRIES = [(1, 1, 0, 7), (1, 2, 0, 13), (3, 2, 1, 14), (2, 2, 0, 12)]


@pytest.fixture
def small_stacks(monkeypatch):
    """Stack small test shapes, and cut a batch into several blocks."""
    monkeypatch.setattr(stacked_images, "STACK_MIN_WEIGHTS", 1)
    monkeypatch.setattr(stacked_images, "STACK_COLS", 64)


@pytest.mark.parametrize("geometry", GEOMETRIES)
@pytest.mark.parametrize("batch", [2, 5])
@pytest.mark.parametrize("threads", [1, 2])
def test_stacked_blocks_match_onnxruntime(kernel_paths, small_stacks, kernel_pool, monkeypatch, geometry,
                                          batch: int, threads: int) -> None:
    """Every image of every block gets its own output, bias, residual and Relu."""
    k, s, pad, hw = geometry
    kernel_pool(threads)
    monkeypatch.setattr(stacked_images, "MIN_PARALLEL_FLOPS", 0.0)
    rng = np.random.default_rng(40 + k + s)
    x = rng.standard_normal((batch, 16, hw, hw), dtype=np.float32)
    w = rng.standard_normal((24, 16, k, k), dtype=np.float32) / 4
    b = rng.standard_normal(24, dtype=np.float32)
    attrs = {"kernel_shape": [k, k], "strides": [s, s], "pads": [pad] * 4}
    conv = ort_run("Conv", [x, w, b], attrs)[0]
    res = rng.standard_normal(conv.shape, dtype=np.float32)
    want = np.maximum(conv + res, 0)
    spec = make_spec("Conv", [x, w, b, res], [want], dict(attrs, _activation="Relu", _residual=1), {1: w, 2: b})
    assert _stacked(conv_geom(spec), False)
    got = run_in_view(spec, [x, w, b, res])
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_one_dimensional_convs(small_stacks) -> None:
    """A strided, padded 1-D conv stacks like a 2-D one."""
    rng = np.random.default_rng(46)
    x = rng.standard_normal((3, 8, 40), dtype=np.float32)
    w = rng.standard_normal((12, 8, 3), dtype=np.float32)
    b = rng.standard_normal(12, dtype=np.float32)
    attrs = {"kernel_shape": [3], "strides": [2], "pads": [1, 1]}
    want = ort_run("Conv", [x, w, b], attrs)[0]
    spec = make_spec("Conv", [x, w, b], [want], attrs, {1: w, 2: b})
    assert _stacked(conv_geom(spec), False)
    np.testing.assert_allclose(run_in_view(spec, [x, w, b]), want, rtol=1e-4, atol=1e-4)


def test_runtime_weights_without_bias(small_stacks) -> None:
    rng = np.random.default_rng(45)
    x = rng.standard_normal((3, 16, 7, 7), dtype=np.float32)
    w = rng.standard_normal((24, 16, 1, 1), dtype=np.float32)
    attrs = {"kernel_shape": [1, 1]}
    want = ort_run("Conv", [x, w], attrs)[0]
    got = run_in_view(make_spec("Conv", [x, w], [want], attrs), [x, w])
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("batch,hw,cin,cout,expect", [
    (4, 7, 512, 2048, True),     # ResNet-50's last stage in a batch lane
    (1, 7, 512, 2048, False),    # one image: nothing to stack
    (4, 14, 256, 1024, False),   # 196 columns per image already
    (4, 7, 1024, 128, False),    # DenseNet's 1x1 on 7x7: too few weights to repay the copies
])
def test_which_convs_stack(batch: int, hw: int, cin: int, cout: int, expect: bool) -> None:
    x = np.zeros((batch, cin, hw, hw), np.float32)
    spec = make_spec("Conv", [x, np.zeros((cout, cin, 1, 1), np.float32)], [np.zeros((batch, cout, hw, hw), np.float32)],
                     {"kernel_shape": [1, 1]})
    assert _stacked(conv_geom(spec), False) is expect
