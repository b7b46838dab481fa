"""1x1 convs over a batch with vectors along pixels (omrt.kernels.pixel_gemm): the job against
numpy at row tails, K chunks, column chunks, several images, a residual in Y's own bytes and both
vector widths; the conv through build_kernel against onnxruntime, with run-time bias, other
activations, two threads, the output over the residual or in a channel range of a larger tensor,
and the stored panels on a host without the kernel; which depths it takes from the phase conv,
and panels an earlier compile stored for a conv now too shallow for it."""
from __future__ import annotations

import numpy as np
import pytest

from omrt.kernels import build_kernel, packed_gemm, phase_conv, pixel_gemm
from omrt.kernels.conv import _conv_overwrites
from omrt.kernels.conv_common import conv_geom
from omrt.kernels.parallel import get_pool
from tests.kernels.test_conv import (
    ATOL, RTOL, _rand, as_stored, assert_sums_close, make_spec, ort_run, run_in_view, run_over_residual,
)

pytestmark = pytest.mark.skipif(not pixel_gemm.available(), reason="pixel micro-kernel not available here")
MIN_INPUTS = pixel_gemm.MIN_INPUTS


@pytest.fixture(autouse=True)
def shallow_convs_too(monkeypatch) -> None:
    """The kernel on shallow convs, which are quick to check: which depths it takes in a model is
    test_depth_decides_between_this_kernel_and_the_phase_conv's."""
    monkeypatch.setattr(pixel_gemm, "MIN_INPUTS", 1)

# (rows, depth, pixels, images, row blocks)
JOBS = [
    (16, 24, 196, 1, [(0, 8), (8, 16)]),   # 14x14: four pixels past the last full tile
    (32, 600, 100, 2, [(0, 32)]),          # K in chunks of 256, 256, 88; tail of 1 vector + 4
    (40, 8, 64, 3, [(0, 16), (16, 40)]),   # a tail of exactly one full vector (AVX-512)
    (8, 1, 53, 1, [(0, 8)]),               # depth 1
]


def _job_case(rng, m, k, n, images):
    w, b = _rand(rng, m, k), _rand(rng, m)
    x, res = _rand(rng, images, k, n), _rand(rng, images, m, n)
    return w, b, x, res, np.clip(np.matmul(w, x) + b[:, None] + res, -0.5, 2.0)


@pytest.mark.parametrize("avx2", [False, True])
@pytest.mark.parametrize("cfg", JOBS)
def test_job_matches_numpy(request, cfg, avx2: bool) -> None:
    if avx2:
        request.getfixturevalue("avx2_width")
    m, k, n, images, blocks = cfg
    w, b, x, res, want = _job_case(np.random.default_rng(m + k), m, k, n, images)
    job = pixel_gemm.PixelJob(packed_gemm.pack_panels(w)[0], b, m, k, n, images, blocks)
    y = np.full((images, m, n), 7.0, np.float32)
    job.run(get_pool(), x, y, res, (-0.5, 2.0), threaded=False)
    np.testing.assert_allclose(y, want, rtol=RTOL, atol=ATOL * np.sqrt(k))
    in_place = res.copy()   # the residual's bytes are Y's: each tile reads it before it stores
    job.run(get_pool(), x, in_place, in_place, (-0.5, 2.0), threaded=False)
    np.testing.assert_array_equal(in_place, y)


def test_column_chunks_cover_the_row(monkeypatch) -> None:
    """With X's K chunk over CHUNK_BYTES, columns go in chunks of whole tiles; each is finished."""
    monkeypatch.setattr(pixel_gemm, "CHUNK_BYTES", 4096)
    m, k, n = 24, 300, 500
    chunk = pixel_gemm.column_chunk(k, n)
    assert chunk < n and chunk % (pixel_gemm.VECTORS * 8) == 0
    w, b, x, res, want = _job_case(np.random.default_rng(3), m, k, n, 2)
    job = pixel_gemm.PixelJob(packed_gemm.pack_panels(w)[0], b, m, k, n, 2, [(0, 24)])
    y = np.empty((2, m, n), np.float32)
    job.run(get_pool(), x, y, res, (-0.5, 2.0), threaded=False)
    np.testing.assert_allclose(y, want, rtol=RTOL, atol=ATOL * np.sqrt(k))


# (batch, in channels, out channels, input size)
CONVS = [
    (2, 40, 24, (9, 30)),       # 270 pixels
    (3, 256, 64, (14, 14)),     # ResNet-50's shapes, smaller
    (2, 64, 128, (8, 8)),       # MIN_COLUMNS pixels
]


def _conv_case(rng, n, c, m, hw, bias_const=True, residual=False, activation=None):
    ins = [_rand(rng, n, c, *hw), _rand(rng, m, c, 1, 1), _rand(rng, m)]
    attrs = {"kernel_shape": [1, 1]}
    want = ort_run("Conv", ins, attrs)[0]
    if residual:
        res = _rand(rng, *want.shape)
        ins.append(res)
        want = want + res
        attrs["_residual"] = 1
    if activation == "Relu":
        want, attrs["_activation"] = np.maximum(want, 0), "Relu"
    elif activation == "LeakyRelu":
        want = np.where(want >= 0, want, 0.1 * want)
        attrs.update(_activation="LeakyRelu", _activation_params=[0.1])
    consts = {1: ins[1]} | ({2: ins[2]} if bias_const else {})
    spec = make_spec("Conv", ins, [want], attrs, consts)
    as_stored(spec, ins)    # the weights as the compiler stores them
    return spec, ins, want


@pytest.mark.parametrize("cfg", CONVS)
@pytest.mark.parametrize("bias_const", [True, False])
@pytest.mark.parametrize("activation", [None, "Relu", "LeakyRelu"])
def test_conv_matches_onnxruntime(cfg, bias_const: bool, activation: str | None) -> None:
    spec, ins, want = _conv_case(np.random.default_rng(4), *cfg, bias_const=bias_const, residual=True,
                                 activation=activation)
    assert pixel_gemm.pixel_eligible(conv_geom(spec), np.float32, True) and spec.attrs["_packed"]
    assert_sums_close(run_in_view(spec, ins), want)


@pytest.mark.parametrize("cfg", CONVS[:2])
def test_conv_on_two_threads_over_its_residual(two_threads, cfg) -> None:
    """Two threads take blocks of output channels (batch below the threads) or whole images; the
    compiler may give the output the residual's bytes, as the kernel adds it before storing."""
    spec, ins, want = _conv_case(np.random.default_rng(5), *cfg, residual=True, activation="Relu")
    assert _conv_overwrites(spec) == (3,)
    assert_sums_close(run_over_residual(spec, ins), want)
    one = make_spec("Conv", [ins[0][:1], *ins[1:3], ins[3][:1]], [want[:1]], spec.attrs, spec.consts)
    assert not pixel_gemm.pixel_eligible(conv_geom(one), np.float32, True)   # one image: the phase conv's
    np.testing.assert_allclose(run_in_view(one, [ins[0][:1], *ins[1:3], ins[3][:1]]), want[:1], rtol=RTOL,
                               atol=max(ATOL, 2e-6 * np.abs(want).max()))


def test_not_taken_off_its_shapes() -> None:
    """Outputs off a multiple of ROW_ALIGN, grouped, strided or padded 1x1 convs and small maps go
    to the other paths (and still give onnxruntime's numbers)."""
    rng = np.random.default_rng(6)
    spec, ins, want = _conv_case(rng, 2, 16, 20, (9, 9))
    assert not pixel_gemm.pixel_eligible(conv_geom(spec), np.float32, True)
    np.testing.assert_allclose(run_in_view(spec, ins), want, rtol=RTOL, atol=ATOL)
    small, _, _ = _conv_case(rng, 2, 16, 24, (7, 7))
    assert not pixel_gemm.pixel_eligible(conv_geom(small), np.float32, True)
    x, w = _rand(rng, 2, 16, 20, 20), _rand(rng, 24, 16, 1, 1)
    strided = make_spec("Conv", [x, w], [np.empty((2, 24, 10, 10), np.float32)],
                        {"kernel_shape": [1, 1], "strides": [2, 2]}, {1: w})
    assert not pixel_gemm.pixel_eligible(conv_geom(strided), np.float32, True)


def test_depth_decides_between_this_kernel_and_the_phase_conv(monkeypatch) -> None:
    """Over a batch, a 1x1 conv with MIN_INPUTS inputs or more runs here, a shallower one on the
    phase conv image by image (its weights then stored plain); both give onnxruntime's numbers."""
    monkeypatch.setattr(pixel_gemm, "MIN_INPUTS", MIN_INPUTS)
    rng = np.random.default_rng(9)
    for c, here in ((MIN_INPUTS, True), (MIN_INPUTS // 2, False)):
        spec, ins, want = _conv_case(rng, 2, c, 64, (14, 14), residual=True, activation="Relu")
        g = conv_geom(spec)
        assert pixel_gemm.pixel_eligible(g, np.float32, True) is here
        assert bool(spec.attrs.get("_packed")) is here
        assert phase_conv.phase_eligible(g, np.float32, True) is not here
        assert_sums_close(run_in_view(spec, ins), want)


def test_panels_stored_for_a_shallow_conv_still_run(monkeypatch) -> None:
    """A model compiled when this kernel took shallow convs too holds their weights as panels: the
    conv unpacks them and runs on another path with the same results."""
    spec, ins, want = _conv_case(np.random.default_rng(10), 2, MIN_INPUTS // 2, 64, (14, 14), residual=True,
                                 activation="Relu")
    assert spec.attrs["_packed"]
    monkeypatch.setattr(pixel_gemm, "MIN_INPUTS", MIN_INPUTS)
    assert not pixel_gemm.pixel_eligible(conv_geom(spec), np.float32, True)
    assert_sums_close(run_in_view(spec, ins), want)


def test_stored_panels_run_without_the_kernel(kernel_paths) -> None:
    """The compiler stores these convs' weights packed whatever the host; with the compiled
    kernels off, the conv unpacks a copy and runs on BLAS with the same results."""
    spec, ins, want = _conv_case(np.random.default_rng(7), *CONVS[1], residual=True, activation="Relu")
    assert spec.attrs["_packed"] and ins[1].ndim == 4
    assert pixel_gemm.pixel_eligible(conv_geom(spec), np.float32, True) is (kernel_paths == "compiled")
    assert_sums_close(run_in_view(spec, ins), want)


def test_output_in_a_channel_range_of_a_larger_tensor() -> None:
    """The output may be a channel range of a larger tensor (a concat the compiler writes in
    place), its images further apart than the residual's: the kernel still adds the residual
    each image at its own place."""
    spec, ins, want = _conv_case(np.random.default_rng(8), 3, 40, 24, (9, 30), residual=True, activation="Relu")
    kernel = build_kernel(spec)
    whole = np.full((3, 40, 9, 30), 5.0, np.float32)
    out = whole[:, 8:32]
    kernel(ins, [out], None)
    assert_sums_close(out, want)
    assert (whole[:, :8] == 5).all() and (whole[:, 32:] == 5).all()
