"""Pooling: ONNX node cases and onnxruntime on padding/ceil/dilation/Indices combinations."""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from omrt.kernels import run_op
from tests.kernels.node_cases import cases_for, run_case
from tests.kernels.test_conv import ATOL, RTOL, make_spec, ort_run, run_in_view

OPS = ("MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool")
# Every test builds its kernels both with the compiled window loops and with numpy only.
pytestmark = pytest.mark.usefixtures("kernel_paths")


@pytest.mark.parametrize("name,case", list(cases_for(*OPS)))
def test_node_cases(name: str, case: Any) -> None:
    run_case(case)


POOL_ATTRS = [
    {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]},
    {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1},
    {"kernel_shape": [2, 3], "strides": [2, 1], "pads": [1, 0, 0, 2], "ceil_mode": 1},
    {"kernel_shape": [3, 3], "dilations": [2, 2], "pads": [2, 1, 2, 1]},
    {"kernel_shape": [3, 2], "strides": [2, 2], "auto_pad": "SAME_UPPER"},
    {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_LOWER"},
    {"kernel_shape": [2, 2], "auto_pad": "VALID", "strides": [2, 2]},
    # stride 1 on every axis but the last: all-flat passes (omrt.kernels.separable)
    {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]},
    {"kernel_shape": [3, 3], "strides": [1, 2], "pads": [0, 1, 2, 1], "ceil_mode": 1},
    {"kernel_shape": [2, 3], "dilations": [2, 1], "strides": [1, 3]},
]


@pytest.mark.parametrize("attrs", POOL_ATTRS)
def test_maxpool_with_indices(attrs) -> None:
    x = np.random.default_rng(0).standard_normal((2, 3, 9, 10)).astype(np.float32)
    for order in (0, 1):
        a = dict(attrs, storage_order=order)
        want, want_idx = ort_run("MaxPool", [x], a, n_out=2)
        spec = make_spec("MaxPool", [x], [want, want_idx], a)
        got, idx = run_op(spec, [x])
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(idx, want_idx)
    got = run_in_view(make_spec("MaxPool", [x], [want], attrs), [x])
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("include", [0, 1])
@pytest.mark.parametrize("attrs", POOL_ATTRS)
def test_average_pool(attrs, include: int) -> None:
    if "dilations" in attrs and include:
        pytest.skip("onnxruntime rejects count_include_pad with dilations")
    x = np.random.default_rng(1).standard_normal((2, 3, 9, 10)).astype(np.float32)
    a = dict(attrs, count_include_pad=include)
    want = ort_run("AveragePool", [x], a)[0]
    got = run_in_view(make_spec("AveragePool", [x], [want], a), [x])
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
@pytest.mark.parametrize("shape,attrs", [
    ((1, 256, 64, 64), {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}),             # threaded, all flat
    ((2, 64, 57, 57), {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),  # threaded
    ((1, 4, 6, 7, 8), {"kernel_shape": [3, 2, 3], "pads": [1, 0, 1, 1, 1, 0]}),      # 3-D, all flat
])
def test_pool_large_and_3d(op: str, shape, attrs) -> None:
    x = np.random.default_rng(4).standard_normal(shape).astype(np.float32)
    want = ort_run(op, [x], attrs)[0]
    got = run_in_view(make_spec(op, [x], [want], attrs), [x])
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


WINDOW3_ATTRS = [
    {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]},
    {"kernel_shape": [3, 3], "strides": [2, 2]},
    {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [0, 0, 1, 1]},
    {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1},
    {"kernel_shape": [3, 3], "strides": [1, 2], "pads": [2, 0, 1, 2], "ceil_mode": 1},
]


@pytest.mark.parametrize("include", [0, 1])
@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
@pytest.mark.parametrize("attrs", WINDOW3_ATTRS)
@pytest.mark.parametrize("shape", [(1, 3, 2, 5), (2, 2, 5, 2), (1, 1, 2, 2), (1, 4, 11, 12), (1, 2, 13, 13)])
def test_3x3_pools_from_unpadded_planes(op: str, attrs, shape, include: int) -> None:
    """3x3 pools with strides 1 and 2 reduce without a padded copy; the edges are special cases."""
    if op == "MaxPool" and include:
        pytest.skip("count_include_pad is an AveragePool attribute")
    x = np.random.default_rng(5).standard_normal(shape).astype(np.float32)
    a = dict(attrs, count_include_pad=include) if op == "AveragePool" else attrs
    want = ort_run(op, [x], a)[0]
    got = run_in_view(make_spec(op, [x], [want], a), [x])
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("op", ["GlobalAveragePool", "GlobalMaxPool"])
def test_global_pools_into_views(op: str) -> None:
    x = np.random.default_rng(2).standard_normal((2, 5, 7, 6)).astype(np.float32)
    want = ort_run(op, [x], {})[0]
    np.testing.assert_allclose(run_in_view(make_spec(op, [x], [want], {}), [x]), want, rtol=RTOL, atol=ATOL)


def test_float16_pool() -> None:
    x = np.random.default_rng(3).standard_normal((1, 2, 6, 6)).astype(np.float16)
    attrs = {"kernel_shape": [2, 2], "strides": [2, 2]}
    got = run_in_view(make_spec("AveragePool", [x], [np.empty((1, 2, 3, 3), np.float16)], attrs), [x])
    want = x.astype(np.float32).reshape(1, 2, 3, 2, 3, 2).mean(axis=(3, 5))
    assert got.dtype == np.float16
    np.testing.assert_allclose(got.astype(np.float32), want, rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize("include", [0, 1])
@pytest.mark.parametrize("shape", [(1, 2048, 7, 7), (3, 5, 4, 6), (2, 3, 1, 1)])
def test_average_pool_over_whole_planes(shape, include: int) -> None:
    """A window as large as the unpadded plane is a global mean (the last pool of ResNet/DenseNet)."""
    x = np.random.default_rng(6).standard_normal(shape).astype(np.float32)
    attrs = {"kernel_shape": list(shape[2:]), "count_include_pad": include}
    want = ort_run("AveragePool", [x], attrs)[0]
    got = run_in_view(make_spec("AveragePool", [x], [want], attrs), [x])
    assert got.shape == shape[:2] + (1, 1)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
