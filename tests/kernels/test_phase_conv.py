"""Few-channel convs read from stride phases (omrt.kernels.phase_conv) against onnxruntime: stems'
and narrow convs' shapes and their edges (row tails, channel counts off the tile, dilation, uneven
pads), batches, threads, epilogues, run-time bias, float16."""
from __future__ import annotations

import numpy as np
import pytest

from omrt.kernels import build_kernel, phase_conv, workspace_bytes
from omrt.kernels.conv_common import conv_geom, pad_phases
from omrt.kernels.conv import _conv_overwrites
from tests.kernels.test_conv import (
    ATOL, RTOL, _rand, assert_sums_close, make_spec, ort_run, run_in_view, run_over_residual,
)

pytestmark = pytest.mark.skipif(phase_conv._kernel() is None, reason="phase micro-kernel not available here")

# (batch, in channels, out channels, input size, kernel, attrs)
SHAPES = [
    (1, 3, 64, (60, 58), (7, 7), {"strides": [2, 2], "pads": [3, 3, 3, 3]}),
    (2, 3, 24, (45, 61), (3, 3), {"strides": [2, 2], "pads": [1, 1, 1, 1]}),
    (1, 3, 20, (33, 80), (3, 3), {"strides": [2, 2]}),                       # 39 columns: a tail tile
    (1, 1, 9, (17, 33), (3, 3), {"pads": [1, 1, 1, 1]}),                       # stride 1
    (1, 4, 13, (21, 60), (5, 3), {"strides": [3, 2], "pads": [0, 1, 2, 2], "dilations": [1, 2]}),
    (1, 16, 40, (29, 29), (3, 3), {"pads": [1, 1, 1, 1]}),                     # SqueezeNet's expand 3x3
    (2, 24, 32, (20, 28), (5, 5), {"pads": [2, 2, 2, 2]}),                     # Inception's 5x5
    (1, 128, 40, (20, 59), (3, 3), {"strides": [2, 2], "pads": [1, 1, 1, 1]}),  # ResNet's 3x3/2
]
# Narrow rows: one vector's outputs fall in two or three output rows
FLAT_SHAPES = [
    (1, 128, 32, (14, 14), (3, 3), {"pads": [1, 1, 1, 1]}),                    # DenseNet's growth conv
    (1, 128, 20, (7, 7), (3, 3), {"pads": [1, 1, 1, 1]}),                      # channels off the tile
    (2, 16, 48, (14, 14), (5, 5), {"pads": [2, 2, 2, 2]}),
    (1, 64, 72, (13, 13), (3, 3), {"pads": [1, 1, 1, 1]}),
    (1, 3, 9, (15, 21), (3, 3), {"strides": [2, 2], "pads": [1, 0, 1, 1]}),    # phases 11 wide
    (1, 5, 3, (4, 8), (3, 3), {}),                                             # fewer outputs than a vector
]
# Phases over PHASE_CHUNK_BYTES: chunks of output rows
CHUNKED = (1, 128, 24, (56, 56), (3, 3), {"pads": [1, 1, 1, 1]})
# 1x1 unpadded: read where the input lies (stride 1) or from every stride-th pixel
POINTWISE = [
    (1, 40, 20, (9, 30), (1, 1), {}),
    (1, 128, 16, (55, 55), (1, 1), {}),                                        # SqueezeNet's squeeze conv
    (1, 24, 36, (19, 33), (1, 1), {"strides": [2, 2]}),                        # sampled by the IR pass
    (1, 8, 10, (25, 40), (1, 1), {"strides": [3, 2]}),                         # sampled by numpy
    (1, 512, 24, (28, 28), (1, 1), {"strides": [2, 2]}),                       # ResNet's 512->1024 1x1/2
]
# 1x1 unpadded over a batch, shallower than the pixel GEMM takes: image by image
POINTWISE_BATCHES = [
    (3, 64, 128, (14, 14), (1, 1), {}),                                        # 16-channel tiles
    (2, 40, 20, (9, 30), (1, 1), {}),
    (2, 24, 36, (19, 33), (1, 1), {"strides": [2, 2]}),                        # each image sampled in turn
]


def _case(rng, n, c, m, hw, k, attrs, bias_const=True, residual=False, dtype=np.float32):
    ins = [_rand(rng, n, c, *hw), _rand(rng, m, c, *k), _rand(rng, m)]
    attrs = {"kernel_shape": list(k), **attrs}
    want = ort_run("Conv", ins, attrs)[0]
    if residual:
        res = _rand(rng, *want.shape)
        ins.append(res)
        want = np.maximum(want + res, 0)
        attrs = dict(attrs, _activation="Relu", _residual=1)
    ins = [a.astype(dtype) for a in ins]
    consts = {1: ins[1]} | ({2: ins[2]} if bias_const else {})
    return make_spec("Conv", ins, [want.astype(dtype)], attrs, consts), ins, want


@pytest.mark.parametrize("cfg", SHAPES + FLAT_SHAPES + [CHUNKED] + POINTWISE + POINTWISE_BATCHES)
@pytest.mark.parametrize("bias_const", [True, False])
def test_phase_conv_matches_onnxruntime(cfg, bias_const: bool) -> None:
    spec, ins, want = _case(np.random.default_rng(1), *cfg, bias_const=bias_const)
    assert phase_conv.phase_eligible(conv_geom(spec), np.float32, True)
    assert_sums_close(run_in_view(spec, ins), want)


@pytest.mark.parametrize("cfg", [SHAPES[0], SHAPES[1], SHAPES[4], FLAT_SHAPES[0], FLAT_SHAPES[2], CHUNKED,
                                 POINTWISE[1], POINTWISE[2]])
def test_phase_conv_on_two_threads_with_residual(two_threads, monkeypatch, cfg) -> None:
    """Both threads pad a channel range of the phases (as Python tasks for strides the compiled
    pad does not take; a strided 1x1 conv's pixels are sampled on the caller), then take blocks
    of chunks of output rows or, where the phases fit in one chunk, blocks of output channels."""
    monkeypatch.setattr(phase_conv, "MIN_SPLIT_FLOPS", 0.0)
    monkeypatch.setattr(phase_conv, "PAD_SPLIT_BYTES", 0)
    spec, ins, want = _case(np.random.default_rng(2), *cfg, residual=True)
    assert_sums_close(run_in_view(spec, ins), want)


# 1x1 convs over 8 or more panels of POINTWISE_ROWS outputs: tiles of 16 channels x one vector (AVX-512)
SIXTEEN_ROWS = [
    (1, 64, 128, (14, 14), (1, 1), {}),                                      # 196 outputs: ends on half a vector
    (1, 40, 128, (5, 10), (1, 1), {}),                                       # 50: three vectors and two outputs
    (1, 24, 144, (19, 33), (1, 1), {"strides": [2, 2]}),                     # sampled pixels, 10 x 17
    (1, 256, 128, (56, 56), (1, 1), {}),                                     # chunks of output rows
]


def test_tile_shape_takes_sixteen_rows_for_pointwise_convs_of_eight_panels() -> None:
    def geom(m: int, kernel: int, pads: list[int]):
        x, w = np.zeros((1, 32, 14, 14), np.float32), np.zeros((m, 32, kernel, kernel), np.float32)
        out = 14 + sum(pads) // 2 - kernel + 1
        return conv_geom(make_spec("Conv", [x, w], [np.zeros((1, m, out, out), np.float32)],
                                   {"kernel_shape": [kernel] * 2, "pads": pads}, {1: w}))

    assert phase_conv.tile_shape(geom(128, 1, [0] * 4), 16) == (16, 1)
    assert phase_conv.tile_shape(geom(136, 1, [0] * 4), 16) == (8, 2)      # not a multiple of 16
    assert phase_conv.tile_shape(geom(112, 1, [0] * 4), 16) == (8, 2)      # seven panels
    assert phase_conv.tile_shape(geom(128, 3, [1] * 4), 16) == (8, 2)      # a 3x3 conv
    assert phase_conv.tile_shape(geom(128, 1, [0] * 4), 8) == (4, 2)       # AVX2


@pytest.mark.parametrize("cfg", SIXTEEN_ROWS)
@pytest.mark.parametrize("threads", [1, 2])
def test_pointwise_tiles_of_sixteen_channels(kernel_pool, monkeypatch, cfg, threads: int) -> None:
    """Each panel of 16 channels stores every output of its tiles, the last one narrower, with the
    residual and clamp, on one thread or two (blocks of panels, or of chunks of rows)."""
    kernel_pool(threads)
    monkeypatch.setattr(phase_conv, "MIN_SPLIT_FLOPS", 0.0)
    spec, ins, want = _case(np.random.default_rng(13), *cfg, residual=True)
    assert phase_conv.phase_eligible(conv_geom(spec), np.float32, True)
    assert_sums_close(run_in_view(spec, ins), want)


@pytest.mark.parametrize("cfg", [SHAPES[1], CHUNKED, POINTWISE[0], POINTWISE[2], SIXTEEN_ROWS[0], *POINTWISE_BATCHES])
@pytest.mark.parametrize("threads", [1, 2])
def test_output_in_the_residuals_bytes(kernel_pool, monkeypatch, cfg, threads: int) -> None:
    """The compiler may give a phase conv with a residual and Relu the residual's bytes for its
    output: the kernel reads each residual element just before it writes the output there."""
    kernel_pool(threads)
    monkeypatch.setattr(phase_conv, "MIN_SPLIT_FLOPS", 0.0)
    spec, ins, want = _case(np.random.default_rng(5), *cfg, residual=True)
    assert _conv_overwrites(spec) == (3,)
    got = run_over_residual(spec, ins)
    assert_sums_close(got, want)


@pytest.mark.parametrize("width", [33, 36, 40, 41, 48, 49, 63, 64])
@pytest.mark.parametrize("residual", [False, True])
def test_last_tile_of_each_width_stores_every_output(width: int, residual: bool) -> None:
    """The flat row's last few outputs go to a tile of half a vector, of one, or the full one
    (with AVX-512: 1-8, 9-16 and 17-32 left); each stores every output it holds, with the
    residual and clamp, and nothing past the row."""
    cfg = (1, 24, 20, (1, width), (1, 1), {})
    spec, ins, want = _case(np.random.default_rng(width), *cfg, residual=residual)
    assert phase_conv.phase_eligible(conv_geom(spec), np.float32, True)
    assert_sums_close(run_in_view(spec, ins), want)


@pytest.mark.parametrize("cfg", [(1, 64, 40, (14, 14), (1, 1), {}), (1, 48, 24, (7, 7), (1, 1), {}),
                                 (1, 32, 16, (14, 14), (3, 3), {"pads": [1, 1, 1, 1]})])
def test_small_maps_end_on_a_narrow_tile(cfg) -> None:
    """14x14 and 7x7 maps, whose flat rows end 4 and 17 outputs past a full tile."""
    spec, ins, want = _case(np.random.default_rng(9), *cfg, residual=True)
    assert_sums_close(run_in_view(spec, ins), want)


@pytest.mark.parametrize("flat", [0, 1])
@pytest.mark.parametrize("cfg", [(1, 64, 40, (14, 14), (1, 1), {}), (1, 40, 24, (9, 30), (1, 1), {}),
                                 (1, 16, 8, (5, 5), (1, 1), {})])
def test_rows_without_gaps_store_whole_vectors(monkeypatch, cfg, flat: int) -> None:
    """1x1 stride-1 convs' rows have no gap between them: their tiles store each vector whole
    (FLAT_TILES) or split at the rows as other convs' tiles do; both store every output once, with
    the residual and clamp."""
    monkeypatch.setattr(phase_conv, "FLAT_TILES", flat)
    spec, ins, want = _case(np.random.default_rng(11), *cfg, residual=True)
    assert_sums_close(run_in_view(spec, ins), want)


@pytest.mark.parametrize("cfg", [SHAPES[5], SHAPES[7], POINTWISE[0], POINTWISE[2]])
def test_phase_conv_runs_again_on_the_same_buffers(cfg) -> None:
    """Run again on the buffers it was last set up for (as a loaded model does), the conv pads the
    input as it is now; handed other buffers, it writes those."""
    rng = np.random.default_rng(6)
    spec, ins, want = _case(rng, *cfg, residual=True)
    kernel = build_kernel(spec)
    scratch = np.empty(workspace_bytes(spec), np.uint8)
    out = np.empty_like(want)
    tol = {"rtol": RTOL, "atol": max(ATOL, 2e-6 * np.abs(want).max())}
    kernel(ins, [out], scratch)
    np.testing.assert_allclose(out, want, **tol)
    ins[0][...] = _rand(rng, *ins[0].shape)
    onnx_attrs = {k: v for k, v in spec.attrs.items() if not k.startswith("_")}
    want2 = np.maximum(ort_run("Conv", ins[:3], onnx_attrs)[0] + ins[3], 0)
    kernel(ins, [out], scratch)
    np.testing.assert_allclose(out, want2, **tol)
    other = np.empty_like(want)
    kernel(ins, [other], scratch)
    np.testing.assert_allclose(other, want2, **tol)


def test_phase_conv_float16() -> None:
    spec, ins, want = _case(np.random.default_rng(3), *SHAPES[1], dtype=np.float16)
    np.testing.assert_allclose(run_in_view(spec, ins).astype(np.float32), want, rtol=2e-2, atol=2e-2)


def test_tap_offsets_address_each_taps_pixel() -> None:
    """Offset of tap (c, kh, kw) + oh * row + ow in the phases is padded pixel
    (oh*sh + kh*dh, ow*sw + kw*dw) of channel c."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 9, 11)).astype(np.float32)
    w = np.zeros((1, 2, 3, 3), np.float32)
    y = np.zeros((1, 1, 4, 4), np.float32)
    attrs = {"kernel_shape": [3, 3], "strides": [2, 3], "pads": [1, 2, 1, 1], "dilations": [2, 1]}
    g = conv_geom(make_spec("Conv", [x[None], w], [y], attrs, {1: w}))
    phases = np.empty(phase_conv.phase_shape(g), np.float32)
    pad_phases(x, phases, g.pb, g.strides)
    padded = np.zeros((2,) + g.pad_sp, np.float32)
    padded[:, 1:10, 2:13] = x
    flat, row = phases.reshape(-1), phases.shape[4]
    for t, off in enumerate(phase_conv.tap_offsets(g)):
        c, kh, kw = np.unravel_index(t, (2, 3, 3))
        for oh in range(4):
            for ow in range(4):
                assert flat[off + oh * row + ow] == padded[c, oh * 2 + kh * 2, ow * 3 + kw]


@pytest.mark.parametrize("c,m,kernel,group,size,batch,eligible", [
    (3, 8, (7, 7), 1, 36, 1, True), (128, 8, (3, 3), 1, 30, 1, True), (129, 8, (3, 3), 1, 30, 1, False),
    (4, 8, (3, 3), 2, 30, 1, False), (16, 8, (5, 5), 1, 31, 1, True),   # 27 output columns: flat rows
    (3, 8, (1, 1), 1, 30, 1, True), (3, 8, (1, 1), 1, 30, 2, True),     # 1x1: image by image
    (512, 64, (1, 1), 1, 28, 2, False),                                 # deep, over a batch: the pixel GEMM's
    (384, 64, (1, 1), 1, 13, 1, True),                                  # deep but small
    (256, 64, (1, 1), 1, 56, 1, True),                                  # deep and large
    (4096, 64, (1, 1), 1, 56, 1, False),                                # past POINTWISE_MAX_CHANNELS: BLAS
    (512, 256, (1, 1), 1, 14, 1, False),                                # the packed kernel's
    (16, 8, (1, 1), 1, 7, 1, False),                                    # rows under MIN_PHASE_COLUMNS
])
def test_phase_eligible(c: int, m: int, kernel, group: int, size: int, batch: int, eligible: bool) -> None:
    x, w = np.zeros((batch, c, size, size), np.float32), np.zeros((m, c // group) + kernel, np.float32)
    y = np.zeros((batch, m, size - kernel[0] + 1, size - kernel[1] + 1), np.float32)
    spec = make_spec("Conv", [x, w], [y], {"kernel_shape": list(kernel), "group": group}, {1: w})
    assert phase_conv.phase_eligible(conv_geom(spec), np.float32, True) is eligible


def test_pointwise_convs_need_no_workspace() -> None:
    """A 1x1 stride-1 conv reads its input where it lies; a strided one holds only its sampled
    pixels."""
    def workspace(stride: int) -> int:
        x, w = np.zeros((1, 16, 20, 20), np.float32), np.zeros((8, 16, 1, 1), np.float32)
        y = np.zeros((1, 8, 20 // stride, 20 // stride), np.float32)
        spec = make_spec("Conv", [x, w], [y], {"kernel_shape": [1, 1], "strides": [stride] * 2}, {1: w})
        return phase_conv.phase_workspace(conv_geom(spec))

    assert workspace(1) == 0
    assert workspace(2) == 16 * 10 * 10 * 4


@pytest.mark.parametrize("act,params", [("Relu", []), ("Clip", [-0.5, 0.25]), (None, [])])
def test_phase_conv_clamps_as_it_stores_and_keeps_nan(act, params) -> None:
    """Relu and Clip applied in the kernel: clamped like numpy, NaN kept where an input was NaN."""
    rng = np.random.default_rng(5)
    x, w, b = _rand(rng, 1, 3, 12, 30), _rand(rng, 5, 3, 3, 3), _rand(rng, 5)
    x[0, 1, 4, 4] = np.nan
    attrs = {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}
    want = ort_run("Conv", [x, w, b], attrs)[0]
    if act == "Relu":
        want = np.maximum(want, 0)
    elif act == "Clip":
        want = np.clip(want, *params)
    spec = make_spec("Conv", [x, w, b], [want], dict(attrs, _activation=act, _activation_params=params), {1: w, 2: b})
    assert phase_conv.phase_eligible(conv_geom(spec), np.float32, True)
    got = run_in_view(spec, [x, w, b])
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
    assert np.isnan(got[0, :, 3:6, 3:6]).all() and np.isnan(got).sum() == 5 * 9


@pytest.mark.parametrize("c,hw,kernel,stride,parts,want", [
    (128, 14, 3, 1, 2, (14, True)),     # DenseNet's 14x14: one chunk, threads on panels
    (128, 28, 3, 1, 2, (28, True)),     # 460 KB of phases still fit
    (128, 56, 3, 1, 2, (14, False)),    # 1.7 MB: four chunks of 14 rows, two per thread
    (3, 224, 7, 2, 2, (56, False)),     # ResNet's stem: two chunks
    (128, 14, 3, 1, 1, (14, False)),    # one thread: one chunk
])
def test_work_split_keeps_a_chunks_phases_in_l2(c: int, hw: int, kernel: int, stride: int, parts: int, want) -> None:
    x, w = np.zeros((1, c, hw, hw), np.float32), np.zeros((32, c, kernel, kernel), np.float32)
    pad = kernel // 2
    out = (hw + 2 * pad - kernel) // stride + 1
    spec = make_spec("Conv", [x, w], [np.zeros((1, 32, out, out), np.float32)],
                     {"kernel_shape": [kernel] * 2, "strides": [stride] * 2, "pads": [pad] * 4}, {1: w})
    g = conv_geom(spec)
    assert phase_conv.work_split(g, 4, parts) == want
    rows, _ = want
    assert phase_conv._chunk_bytes(g, rows) <= phase_conv.PHASE_CHUNK_BYTES


@pytest.mark.parametrize("c,m,hw,packed", [
    (64, 128, 7, True),      # 7x7 fills 77 % of the phase conv's lanes
    (64, 256, 13, False),    # SqueezeNet's: 13x13 fills 85 % (a narrow last tile)
    (96, 208, 14, False),    # Inception-v1's: 14x14 fills 88 %
    (128, 32, 7, False),     # DenseNet's: one panel of outputs
])
def test_one_thread_takes_the_packed_kernel_where_phase_tiles_run_part_empty(c: int, m: int, hw: int,
                                                                              packed: bool) -> None:
    """In a batch lane (kernels built for one thread) such a conv runs on the packed kernel, from
    weights packed at build time, and computes the same."""
    from omrt.kernels import conv as conv_module, packed_gemm
    from omrt.kernels.parallel import serial_kernels

    spec, ins, want = _case(np.random.default_rng(7), 1, c, m, (hw, hw), (3, 3), {"pads": [1, 1, 1, 1]})
    g = conv_geom(spec)
    assert conv_module._packed_over_phase(g, np.float32) is (packed and packed_gemm.available())
    with serial_kernels():
        got = run_in_view(spec, ins)
    assert_sums_close(got, want)
