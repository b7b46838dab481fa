"""The compiled window loops against a plain numpy reference, over random window geometry."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omrt.kernels import jit
from omrt.kernels.window_jit import columns_same3x3, depthwise_planes, depthwise_same3x3, pool_planes

pytestmark = pytest.mark.skipif(not jit.enabled(), reason="numba is not available")


def reference_windows(x: np.ndarray, out_hw, kernel, strides, dilations, pads, fill: float) -> np.ndarray:
    """(P, KH*KW, OH, OW): every tap's input for every output, `fill` outside the plane."""
    p, h, w = x.shape
    (oh, ow), (kh, kw), (sh, sw), (dh, dw), (pt, pl) = out_hw, kernel, strides, dilations, pads
    rows = (oh - 1) * sh + (kh - 1) * dh + 1
    cols = (ow - 1) * sw + (kw - 1) * dw + 1
    padded = np.full((p, max(rows, pt + h), max(cols, pl + w)), fill, dtype=x.dtype)
    padded[:, pt:pt + h, pl:pl + w] = x
    taps = [padded[:, i * dh:i * dh + (oh - 1) * sh + 1:sh, j * dw:j * dw + (ow - 1) * sw + 1:sw]
            for i in range(kh) for j in range(kw)]
    return np.stack(taps, axis=1)


@st.composite
def geometries(draw):
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    strides = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilations = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    pads = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    size = (draw(st.integers(1, 17)), draw(st.integers(1, 17)))
    out = []
    for n, k, s, d, pb in zip(size, kernel, strides, dilations, pads):
        # any end pad up to the kernel's reach, as explicit pads or ceil_mode give
        span = n + pb + draw(st.integers(0, 2)) - (k - 1) * d - 1
        if span < 0:
            span = 0
        out.append(span // s + 1)
    return size, tuple(out), kernel, strides, dilations, pads


@settings(max_examples=150, deadline=None)
@given(geom=geometries(), planes=st.integers(1, 5), first=st.integers(0, 4), seed=st.integers(0, 2**16))
def test_depthwise_planes_match_reference(geom, planes: int, first: int, seed: int) -> None:
    size, out, kernel, strides, dilations, pads = geom
    rng = np.random.default_rng(seed)
    channels = 5
    x = rng.standard_normal((planes,) + size, dtype=np.float32)
    w = rng.standard_normal((channels, kernel[0] * kernel[1]), dtype=np.float32)
    b = rng.standard_normal(channels, dtype=np.float32)
    y = np.full((planes,) + out, np.nan, dtype=np.float32)
    depthwise_planes(x, w, b, y, first, *kernel, *strides, *dilations, *pads)
    taps = reference_windows(x, out, kernel, strides, dilations, pads, 0.0)
    ch = (first + np.arange(planes)) % channels
    want = np.einsum("pkhw,pk->phw", taps.astype(np.float64), w[ch].astype(np.float64)) + b[ch, None, None]
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


@settings(max_examples=150, deadline=None)
@given(geom=geometries(), planes=st.integers(1, 4), seed=st.integers(0, 2**16),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_pool_planes_match_reference(geom, planes: int, seed: int, dtype) -> None:
    size, out, kernel, strides, dilations, pads = geom
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((planes,) + size).astype(dtype)
    y = np.empty((planes,) + out, dtype=dtype)
    pool_planes(x, y, *kernel, *strides, *dilations, *pads, True, np.ones((1, 1), dtype))
    np.testing.assert_array_equal(y, reference_windows(x, out, kernel, strides, dilations, pads, -np.inf).max(axis=1))
    scale = rng.uniform(0.1, 1.0, out).astype(dtype)
    pool_planes(x, y, *kernel, *strides, *dilations, *pads, False, scale)
    want = reference_windows(x, out, kernel, strides, dilations, pads, 0.0).sum(axis=1) * scale
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


def test_max_pool_keeps_nan_and_inf_like_numpy() -> None:
    """NaN anywhere in a window wins, whichever tap sees it first; -inf and +inf compare as numbers."""
    x = np.zeros((1, 4, 4), dtype=np.float32)
    x[0, 0, 0] = np.nan      # first tap of window (0, 0)
    x[0, 1, 3] = np.nan      # last tap of window (0, 1)
    x[0, 2, 0] = np.inf
    x[0, 3, 3] = -np.inf
    y = np.empty((1, 2, 2), dtype=np.float32)
    pool_planes(x, y, 2, 2, 2, 2, 1, 1, 0, 0, True, np.ones((1, 1), np.float32))
    want = np.maximum.reduce(reference_windows(x, (2, 2), (2, 2), (2, 2), (1, 1), (0, 0), -np.inf), axis=1)
    np.testing.assert_array_equal(y, want)
    assert np.isnan(y[0, 0, 0]) and np.isnan(y[0, 0, 1]) and y[0, 1, 0] == np.inf and y[0, 1, 1] == 0


def test_window_wholly_in_padding() -> None:
    """A window that reads only padding gives the reduction's identity: -inf, 0, or the bias."""
    x = np.ones((1, 1, 1), dtype=np.float32)
    y = np.empty((1, 1, 3), dtype=np.float32)
    pool_planes(x, y, 1, 1, 1, 2, 1, 1, 0, 2, True, np.ones((1, 1), np.float32))
    np.testing.assert_array_equal(y, [[[-np.inf, 1, -np.inf]]])
    w = np.full((1, 1), 2.0, dtype=np.float32)
    depthwise_planes(x, w, np.full(1, 0.5, np.float32), y, 0, 1, 1, 1, 2, 1, 1, 0, 2)
    np.testing.assert_array_equal(y, [[[0.5, 2.5, 0.5]]])


def same_3x3(x: np.ndarray, w: np.ndarray, b: np.ndarray, first: int = 0, last: int | None = None) -> np.ndarray:
    """depthwise_same3x3 over planes first:last of x (P, H, W); the other planes stay NaN."""
    planes, h, wd = x.shape
    column = np.arange(h * wd) % wd
    y = np.full(x.shape, np.nan, dtype=x.dtype)
    depthwise_same3x3(x.reshape(-1), w, b, y.reshape(-1), h, wd, first, planes if last is None else last,
                      (column != 0).astype(np.uint8), (column != wd - 1).astype(np.uint8))
    return y


@settings(max_examples=100, deadline=None)
@given(height=st.integers(1, 20), width=st.integers(1, 20), planes=st.integers(1, 6), seed=st.integers(0, 2**16))
def test_depthwise_same3x3_equals_the_padded_loop(height: int, width: int, planes: int, seed: int) -> None:
    """Same terms in the same order as depthwise_planes with 3x3 taps and one pixel of padding."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((planes, height, width), dtype=np.float32)
    w = rng.standard_normal((3, 9), dtype=np.float32)
    b = rng.standard_normal(3, dtype=np.float32)
    want = np.empty_like(x)
    depthwise_planes(x, w, b, want, 0, 3, 3, 1, 1, 1, 1, 1, 1)
    np.testing.assert_array_equal(same_3x3(x, w, b), want)


def test_depthwise_same3x3_plane_range() -> None:
    """Only planes first:last are written, each with channel p % C, reading its neighbours' rows never."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 4, 6), dtype=np.float32)
    w = rng.standard_normal((2, 9), dtype=np.float32)
    b = rng.standard_normal(2, dtype=np.float32)
    y = same_3x3(x, w, b, 2, 4)
    assert np.isnan(y[:2]).all() and np.isnan(y[4:]).all()
    want = np.empty_like(x)
    depthwise_planes(x, w, b, want, 0, 3, 3, 1, 1, 1, 1, 1, 1)
    np.testing.assert_array_equal(y[2:4], want[2:4])


def test_depthwise_same3x3_keeps_row_edges_apart() -> None:
    """inf and NaN at the end of a row reach only their own window, not the next row's first output
    (which reads that element's neighbour in the flat array), nor the neighbouring planes."""
    x = np.zeros((3, 4, 4), dtype=np.float32)
    x[1, 1, 3] = np.inf       # last column: the flat successor is (2, 0)
    x[1, 2, 0] = np.nan       # first column: the flat predecessor is (1, 3)
    w = np.ones((1, 9), dtype=np.float32)
    y = same_3x3(x, w, np.zeros(1, np.float32))
    taps = reference_windows(x, (4, 4), (3, 3), (1, 1), (1, 1), (1, 1), 0.0)
    np.testing.assert_array_equal(y, taps.sum(axis=1))
    assert np.isfinite(y[0]).all() and np.isfinite(y[2]).all()
    assert np.isfinite(y[1, 0, 0]) and np.isfinite(y[1, 3, 3])


def test_depthwise_same3x3_padding_times_inf_weight() -> None:
    """An infinite weight times a padded zero is NaN, as zero padding gives in the reference."""
    x = np.ones((1, 3, 3), dtype=np.float32)
    w = np.zeros((1, 9), dtype=np.float32)
    w[0, 0] = np.inf          # top-left tap: padding for the first row and column
    y = same_3x3(x, w, np.zeros(1, np.float32))
    assert np.isnan(y[0, 0]).all() and np.isnan(y[0, :, 0]).all()
    assert (y[0, 1:, 1:] == np.inf).all()


def columns(x: np.ndarray) -> np.ndarray:
    """columns_same3x3 of x (C, H, W) as (C, 9, H, W)."""
    c, h, w = x.shape
    column = np.arange(h * w) % w
    cols = np.full((c, 9, h, w), np.nan, dtype=np.float32)
    columns_same3x3(x.reshape(-1), cols.reshape(-1), h, w, (column != 0).astype(np.uint8),
                    (column != w - 1).astype(np.uint8), 0, h * w)
    return cols


@settings(max_examples=60, deadline=None)
@given(height=st.integers(1, 16), width=st.integers(1, 16), channels=st.integers(1, 5), seed=st.integers(0, 2**16))
def test_columns_same3x3_are_the_padded_windows(height: int, width: int, channels: int, seed: int) -> None:
    x = np.random.default_rng(seed).standard_normal((channels, height, width), dtype=np.float32)
    want = reference_windows(x, (height, width), (3, 3), (1, 1), (1, 1), (1, 1), 0.0)
    np.testing.assert_array_equal(columns(x), want)


def test_columns_same3x3_keep_row_edges_apart() -> None:
    """A NaN at a row's end lands only in the taps that really read it, never in the next row's."""
    x = np.zeros((2, 3, 4), dtype=np.float32)
    x[0, 1, 3] = np.nan
    x[1, 0, 0] = np.inf
    cols = columns(x)
    np.testing.assert_array_equal(cols, reference_windows(x, (3, 4), (3, 3), (1, 1), (1, 1), (1, 1), 0.0))
    assert np.isnan(cols).sum() == 6 and np.isinf(cols).sum() == 4
