"""Convs through the packed micro-kernel (omrt.kernels.packed_conv) against onnxruntime: 1x1 on the
input itself, 3x3 "same" columns from the compiled loop, columns read through offset tables from
the padded or unpadded input, strided 1x1 im2col, bias given at run time, fused epilogues,
float16, threads."""
from __future__ import annotations

import numpy as np
import pytest

from omrt.kernels import TensorSpec, packed_gemm, prepack
from omrt.kernels.conv_common import conv_geom
from omrt.kernels.conv_common import pad_into, windows
from omrt.kernels.packed_conv import gather_tables, packed_eligible, strided_gather
from omrt.kernels.phase_conv import phase_shaped
from omrt.kernels.conv import _conv_overwrites
from tests.kernels.test_conv import (
    ATOL, RTOL, _rand, as_stored, assert_sums_close, make_spec, ort_run, run_in_view, run_over_residual,
)

pytestmark = pytest.mark.skipif(not packed_gemm.available(), reason="packed micro-kernel not available here")

# (input channels, output channels, input size, kernel, attrs): all one image, <= 200 output
# pixels or strided with a deep reduction; 3x3 convs over more inputs than the direct conv over
# stride phases takes
SHAPES = [
    (256, 70, (7, 7), (1, 1), {}),
    (140, 33, (7, 7), (3, 3), {"pads": [1, 1, 1, 1]}),
    (132, 64, (13, 13), (3, 3), {"strides": [2, 2], "pads": [1, 1, 1, 1]}),
    (300, 40, (12, 10), (1, 1), {"strides": [2, 2]}),
    (129, 50, (9, 8), (3, 3), {"pads": [0, 2, 1, 0], "dilations": [1, 2]}),
    (136, 40, (14, 13), (3, 3), {"pads": [1, 1, 1, 1]}),    # 182 columns over a reduction of 1224
    (144, 32, (14, 14), (3, 3), {"pads": [1, 1, 1, 1]}),    # one panel: threads take column pieces
    (128, 70, (31, 29), (3, 3), {"strides": [2, 2], "pads": [1, 0, 1, 1]}),   # 225 columns, any map size
    (40, 64, (23, 23), (5, 5), {"strides": [2, 2]}),        # unpadded: read from the input itself
    (260, 40, (13, 11), (1, 1), {"strides": [2, 2]}),       # odd sizes: every other pixel, the last one too
]


def _spec(rng, c, m, hw, k, attrs, bias_const=True, residual=False, act=None, dtype=np.float32, batch=1):
    ins = [_rand(rng, batch, c, *hw), _rand(rng, m, c, *k), _rand(rng, m)]
    attrs = {"kernel_shape": list(k), **attrs}
    want = ort_run("Conv", ins, attrs)[0]
    if residual:
        res = _rand(rng, *want.shape)
        want = want + res
        ins.append(res)
    if act == "Relu":
        want = np.maximum(want, 0)
    fused = dict(attrs, _activation=act, _residual=int(residual)) if act or residual else attrs
    ins = [a.astype(dtype) for a in ins]
    consts = {1: ins[1]} | ({2: ins[2]} if bias_const else {})
    spec = make_spec("Conv", ins, [want.astype(dtype)], fused, consts)
    as_stored(spec, ins)    # the weights as the compiler stores them
    return spec, ins, want


@pytest.mark.parametrize("cfg", SHAPES)
@pytest.mark.parametrize("bias_const", [True, False])
def test_packed_conv_matches_onnxruntime(kernel_paths, cfg, bias_const: bool) -> None:
    """With the compiled loops on, the packed micro-kernel; with them off, the plain paths on the
    weights unpacked from the stored panels."""
    spec, ins, want = _spec(np.random.default_rng(1), *cfg, bias_const=bias_const)
    assert spec.attrs.get("_packed")
    assert packed_eligible(conv_geom(spec), np.float32, True) is (kernel_paths == "compiled")
    # float32 sums over a thousand terms: both runtimes' rounding grows with the outputs' scale
    assert_sums_close(run_in_view(spec, ins), want)


@pytest.mark.parametrize("cfg", [SHAPES[0], SHAPES[2], (140, 20, (14, 14), (3, 3), {"pads": [1, 1, 1, 1]})])
def test_packed_conv_residual_and_relu_on_two_threads(two_threads, monkeypatch, cfg) -> None:
    """Each thread's block of panels gets the residual and activation on its own rows; with one
    panel (20 outputs), each thread builds and multiplies its own piece of the columns."""
    from omrt.kernels import packed_conv

    monkeypatch.setattr(packed_conv, "MIN_PARALLEL_FLOPS", 0.0)
    spec, ins, want = _spec(np.random.default_rng(2), *cfg, residual=True, act="Relu")
    assert_sums_close(run_in_view(spec, ins), want)


@pytest.mark.parametrize("cfg", [SHAPES[0], SHAPES[2], SHAPES[3]])
@pytest.mark.parametrize("batch", [1, 2])
def test_output_in_the_residuals_bytes(two_threads, monkeypatch, cfg, batch: int) -> None:
    """The compiler may give a packed conv with a residual and Relu the residual's bytes for its
    output: the micro-kernel gathers each residual element just before it stores the output
    there, image by image or for the batch as one product."""
    from omrt.kernels import packed_conv

    monkeypatch.setattr(packed_conv, "MIN_PARALLEL_FLOPS", 0.0)
    spec, ins, want = _spec(np.random.default_rng(6), *cfg, residual=True, act="Relu", batch=batch)
    if not packed_eligible(conv_geom(spec), np.float32, True):
        pytest.skip("not a packed conv at this batch")
    assert _conv_overwrites(spec) == (3,)
    got = run_over_residual(spec, ins)
    assert_sums_close(got, want)


@pytest.mark.parametrize("c,m,phases", [(64, 256, True), (48, 192, True), (160, 320, False)])
def test_small_maps_with_few_inputs_go_to_the_phase_conv_rather_than_winograd(c: int, m: int, phases: bool) -> None:
    """3x3 same convs on 13x13 take the direct conv over stride phases (flat rows) below
    PACKED_OVER_WINOGRAD_INPUTS (96) inputs, on plain weights; above it they go to Winograd, whose
    GEMMs are packed."""
    rng = np.random.default_rng(4)
    x, w = _rand(rng, 1, c, 13, 13), _rand(rng, m, c, 3, 3)   # distinct filters: no repeats to share
    spec = make_spec("Conv", [x, w], [np.zeros((1, m, 13, 13), np.float32)],
                     {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}, {1: w})
    stored = prepack(spec)
    assert (stored is None) is phases
    assert phases or stored[0].get("_packed") and stored[0].get("_winograd")
    assert phase_shaped(conv_geom(spec), np.float32, True) is phases


def test_float16_weights_stay_as_they_are() -> None:
    """float16 convs compute in float32 on plain weights: packing would double their bytes."""
    spec, ins, want = _spec(np.random.default_rng(3), *SHAPES[1], dtype=np.float16)
    assert not spec.attrs.get("_packed") and spec.consts[1].dtype == np.float16
    np.testing.assert_allclose(run_in_view(spec, ins).astype(np.float32), want, rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("n,c,hw,dtype,eligible", [
    (1, 256, (7, 7), np.float32, True),
    (2, 256, (7, 7), np.float32, True),       # a batch on 7x7: one product over every image
    (1, 64, (7, 7), np.float32, False),       # shallow reduction: BLAS wins
    (1, 256, (14, 14), np.float32, False),    # 196 columns need a reduction of 512
    (1, 512, (14, 14), np.float32, True),
    (1, 1024, (14, 14), np.float32, True),
    (1, 1024, (15, 14), np.float32, False),   # too many columns
    (2, 1024, (14, 14), np.float32, False),   # a batch on 14x14: BLAS image by image
    (1, 256, (7, 7), np.float64, False),
    (1, 256, (7, 7), np.float16, False),
])
def test_packed_eligible(n: int, c: int, hw, dtype, eligible: bool) -> None:
    x, w = np.zeros((n, c) + hw, dtype), np.zeros((8, c, 1, 1), dtype)
    spec = make_spec("Conv", [x, w], [np.zeros((n, 8) + hw, dtype)], {"kernel_shape": [1, 1]}, {1: w})
    assert packed_eligible(conv_geom(spec), dtype, True) is eligible


def test_packed_weights_of_the_wrong_shape_are_refused() -> None:
    """A model whose stored panels do not fit the conv (a damaged .om) gets an error at load, not
    a kernel reading past its weights."""
    from omrt.errors import OmrtError
    from omrt.kernels import build_kernel

    spec, ins, _ = _spec(np.random.default_rng(4), *SHAPES[0])
    bad = np.zeros(spec.consts[1].shape[:2] + (spec.consts[1].shape[2] - 1,) + spec.consts[1].shape[3:], np.float32)
    spec.consts[1] = bad
    spec.inputs[1] = TensorSpec(bad.shape, bad.dtype)
    with pytest.raises(OmrtError, match="packed weights"):
        build_kernel(spec)


@pytest.mark.parametrize("act,params", [("Relu", []), ("Clip", [-0.5, 0.25])])
def test_the_kernel_adds_the_residual_and_clamps_as_it_stores(two_threads, monkeypatch, act, params) -> None:
    """The native job's store: residual added, then clamped like numpy, NaN kept where it came in."""
    from omrt.kernels import packed_conv

    monkeypatch.setattr(packed_conv, "MIN_PARALLEL_FLOPS", 0.0)
    rng = np.random.default_rng(6)
    x, w, b = _rand(rng, 1, 512, 7, 7), _rand(rng, 70, 512, 1, 1), _rand(rng, 70)
    res = _rand(rng, 1, 70, 7, 7)
    res[0, 3, 2, 2] = np.nan
    conv = ort_run("Conv", [x, w, b], {"kernel_shape": [1, 1]})[0]
    want = np.maximum(conv + res, 0) if act == "Relu" else np.clip(conv + res, *params)
    attrs = {"kernel_shape": [1, 1], "_activation": act, "_activation_params": params, "_residual": 1}
    spec = make_spec("Conv", [x, w, b, res], [want], attrs, {1: w, 2: b})
    stored = prepack(spec)
    spec.attrs.update(stored[0])
    spec.consts.update(stored[1])
    spec.inputs[1] = TensorSpec(stored[1][1].shape, stored[1][1].dtype)
    got = run_in_view(spec, [x, stored[1][1], b, res])
    # float32 sums over 512 terms: the rounding follows the scale before the clamp
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=max(ATOL, 2e-6 * np.nanmax(np.abs(conv + res))))
    assert np.isnan(got[0, 3, 2, 2]) and np.isnan(got).sum() == 1


@pytest.mark.parametrize("cfg", [SHAPES[2], SHAPES[4], SHAPES[7], SHAPES[8]])
def test_gather_tables_find_the_im2col_columns(cfg) -> None:
    """Row (c, tap) and column (output pixel) of the tables land where im2col would copy from."""
    c, m, hw, k, attrs = cfg
    spec, ins, _ = _spec(np.random.default_rng(5), *cfg)
    g = conv_geom(spec)
    x = ins[0][0]
    if g.padded:
        image = np.zeros((g.c,) + g.pad_sp, np.float32)
        pad_into(x, image, g.pb)
    else:
        image = x
    cols = np.ascontiguousarray(windows(image, g.kernel, g.out_sp, g.strides, g.dilations)).reshape(g.c * g.k_size, -1)
    tables = gather_tables(g)
    np.testing.assert_array_equal(image.reshape(-1)[tables.koff[:, None] + tables.coff[None, :]], cols)
    assert tables.reach <= image.size


def test_large_padded_images_are_padded_by_both_threads(two_threads, monkeypatch) -> None:
    """The pad split over the threads' channel ranges (a native job), then the gathered GEMM."""
    from omrt.kernels import packed_conv

    monkeypatch.setattr(packed_conv, "MIN_PARALLEL_FLOPS", 0.0)
    monkeypatch.setattr(packed_conv, "PAD_SPLIT_BYTES", 0)
    spec, ins, want = _spec(np.random.default_rng(8), *SHAPES[7], residual=True, act="Relu")
    assert_sums_close(run_in_view(spec, ins), want)


@pytest.mark.parametrize("c,m,k,stride,dtype,packed", [
    (128, 128, 3, 2, np.float32, True),     # ResNet-50's 3x3/2 on 56x56: 784 columns
    (96, 256, 5, 2, np.float32, True),      # ZFNet's 5x5/2
    (128, 32, 3, 2, np.float32, False),     # one panel of outputs: the direct conv over stride phases
    (16, 128, 3, 2, np.float32, False),     # a reduction of 144
    (256, 128, 1, 2, np.float32, False),    # 1x1: sampled, no taps to gather
    (128, 128, 3, 1, np.float32, False),    # stride 1 on a large map
    (128, 128, 3, 2, np.float16, False),
])
def test_strided_convs_with_deep_reductions_read_their_columns_in_place(c, m, k, stride, dtype, packed) -> None:
    x, w = np.zeros((1, c, 56, 56), dtype), _rand(np.random.default_rng(9), m, c, k, k).astype(dtype)
    out = (56 + 2 * (k // 2) - k) // stride + 1
    attrs = {"kernel_shape": [k, k], "strides": [stride] * 2, "pads": [k // 2] * 4}
    spec = make_spec("Conv", [x, w], [np.zeros((1, m, out, out), dtype)], attrs, {1: w})
    g = conv_geom(spec)
    assert (strided_gather(g) and packed_eligible(g, dtype, True)) is packed
    stored = prepack(spec)
    assert bool(stored and stored[0].get("_packed") and not stored[0].get("_winograd")) is packed
    if packed:
        assert not phase_shaped(g, dtype, True)


def test_an_unpadded_input_in_a_strided_view_is_gathered_from_a_copy() -> None:
    """The tables assume a contiguous image: a view with gaps between rows is copied first."""
    spec, ins, want = _spec(np.random.default_rng(10), *SHAPES[8])
    wide = np.full(ins[0].shape[:3] + (ins[0].shape[3] + 4,), np.nan, np.float32)
    wide[..., 2:-2] = ins[0]
    got = run_in_view(spec, [wide[..., 2:-2]] + ins[1:])
    assert_sums_close(got, want)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("bias_const", [True, False])
@pytest.mark.parametrize("cfg", [SHAPES[7], SHAPES[8], SHAPES[0], SHAPES[2]])
def test_a_batch_runs_image_by_image_or_as_one_product(kernel_pool, monkeypatch, threads: int, bias_const: bool,
                                                       cfg) -> None:
    """Strided convs on large maps: each image padded and multiplied in turn; on small maps, and
    1x1 convs on small maps: one product over every image's columns, padded side by side (by both
    threads) or read where they lie; image by image where the bias comes at run time; each image
    with its own residual."""
    from omrt.kernels import packed_conv

    kernel_pool(threads)
    monkeypatch.setattr(packed_conv, "MIN_PARALLEL_FLOPS", 0.0)
    monkeypatch.setattr(packed_conv, "PAD_SPLIT_BYTES", 0)
    spec, ins, want = _spec(np.random.default_rng(11), *cfg, bias_const=bias_const, residual=True, act="Relu",
                            batch=3)
    assert spec.attrs.get("_packed")
    assert_sums_close(run_in_view(spec, ins), want)


def test_batch_tables_put_each_image_in_its_place() -> None:
    """One product over a batch: image i's pixel q read at i * C*H*W + q, stored at i * M*H*W + q."""
    from omrt.kernels.packed_conv import batch_tables

    spec, ins, _ = _spec(np.random.default_rng(12), *SHAPES[0], batch=3)
    g = conv_geom(spec)
    tables = batch_tables(g)
    pixels = g.p_size
    assert tables.coff.size == tables.ycoff.size == 3 * pixels
    np.testing.assert_array_equal(tables.coff[pixels:2 * pixels], g.c * pixels + np.arange(pixels))
    np.testing.assert_array_equal(tables.ycoff[2 * pixels:], 2 * g.m * pixels + np.arange(pixels))
    np.testing.assert_array_equal(tables.koff, np.arange(g.c) * pixels)


def test_a_kernel_smaller_than_its_stride_has_room_to_copy_a_strided_view() -> None:
    """2x2 taps at stride 3 read far fewer pixels than the image holds: the workspace still takes
    the contiguous copy the tables read where the input is a view with gaps."""
    spec, ins, want = _spec(np.random.default_rng(13), 256, 64, (30, 30), (2, 2), {"strides": [3, 3]})
    assert spec.attrs.get("_packed")
    wide = np.full(ins[0].shape[:3] + (ins[0].shape[3] + 4,), np.nan, np.float32)
    wide[..., 2:-2] = ins[0]
    got = run_in_view(spec, [wide[..., 2:-2]] + ins[1:])
    assert_sums_close(got, want)
