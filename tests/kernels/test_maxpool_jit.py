"""3x3 stride-2 max pooling in one IR pass (omrt.kernels.maxpool_jit) against numpy, and the
MaxPool ops that take it against onnxruntime."""
from __future__ import annotations

import numpy as np
import pytest

from omrt.kernels import maxpool_jit
from omrt.kernels.pool import _window_3s2, pool_geom
from tests.kernels.test_conv import make_spec, ort_run, run_in_view

pytestmark = pytest.mark.skipif(not maxpool_jit.available(), reason="no compiled IR kernels on this host")


def _reference(x: np.ndarray, top: int, left: int, oh: int, ow: int) -> np.ndarray:
    planes, h, w = x.shape
    buf = np.full((planes, 2 * oh + 1 + h, 2 * ow + 1 + w), -np.inf, np.float32)
    buf[:, top:top + h, left:left + w] = x
    out = np.full((planes, oh, ow), -np.inf, np.float32)
    for a in range(3):
        for b in range(3):
            out = np.maximum(out, buf[:, a:a + 2 * oh:2, b:b + 2 * ow:2])
    return out


# (planes, height, width, top pad, left pad, output height, output width): SqueezeNet's, ResNet's
# (padded), ceil-mode overhangs, rows narrower than one vector, rows over three vectors
SHAPES = [(3, 111, 111, 0, 0, 55, 55), (2, 112, 112, 1, 1, 56, 56), (2, 27, 27, 0, 0, 13, 13),
          (2, 13, 17, 1, 1, 7, 9), (1, 5, 5, 0, 0, 3, 3), (2, 6, 6, 0, 0, 3, 3), (1, 40, 100, 1, 0, 20, 50),
          (1, 9, 9, 2, 2, 6, 6), (1, 3, 1, 0, 0, 1, 1)]


@pytest.mark.parametrize("shape", SHAPES)
def test_matches_numpy_with_nan_and_infinities(shape) -> None:
    planes, h, w, top, left, oh, ow = shape
    x = np.random.default_rng(0).standard_normal((planes, h, w)).astype(np.float32)
    x[0, h // 2, w // 2] = np.nan
    x[-1, -1, -1] = np.nan
    x[0, 0, 0] = np.inf
    x[-1, 0, -1] = -np.inf
    y = np.full((planes, oh, ow), 7.0, np.float32)
    maxpool_jit.maxpool3s2(x, y, top, left)
    np.testing.assert_array_equal(y, _reference(x, top, left, oh, ow))


def test_every_window_must_reach_a_row() -> None:
    assert maxpool_jit.every_window_reads_a_row(5, 3, 0)
    assert not maxpool_jit.every_window_reads_a_row(5, 4, 0)    # the last window starts below the input
    assert not maxpool_jit.every_window_reads_a_row(9, 5, 3)    # the first one ends above it


@pytest.mark.parametrize("attrs,hw", [
    ({"pads": [1, 1, 1, 1]}, (112, 112)),
    ({"pads": [0, 0, 1, 1]}, (28, 28)),
    ({"ceil_mode": 1}, (54, 54)),
    ({"auto_pad": "SAME_UPPER"}, (15, 20)),
])
def test_maxpool_ops_take_it_and_match_onnxruntime(two_threads, attrs, hw) -> None:
    x = np.random.default_rng(1).standard_normal((2, 48) + hw).astype(np.float32)
    attrs = {"kernel_shape": [3, 3], "strides": [2, 2], **attrs}
    want = ort_run("MaxPool", [x], attrs)[0]
    spec = make_spec("MaxPool", [x], [want], attrs)
    assert _window_3s2(pool_geom(spec), np.float32)
    np.testing.assert_array_equal(run_in_view(spec, [x]), want)


def test_a_view_into_a_larger_buffer_goes_the_general_way() -> None:
    """Two images' channel slices of a concat buffer are not contiguous: the general loop runs."""
    from omrt.kernels import build_kernel

    whole = np.random.default_rng(2).standard_normal((2, 64, 27, 27)).astype(np.float32)
    x = whole[:, 16:48]
    attrs = {"kernel_shape": [3, 3], "strides": [2, 2]}
    want = ort_run("MaxPool", [np.ascontiguousarray(x)], attrs)[0]
    spec = make_spec("MaxPool", [np.ascontiguousarray(x)], [want], attrs)
    out = np.empty_like(want)
    build_kernel(spec)([x], [out], np.empty(1 << 20, np.uint8))
    np.testing.assert_array_equal(out, want)


def test_avx2_width_build_matches_numpy(avx2_width) -> None:
    x = np.random.default_rng(3).standard_normal((2, 37, 41)).astype(np.float32)
    y = np.empty((2, 19, 21), np.float32)
    maxpool_jit.maxpool3s2(x, y, 1, 1)
    np.testing.assert_array_equal(y, _reference(x, 1, 1, 19, 21))
