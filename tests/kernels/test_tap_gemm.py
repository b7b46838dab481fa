"""Few-output stride-1 convs as one GEMM over all taps and shifted sums, against onnxruntime."""
from __future__ import annotations

from typing import Callable

import numpy as np
import pytest

from omrt.kernels.conv_common import ConvGeom, conv_geom
from omrt.kernels.epilogue import apply_activation
from omrt.kernels.tap_gemm import tap_gemm_eligible
from tests.kernels.test_conv import make_spec, ort_run, run_in_view

CASES = [
    # (N, C, M, spatial, kernel, attrs)
    (1, 128, 32, (14, 14), (3, 3), {"pads": [1, 1, 1, 1]}),
    (2, 16, 8, (9, 11), (3, 2), {"pads": [0, 1, 2, 0]}),
    (1, 24, 20, (10, 10), (3, 3), {"dilations": [2, 1], "pads": [2, 1, 2, 1]}),
    (3, 24, 16, (7, 7), (5, 5), {"auto_pad": "SAME_UPPER"}),
    (4, 128, 32, (14, 14), (3, 3), {"pads": [1, 1, 1, 1]}),   # enough work for the thread pool
    (5, 32, 24, (6, 5), (3, 3), {"pads": [1, 1, 1, 1]}),      # blocks of 3 and 2 images
    (2, 40, 32, (44, 44), (3, 3), {"pads": [1, 1, 1, 1]}),    # partial sums beyond REDUCE_MAX_BYTES
    (1, 40, 32, (60, 60), (3, 3), {"pads": [1, 1, 1, 1]}),    # one image over 2.4 MB of partial sums
]


@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("const_weights", [True, False])
@pytest.mark.parametrize("cfg", CASES)
def test_tap_gemm_matches_onnxruntime(cfg, const_weights: bool, residual: bool) -> None:
    check_path(cfg, tap_gemm_eligible, const_weights, residual)


@pytest.mark.parametrize("cfg", [
    (1, 64, 24, (40, 40), (3, 3), {"pads": [1, 1, 1, 1]}),    # one image in bands, one per thread
    (1, 32, 16, (45, 38), (5, 5), {"pads": [2, 1, 2, 3], "dilations": [1, 2]}),
    (6, 64, 32, (14, 14), (3, 3), {"pads": [1, 1, 1, 1]}),    # image blocks over both threads
])
def test_tap_gemm_on_two_threads(two_threads, cfg) -> None:
    check_path(cfg, tap_gemm_eligible, const_weights=True, residual=True)


def check_path(cfg, eligible: Callable[[ConvGeom], bool], const_weights: bool, residual: bool) -> None:
    """Run a fused Conv + residual + Relu that `eligible` claims, against onnxruntime."""
    n, c, m, sp, k, attrs = cfg
    rng = np.random.default_rng(c + m)
    x = rng.standard_normal((n, c) + sp).astype(np.float32)
    w = rng.standard_normal((m, c) + k).astype(np.float32) * 0.1
    b = rng.standard_normal(m).astype(np.float32)
    attrs = {"kernel_shape": list(k), **attrs}
    plain = ort_run("Conv", [x, w, b], attrs)[0]
    r = rng.standard_normal(plain.shape).astype(np.float32)
    want = plain + r if residual else plain.copy()
    apply_activation(want, "Relu", [])
    fused = dict(attrs, _activation="Relu", _residual=int(residual))
    ins = [x, w, b] + ([r] if residual else [])
    spec = make_spec("Conv", ins, [want], fused, {1: w, 2: b} if const_weights else {})
    assert eligible(conv_geom(spec))
    got = run_in_view(spec, ins)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_more_outputs_than_inputs_keep_im2col() -> None:
    """Inception's 16->32 5x5: 25 partial sums of 32 outputs per position outweigh 400 columns."""
    spec = make_spec("Conv", [np.zeros((8, 16, 28, 28), np.float32), np.zeros((32, 16, 5, 5), np.float32)],
                     [np.zeros((8, 32, 28, 28), np.float32)], {"kernel_shape": [5, 5], "pads": [2, 2, 2, 2]})
    assert not tap_gemm_eligible(conv_geom(spec))


def test_many_outputs_keep_im2col() -> None:
    x = np.zeros((1, 96, 14, 14), np.float32)
    w = np.zeros((128, 96, 3, 3), np.float32)
    spec = make_spec("Conv", [x, w], [np.zeros((1, 128, 14, 14), np.float32)],
                     {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]})
    assert not tap_gemm_eligible(conv_geom(spec))
