"""2x2 stride-2 average pooling in one IR pass (omrt.kernels.avgpool_jit) against numpy, and the
AveragePool ops that take it against onnxruntime."""
from __future__ import annotations

import numpy as np
import pytest

from omrt.kernels import avgpool_jit, build_kernel
from omrt.kernels.pool import _window_2s2, pool_geom
from tests.kernels.test_conv import make_spec, ort_run, run_in_view

pytestmark = pytest.mark.skipif(not avgpool_jit.available(), reason="no compiled IR kernels on this host")


def _reference(x: np.ndarray) -> np.ndarray:
    planes, h, w = x.shape
    oh, ow = h // 2, w // 2
    return x[:, :2 * oh, :2 * ow].reshape(planes, oh, 2, ow, 2).mean(axis=(2, 4), dtype=np.float64)


# DenseNet's transitions, odd sides (the last row and column dropped), rows over two vectors
@pytest.mark.parametrize("shape", [(3, 56, 56), (2, 28, 28), (4, 14, 14), (2, 7, 7), (2, 5, 9), (1, 70, 66),
                                   (1, 2, 2)])
def test_matches_numpy_with_nan_and_infinities(shape) -> None:
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    x[0, 0, 0] = np.nan
    x[-1, -1, 0] = np.inf
    y = np.full((shape[0], shape[1] // 2, shape[2] // 2), 7.0, np.float32)
    avgpool_jit.avgpool2s2(x, y)
    np.testing.assert_allclose(y, _reference(x), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("hw", [(56, 56), (15, 20)])
def test_average_pool_ops_take_it_and_match_onnxruntime(two_threads, hw) -> None:
    x = np.random.default_rng(1).standard_normal((2, 256) + hw).astype(np.float32)
    attrs = {"kernel_shape": [2, 2], "strides": [2, 2]}
    want = ort_run("AveragePool", [x], attrs)[0]
    spec = make_spec("AveragePool", [x], [want], attrs)
    assert _window_2s2(pool_geom(spec), np.float32)
    np.testing.assert_allclose(run_in_view(spec, [x]), want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("attrs", [{"pads": [0, 0, 1, 1]}, {"ceil_mode": 1}, {"strides": [1, 1]}])
def test_other_windows_keep_the_general_loop(attrs) -> None:
    x = np.zeros((1, 4, 9, 9), np.float32)
    attrs = {"kernel_shape": [2, 2], "strides": [2, 2], **attrs}
    want = ort_run("AveragePool", [x], attrs)[0]
    assert not _window_2s2(pool_geom(make_spec("AveragePool", [x], [want], attrs)), np.float32)


def test_a_view_into_a_larger_buffer_goes_the_general_way() -> None:
    whole = np.random.default_rng(2).standard_normal((2, 64, 28, 28)).astype(np.float32)
    x = whole[:, 8:40]
    attrs = {"kernel_shape": [2, 2], "strides": [2, 2]}
    want = ort_run("AveragePool", [np.ascontiguousarray(x)], attrs)[0]
    spec = make_spec("AveragePool", [np.ascontiguousarray(x)], [want], attrs)
    out = np.empty_like(want)
    build_kernel(spec)([x], [out], np.empty(1 << 20, np.uint8))
    np.testing.assert_allclose(out, want, rtol=1e-6, atol=1e-6)


def test_avx2_width_build_matches_numpy(avx2_width) -> None:
    x = np.random.default_rng(3).standard_normal((2, 37, 41)).astype(np.float32)
    y = np.empty((2, 18, 20), np.float32)
    avgpool_jit.avgpool2s2(x, y)
    np.testing.assert_allclose(y, _reference(x), rtol=1e-6, atol=1e-6)
