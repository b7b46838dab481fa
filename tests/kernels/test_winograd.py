"""Winograd F(4x4, 3x3): the channel-block split for few tiles, against onnxruntime."""
from __future__ import annotations

import numpy as np
import pytest

from omrt.kernels import TensorSpec, prepack
from omrt.kernels.conv_common import conv_geom
from omrt.kernels.winograd import by_channel_blocks
from tests.kernels.test_conv import make_spec, ort_run, run_in_view


@pytest.mark.parametrize("batch,hw", [(1, (16, 16)), (1, (14, 14)), (1, (15, 18)), (2, (14, 14)), (3, (9, 7))])
@pytest.mark.parametrize("bias", [True, False])
def test_few_tiles_split_by_output_channels(kernel_paths, two_threads, small_winograd, batch: int, hw, bias: bool) -> None:
    """Few tiles in the batch: each thread takes a block of output channels after an input
    transform split by input channels; bias, residual and Relu land on each block (exact and
    partial edge tiles, one image or several)."""
    rng = np.random.default_rng(12)
    x = rng.standard_normal((batch, 32, *hw), dtype=np.float32)
    w = rng.standard_normal((80, 32, 3, 3), dtype=np.float32) / 10
    b = rng.standard_normal(80, dtype=np.float32)
    ins = [x, w, b] if bias else [x, w]
    attrs = {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}
    conv = ort_run("Conv", ins, attrs)[0]
    res = rng.standard_normal(conv.shape, dtype=np.float32)
    want = np.maximum(conv + res, 0)

    consts = {1: w, 2: b} if bias else {1: w}
    spec = make_spec("Conv", ins, [want], dict(attrs, _activation="Relu", _residual=1), consts)
    packed = prepack(spec)
    assert packed is not None and packed[0].get("_winograd")
    spec.attrs.update(packed[0])
    spec.consts.update(packed[1])
    spec.inputs[1] = TensorSpec(packed[1][1].shape, packed[1][1].dtype)
    assert by_channel_blocks(conv_geom(spec), 2)
    operands = [x, packed[1][1]] + ([b] if bias else [])
    spec.inputs.append(TensorSpec(res.shape, res.dtype))
    got = run_in_view(spec, operands + [res])
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-5 * float(np.abs(want).max()))


def test_streamed_weights_split_by_output_channels_at_any_tile_count(two_threads, small_winograd, monkeypatch) -> None:
    """Weights too large for the cache go by output-channel blocks whatever the tile count, so each
    thread reads only its rows of them (here 'too large' is lowered to fit a small conv)."""
    from omrt.kernels import winograd

    monkeypatch.setattr(winograd, "STREAMED_WEIGHT_BYTES", 1024)
    spec, operands, want = _winograd_relu_conv(13, (2, 32, 27, 26))
    g = conv_geom(spec)
    assert g.n * 7 * 7 > winograd.CHANNEL_SPLIT_MAX_TILES and by_channel_blocks(g, 2)
    got = run_in_view(spec, operands)
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-5 * float(np.abs(want).max()))


def _winograd_relu_conv(seed: int, x_shape: tuple[int, ...]):
    """(spec, operands, expected output) of a 3x3 conv with 64 outputs, bias and Relu, packed for
    Winograd, the expected output from onnxruntime."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape, dtype=np.float32)
    w = rng.standard_normal((64, x_shape[1], 3, 3), dtype=np.float32) / 10
    b = rng.standard_normal(64, dtype=np.float32)
    attrs = {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}
    want = np.maximum(ort_run("Conv", [x, w, b], attrs)[0], 0)
    spec = make_spec("Conv", [x, w, b], [want], dict(attrs, _activation="Relu"), {1: w, 2: b})
    packed = prepack(spec)
    assert packed is not None
    spec.attrs.update(packed[0])
    spec.consts.update(packed[1])
    spec.inputs[1] = TensorSpec(packed[1][1].shape, packed[1][1].dtype)
    return spec, [x, packed[1][1], b], want


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("batch,hw", [(5, (13, 10)), (1, (28, 22))])
def test_runs_of_tile_bands_share_scratch(kernel_paths, small_winograd, kernel_pool, monkeypatch, threads: int,
                                          batch: int, hw) -> None:
    """Many tile bands on one or two threads: each thread runs several bands in turn in the same
    scratch, and every band (uneven ones included) lands in its own part of the output."""
    from omrt.kernels import winograd

    kernel_pool(threads)
    monkeypatch.setattr(winograd, "WINO_TASK_COLS", 4)
    monkeypatch.setattr(winograd, "MIN_PARALLEL_FLOPS", 0.0)
    spec, operands, want = _winograd_relu_conv(14, (batch, 32, *hw))
    g = conv_geom(spec)
    tasks = winograd.wino_tasks(g, threads)
    assert not by_channel_blocks(g, threads) and len(tasks) > 2 * threads
    got = run_in_view(spec, operands)
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-5 * float(np.abs(want).max()))


@pytest.mark.parametrize("batch,hw,threads", [(1, 28, 2), (1, 56, 3), (5, 13, 2), (3, 14, 2), (8, 7, 1)])
def test_task_runs_stay_in_their_own_tiles(batch: int, hw: int, threads: int) -> None:
    """Each run's scratch (from its first task's tiles, as large as its largest task) lies within
    the tiles its own tasks own, so runs on different threads never share scratch."""
    from omrt.kernels.winograd import task_runs, wino_tasks, wino_tiles

    x = np.zeros((batch, 32, hw, hw), np.float32)
    spec = make_spec("Conv", [x, np.zeros((64, 32, 3, 3), np.float32)], [np.zeros((batch, 64, hw, hw), np.float32)],
                     {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]})
    g = conv_geom(spec)
    th, tw = wino_tiles(g)
    tasks = wino_tasks(g, threads)
    runs = task_runs(tasks, threads, th, tw)
    assert len(runs) == min(len(tasks), threads)
    assert [lo for lo, _, _, _ in runs[1:]] == [hi for _, hi, _, _ in runs[:-1]] and runs[-1][1] == len(tasks)
    for lo, hi, col0, cols in runs:
        n0, _, r0, _ = tasks[lo]
        _, n1, _, r1 = tasks[hi - 1]
        assert col0 == n0 * th * tw + r0 * tw and col0 + cols <= (n1 - 1) * th * tw + r1 * tw


@pytest.mark.parametrize("start,stop", [(0, 700), (130, 641), (512, 513), (5, 5)])
def test_compiled_transforms_match_kronecker_matrices(start: int, stop: int) -> None:
    """B^T d B and A^T M A by separable passes equal the Kronecker-matrix products, on exactly the
    columns asked for (chunk edges, a single column, none)."""
    from omrt.kernels import jit, winograd_jit
    from omrt.kernels.winograd import _WINO_IN, _WINO_OUT

    if not jit.enabled():
        pytest.skip("numba is not available")
    rng = np.random.default_rng(21)
    d = rng.standard_normal((36, 700), dtype=np.float32)
    v = np.full((36, 700), np.nan, dtype=np.float32)
    winograd_jit.transform_in(d, v, start, stop)
    np.testing.assert_allclose(v[:, start:stop], (_WINO_IN @ d.astype(np.float64))[:, start:stop], rtol=1e-5, atol=1e-5)
    assert np.isnan(v[:, :start]).all() and np.isnan(v[:, stop:]).all()
    o = np.full((16, 700), np.nan, dtype=np.float32)
    winograd_jit.transform_out(d, o, start, stop)
    np.testing.assert_allclose(o[:, start:stop], (_WINO_OUT @ d.astype(np.float64))[:, start:stop], rtol=1e-5, atol=1e-4)
    assert np.isnan(o[:, :start]).all() and np.isnan(o[:, stop:]).all()


def _tiles(buf: np.ndarray, n0: int, ni: int, r0: int, rb: int, tw: int, c0: int, c1: int):
    """(column, the 6x6 tiles of channels c0:c1 there as (channels, 36)) for every tile of images
    n0.. and tile rows r0.. of the padded images, in the transforms' column order."""
    for n in range(ni):
        for r in range(rb):
            for t in range(tw):
                tile = buf[n0 + n, c0:c1, 4 * (r0 + r):4 * (r0 + r) + 6, 4 * t:4 * t + 6]
                yield (n * rb + r) * tw + t, tile.reshape(c1 - c0, 36)


@pytest.mark.parametrize("n0,ni,r0,rb,c0,c1", [(0, 2, 0, 3, 0, 5), (1, 1, 1, 2, 2, 4), (0, 1, 2, 1, 4, 5)])
def test_tiles_read_where_they_lie(n0: int, ni: int, r0: int, rb: int, c0: int, c1: int) -> None:
    """For just the images, tile rows and channels asked, of each 6x6 tile (rows 4r.., columns
    4t..) of the padded images: transform_in_tiles writes B^T d B in transform_in's layout, and
    gather_tiles puts element (a, b) in row 6a + b (transform_in's input)."""
    from omrt.kernels import jit, winograd_jit
    from omrt.kernels.winograd import _WINO_IN

    if not jit.enabled():
        pytest.skip("numba is not available")
    tw, c = 3, 5
    buf = np.random.default_rng(22).standard_normal((2, c, 4 * 3 + 2, 4 * tw + 2), dtype=np.float32)
    v = np.full((36, c, ni * rb * tw), np.nan, dtype=np.float32)
    d = v.copy()
    winograd_jit.transform_in_tiles(buf, v, n0, ni, r0, rb, tw, c0, c1)
    winograd_jit.gather_tiles(buf, d, n0, ni, r0, rb, tw, c0, c1)
    for col, tiles in _tiles(buf, n0, ni, r0, rb, tw, c0, c1):
        np.testing.assert_allclose(v[:, c0:c1, col], _WINO_IN @ tiles.T.astype(np.float64), rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(d[:, c0:c1, col], tiles.T)
    for out in (v, d):
        assert np.isnan(out[:, :c0]).all() and np.isnan(out[:, c1:]).all()


@pytest.mark.parametrize("act,params", [("Relu", []), ("Clip", [-0.2, 0.3]), ("LeakyRelu", [0.2]),
                                        ("Sigmoid", []), (None, [])])
@pytest.mark.parametrize("hw", [(16, 16), (13, 10)])
def test_epilogue_on_the_way_out(kernel_paths, small_winograd, act, params, hw) -> None:
    """Bias, residual and each activation land on exact and partial edge tiles alike, whether the
    compiled move into the output applies them or numpy's passes do (Sigmoid)."""
    from omrt.kernels.epilogue import apply_activation

    rng = np.random.default_rng(31)
    x = rng.standard_normal((2, 32, *hw), dtype=np.float32)
    w = rng.standard_normal((64, 32, 3, 3), dtype=np.float32) / 10
    b = rng.standard_normal(64, dtype=np.float32)
    attrs = {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}
    conv = ort_run("Conv", [x, w, b], attrs)[0]
    res = rng.standard_normal(conv.shape, dtype=np.float32)
    want = conv + res
    apply_activation(want, act, params)
    spec = make_spec("Conv", [x, w, b, res], [want],
                     dict(attrs, _activation=act, _activation_params=params, _residual=1), {1: w, 2: b})
    packed = prepack(spec)
    assert packed is not None and packed[0].get("_winograd")
    spec.attrs.update(packed[0])
    spec.consts.update(packed[1])
    spec.inputs[1] = TensorSpec(packed[1][1].shape, packed[1][1].dtype)
    got = run_in_view(spec, [x, spec.consts[1], b, res])
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("cin,cout,packed", [(256, 256, True), (128, 512, True), (64, 256, True), (96, 128, True),
                                             (32, 256, False), (128, 32, False)])
def test_packed_gemms_from_64_channels(cin: int, cout: int, packed: bool) -> None:
    from omrt.kernels.winograd import packed_gemm_wins

    x, y = np.zeros((1, cin, 14, 14), np.float32), np.zeros((1, cout, 14, 14), np.float32)
    w = np.zeros((cout, cin, 3, 3), np.float32)
    spec = make_spec("Conv", [x, w], [y], {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}, {1: w})
    assert packed_gemm_wins(conv_geom(spec)) is packed
