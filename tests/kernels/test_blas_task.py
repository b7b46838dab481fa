"""Blocks of output channels as native jobs calling BLAS's sgemm (omrt.kernels.blas_task)."""
from __future__ import annotations

import numpy as np
import pytest

from omrt.kernels import blas_task, parallel
from tests.kernels.test_conv import ATOL, RTOL, _rand, make_spec, ort_run, run_in_view

pytestmark = pytest.mark.skipif(blas_task._kernel() is None, reason="no BLAS sgemm or compiled code found here")


@pytest.mark.parametrize("piece_bytes", [blas_task.PIECE_BYTES, 8192])
@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("lo,hi", [(0.0, np.inf), (-0.5, 0.25), (-np.inf, np.inf)])
def test_blocks_match_numpy_with_bias_residual_and_clamp(two_threads, monkeypatch, residual: bool, lo: float,
                                                         hi: float, piece_bytes: int) -> None:
    """Row blocks of a strided view, the bias then the residual added, clamped, NaN kept; whole, or
    in pieces of columns (four of 32 and one of 22 at 8 KB)."""
    monkeypatch.setattr(blas_task, "PIECE_BYTES", piece_bytes)
    rng = np.random.default_rng(0)
    m, k, n = 200, 96, 150
    assert blas_task.piece_columns(67, n) == (32 if piece_bytes == 8192 else n)
    w = rng.standard_normal((m, k)).astype(np.float32)
    x = rng.standard_normal((k, n + 7)).astype(np.float32)[:, 3:3 + n]   # rows 157 floats apart
    bias = rng.standard_normal(m).astype(np.float32)
    res = rng.standard_normal((m, n)).astype(np.float32) if residual else None
    x[5, 9] = np.nan
    y = np.full((m, n), 7.0, np.float32)
    job = blas_task.ChannelJob(blas_task.job(m, k, n, parallel.split(m, 3)), (lo, hi), m)
    assert job.run(parallel.get_pool(), w, x, y, bias, res)
    want = np.matmul(w, x) + bias[:, None]
    if residual:
        want += res
    want = np.where(np.isnan(want), want, np.clip(want, lo, hi))
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)
    assert np.isnan(y[:, 9]).all() and np.isnan(y).sum() == m


def test_operands_that_do_not_fit_are_left_to_numpy() -> None:
    m, k, n = 8, 4, 6
    job = blas_task.ChannelJob(blas_task.job(m, k, n, [(0, m)]), (0.0, np.inf), m)
    w, y = np.ones((m, k), np.float32), np.zeros((m, n), np.float32)
    x_columns = np.ones((k, 2 * n), np.float32)[:, ::2]             # columns not contiguous
    assert not job.run(parallel.get_pool(), w, x_columns, y, None, None)
    assert not job.run(parallel.get_pool(), w.astype(np.float64), np.ones((k, n)), y, None, None)
    assert not y.any()


def test_a_1x1_conv_split_by_channels_matches_onnxruntime(two_threads, monkeypatch) -> None:
    """ResNet-50's 256->1024 on 14x14 with residual and Relu, kept from the phase conv: blocks of
    channels, natively."""
    from omrt.kernels import phase_conv

    monkeypatch.setattr(phase_conv, "POINTWISE_MAX_CHANNELS", 0)
    runs = []
    real_run = blas_task.ChannelJob.run
    monkeypatch.setattr(blas_task.ChannelJob, "run", lambda self, *a: runs.append(1) or real_run(self, *a))
    rng = np.random.default_rng(1)
    x, w, b = _rand(rng, 1, 256, 14, 14), _rand(rng, 1024, 256, 1, 1), _rand(rng, 1024)
    res = _rand(rng, 1, 1024, 14, 14)
    conv = ort_run("Conv", [x, w, b], {"kernel_shape": [1, 1]})[0]
    want = np.maximum(conv + res, 0)
    attrs = {"kernel_shape": [1, 1], "_activation": "Relu", "_residual": 1}
    spec = make_spec("Conv", [x, w, b, res], [want], attrs, {1: w, 2: b})
    np.testing.assert_allclose(run_in_view(spec, [x, w, b, res]), want, rtol=RTOL,
                               atol=max(ATOL, 2e-6 * np.abs(conv + res).max()))
    assert runs
