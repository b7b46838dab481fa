"""Conv: convolution as GEMM over planned scratch.

Paths, chosen once at build time:
  * 1x1, stride 1, no padding, group 1, over a batch and a deep reduction: omrt.kernels.pixel_gemm
    (an IR micro-kernel with vectors along the pixels, straight on the NCHW view, the epilogue as
    it stores, on weights the compiler stored packed).
  * 1x1, stride 1, no padding (any group): GEMMs straight on the NCHW view (no copy).
  * depthwise (one input channel per group, one output per group): omrt.kernels.depthwise_jit
    (compiled loops; 3x3 stride-1 "same" ones read in place), without them omrt.kernels.depthwise_cl
    (channels-last taps) over a batch or a small image, else omrt.kernels.depthwise.
  * few input channels (image stems, narrow 3x3 and 5x5 convs) on wide enough rows:
    omrt.kernels.phase_conv, taps read from the padded image's stride phases by an IR micro-kernel;
    there too unpadded 1x1 convs the packed kernel and the pixel GEMM do not take, image by image
    (stride 1 read in place).
  * one image, small output map, deep reduction, and strided convs with taps over a deep
    reduction at any size and batch: omrt.kernels.packed_conv (weights the compiler stored packed
    for the packed GEMM micro-kernel, omrt.kernels.packed_gemm, which reads the columns of convs
    with taps where they lie in the padded input).
  * 2-D stride-1 group-1 k x k with at most 48 outputs, fewer than its inputs: omrt.kernels.tap_gemm
    (one GEMM for all taps, then shifted sums; Winograd instead on large enough maps with the
    compiled transforms); other small ones: omrt.kernels.flat_im2col (im2col from shifted flat slices).
  * small output maps at batch > 1 with large weights: omrt.kernels.stacked_images (a block of
    images' columns side by side in one GEMM).
  * everything else: pad into scratch, im2col by strided copies, (batched) GEMMs into Y.
  * 3x3 stride-1 group-1 with `_winograd`: omrt.kernels.winograd on pre-transformed weights (its
    GEMMs on the packed micro-kernel from 128 input and output channels).
Every path splits its GEMMs for the kernel thread pool (omrt.kernels.parallel) along images, or,
within one image, along output channels for group-1 GEMMs (see _channel_split) and along output
columns otherwise.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from omrt.kernels import blas_task, depthwise_jit, packed_gemm
from omrt.kernels.base import OVERWRITES, OpSpec, check, register
from omrt.kernels.conv_common import (  # noqa: F401  (re-exported for other kernel modules)
    BAND_MIN_COLS, CHANNEL_ALIGN, CHUNK_BYTES, IMAGE_SLOTS, MIN_COLS, MIN_PARALLEL_FLOPS, ConvGeom, col_ranges,
    compute_itemsize, conv_geom, finish, finish_blocks, pad_into, pad_phases, res_view, same_pads, split_inputs,
    task_parts, windows,
)
from omrt.kernels.depthwise import depthwise_build, depthwise_workspace
from omrt.kernels.depthwise_cl import channels_last_wins, depthwise_cl_build, depthwise_cl_workspace
from omrt.kernels.epilogue import Epilogue, float16_via_float32
from omrt.kernels.flat_im2col import flat_build, flat_eligible, flat_workspace
from omrt.kernels.packed_conv import beats_winograd, packed_build, packed_eligible, packed_shape, packed_workspace
from omrt.kernels.parallel import get_pool, lead_split, split
from omrt.kernels.phase_conv import (
    phase_build, phase_eligible, phase_shape, phase_shaped, phase_workspace, tile_fill,
)
from omrt.kernels.pixel_gemm import pixel_build, pixel_eligible, pixel_shape
from omrt.kernels.repeated import conv_repeats, repeated_conv_build, repeated_conv_workspace
from omrt.kernels.stacked_images import stack_eligible, stacked_build, stacked_workspace
from omrt.kernels.tap_gemm import tap_gemm_build, tap_gemm_eligible, tap_gemm_workspace
from omrt.kernels.winograd import (  # noqa: F401
    FEW_OUTPUTS, WINOGRAD_MIN_CHANNELS, WINOGRAD_MIN_TILES, beats_tap_gemm, packed_gemm_wins, wino_build,
    wino_eligible, wino_weight, wino_workspace,
)

# Grouped 1x1 convs are many small GEMMs in one batched call; split by columns they lose more to
# thread wake-ups and thin pieces than a second core gives back.
GROUPED_MIN_PARALLEL_FLOPS = 6e7
# Outputs, or inputs, below which a conv the direct conv over stride phases takes goes there, not
# Winograd.
PHASE_OVER_WINOGRAD_OUTPUTS = FEW_OUTPUTS
PHASE_OVER_WINOGRAD_INPUTS = 64
PHASE_MIN_FILL = 0.8
CHANNEL_SPLIT_MIN = 128       # output channels from which channel blocks beat column pieces
CHANNEL_SPLIT_MAX_COLS = 128  # up to this many pixels channel blocks win whatever the channel count
# Columns + output per im2col band (per image task, or per thread-pool piece of one image). The
# 7x7 stem (10.6 MB per image) on one thread: 2.08 ms as one band, 1.81 ms in 4 bands, 2.17 ms in
# 14; on two threads in ResNet-50 at batch 1 (`profile_model.py`, three alternations), 1.50-1.57
# ms in 22 bands of 512 KB, 1.24-1.39 ms in 4. Bands of 2 MB cut ResNet-50's 256->512 1x1/2 convs
# (2.4 MB) in two, each re-packing the weights: 5.1 -> 7.3 ms at batch 8.
IMAGE_BAND_BYTES = 4 * 1024 * 1024
PHASED_MAX_CHANNELS = 4       # input channels up to which strided large kernels use stride phases
# 1: a fused residual may share its bytes with the conv's output (_conv_overwrites).
RESIDUAL_IN_PLACE = 1


def _conv_workspace(spec: OpSpec) -> int:
    repeats = None if spec.attr("_shuffle_out") else conv_repeats(spec)
    if repeats is not None:
        return repeated_conv_workspace(repeats[0])
    g = conv_geom(spec)
    if spec.attr("_winograd"):
        return wino_workspace(g)
    if g.depthwise:
        return depthwise_cl_workspace(g) if channels_last_wins(g) else depthwise_workspace(g)
    dtype, const_weights = spec.outputs[0].dtype, 1 in spec.consts
    packed = packed_workspace(g) if packed_shape(g, dtype, const_weights) else 0
    phases = phase_workspace(g) if phase_shaped(g, dtype, const_weights) else 0
    return max(packed, phases, _unpacked_workspace(g, bool(spec.attr("_shuffle_out"))))


def _unpacked_workspace(g: ConvGeom, shuffled: bool) -> int:
    if _stacked(g, shuffled):
        return stacked_workspace(g)
    if g.direct_view:
        return 0
    if tap_gemm_eligible(g):
        return tap_gemm_workspace(g)
    if flat_eligible(g):
        return flat_workspace(g)
    one_image = _pad_elems(g) + g.c * g.k_size * g.p_size
    return max(one_image, image_slots(g) * _slot_elems(g)) * g.itemsize


def _pad_elems(g: ConvGeom) -> int:
    """Elements of one padded image in scratch, split into its stride phases where _phased (0 when
    the conv needs no padding)."""
    if _phased(g):
        return int(np.prod(phase_shape(g)))
    return g.padded_elems


def _phased(g: ConvGeom) -> bool:
    """Strided 2-D convs with kernels of 5x5 and more over a few input channels (an image stem)
    build their columns from the padded image's stride phases (conv_common.pad_phases): each tap
    is then a copy of contiguous rows, where the plain window view reads every other pixel. One
    conv on one thread, caches flushed: the 7x7/2 stem of ResNet-50 and DenseNet-121 2.63 -> 2.26
    ms at batch 1, 8.48 -> 7.95 at batch 4. Only padded convs, whose padded copy the phases replace:
    an unpadded one would need the phases as extra scratch for little (ZFNet's 3->96 stem 2.85 ->
    2.73 ms). With many channels the phase copies cost more than they save (ZFNet's 96->256 5x5/2:
    4.43 -> 5.00), and with 3x3 kernels the columns are only 2.25x the phases (3->24: 0.090 ->
    0.093 ms)."""
    return (len(g.kernel) == 2 and min(g.strides) > 1 and g.dilations == (1, 1) and min(g.kernel) >= 5
            and g.c <= PHASED_MAX_CHANNELS and g.padded)


def _padded_image(g: ConvGeom, flat: np.ndarray) -> np.ndarray:
    """The (C, *padded extent) image at the start of a pad region of scratch."""
    return flat[:g.padded_elems].reshape((g.c,) + g.pad_sp)


def _column_sources(g: ConvGeom, x: np.ndarray, flat: np.ndarray,
                    phased: bool) -> list[tuple[tuple[slice, ...], np.ndarray]]:
    """Pad one image into the pad region `flat` (_pad_elems of scratch) and say where its
    columns (C, *kernel, *out) come from, as (part of the columns, window view) pairs: one view of
    the padded image, or one per stride phase (_phased)."""
    if phased:
        (sh, sw), (kh, kw) = g.strides, g.kernel
        phases = flat.reshape(phase_shape(g))
        pad_phases(x, phases, g.pb, g.strides)
        return [((slice(None), slice(i, None, sh), slice(j, None, sw)),
                 windows(phases[i, j], (len(range(i, kh, sh)), len(range(j, kw, sw))), g.out_sp, (1, 1), (1, 1)))
                for i in range(sh) for j in range(sw)]
    if g.padded:
        buf = _padded_image(g, flat)
        pad_into(x, buf, g.pb)
        x = buf
    return [((), windows(x, g.kernel, g.out_sp, g.strides, g.dilations))]


def image_slots(g: ConvGeom) -> int:
    """Scratch slots for whole-image im2col tasks (0: the op stays on per-image dispatches).

    A batch of images is cut into one task per slot, each running its images one after another
    (pad, then im2col, GEMM and epilogue band by band) in a slot of its own: one pool dispatch per
    conv instead of one or two per image. The slot count depends only on the batch, so the work
    memory planned at compile time fits any thread count.
    """
    return min(g.n, IMAGE_SLOTS) if g.n > 1 else 0


def _image_bands(g: ConvGeom) -> list[tuple[int, int]]:
    """Output-row bands an image task walks through, each about IMAGE_BAND_BYTES of columns + output."""
    per_image = (g.c * g.k_size + g.m) * g.p_size * g.itemsize
    return split(g.out_sp[0], -(-per_image // IMAGE_BAND_BYTES))


def _slot_elems(g: ConvGeom) -> int:
    """One slot: the padded image and the largest band's columns."""
    rows = max((b - a for a, b in _image_bands(g)), default=0)
    rest = g.p_size // g.out_sp[0] if g.out_sp[0] else 0
    return _pad_elems(g) + g.c * g.k_size * rows * rest


def _channel_split(g: "ConvGeom") -> bool:
    """Group-1 GEMMs of one image split by output channels rather than pixels.

    Each task then multiplies a contiguous block of weight rows by all the columns and runs the
    epilogue on its own contiguous, still-cached rows. Measured on ResNet-50's batch-1 shapes
    (2 threads, residual + Relu): 64->256 on 56x56 0.66 -> 0.42 ms, 512->2048 on 7x7 0.51 -> 0.35,
    3x3 512->512 on 7x7 (K 4608) 1.10 -> 0.72. Few channels over many pixels (576->64 on 56x56)
    stay faster as column pieces.
    """
    return g.group == 1 and not g.depthwise and (g.m >= CHANNEL_SPLIT_MIN or g.p_size <= CHANNEL_SPLIT_MAX_COLS)


def _stacked(g: ConvGeom, shuffled: bool) -> bool:
    """Small maps at batch > 1 through omrt.kernels.stacked_images, unless a path made for the
    shape (tap GEMM, flat im2col, a shuffled grouped output) takes it."""
    return stack_eligible(g) and not shuffled and not tap_gemm_eligible(g) and not flat_eligible(g)


def _winograd_wins(g: ConvGeom, dtype: np.dtype) -> bool:
    """Winograd where it applies, unless another path measured faster on the shape: the tap GEMM
    without the compiled transforms (beats_tap_gemm), the packed kernel on small maps with few
    inputs (packed_conv.beats_winograd), and the direct conv over stride phases for fewer than
    PHASE_OVER_WINOGRAD_OUTPUTS outputs on maps it takes (DenseNet's 128->32 growth convs on 28x28
    and 56x56; DenseNet-121 on two threads, benchmarks/ab_models.py with
    PHASE_OVER_WINOGRAD_OUTPUTS=0 against the default: batch 1 21.89 -> 21.61 ms (slow state 35.98
    -> 34.14), batch 8 151.2 -> 148.0) or fewer than PHASE_OVER_WINOGRAD_INPUTS inputs, whose
    transforms cost as much as Winograd's shallow GEMMs save (SqueezeNet's 32->128 on 27x27;
    SqueezeNet batch 1 4.19 -> 3.94 ms in the slow state). Not with 64 inputs and outputs or more:
    VGG-19's 64->64 on 224x224 and 128->128 on 112x112 as phase convs, 71.1 -> 83.4 ms."""
    few = g.m < PHASE_OVER_WINOGRAD_OUTPUTS or g.c < PHASE_OVER_WINOGRAD_INPUTS
    phase_rival = few and phase_shaped(g, dtype, True)
    return (wino_eligible(g, dtype) and not (tap_gemm_eligible(g) and not beats_tap_gemm(g))
            and not beats_winograd(g, dtype) and not phase_rival)


def _packed_over_phase(g: ConvGeom, dtype: np.dtype) -> bool:
    """On one thread (a batch lane), a conv the packed kernel also takes goes there where the
    direct conv's tiles are less than PHASE_MIN_FILL full (phase_conv.tile_fill) and it has two
    panels of outputs or more. One thread, packed against phases (Zen 5 VM): SqueezeNet's 64->256
    3x3 on 13x13 (75 % full) 0.270 -> 0.226 ms, 48->192 0.148 -> 0.135; kept as phase convs:
    Inception-v1's 96->208 on 14x14 (88 %) 0.318 against 0.323, DenseNet's 128->32 on 7x7 (one
    panel) 0.025 against 0.031. Since the flat row ends on a tile of its own width, 13x13 maps fill
    85 % and stay phase convs (Zen 4 VM, phases against packed: 64->256 0.559 against 0.583 ms,
    48->192 0.313 against 0.324). On two threads the phase conv's blocks split better
    (packed_conv.beats_winograd)."""
    return (packed_eligible(g, dtype, True) and g.m >= 2 * packed_gemm.PANEL_ROWS
            and tile_fill(g) < PHASE_MIN_FILL)


def _conv_prepack(spec: OpSpec) -> tuple[dict[str, Any], dict[int, np.ndarray]] | None:
    """Weights stored as the chosen path runs on them: Winograd's transformed weights, packed
    into panels (omrt.kernels.packed_gemm) where its GEMMs are packed; the packed panels of a
    packed conv. Packed weights replace the plain ones in the model's weight memory, so loads
    that share it share them, and a host where the micro-kernel does not run unpacks a copy."""
    if spec.attr("_winograd") or spec.attr("_packed") or 1 not in spec.consts or conv_repeats(spec) is not None:
        return None
    g = conv_geom(spec)
    w, dtype = spec.consts[1], spec.outputs[0].dtype
    if _winograd_wins(g, dtype):
        u = wino_weight(w)
        if packed_gemm_wins(g) and np.dtype(dtype) == np.float32:
            return {"_winograd": 1, "_packed": 1, "kernel_shape": [3, 3]}, {1: packed_gemm.pack_panels(u)}
        return {"_winograd": 1}, {1: u}
    if packed_shape(g, dtype, True) and not phase_shaped(g, dtype, True) or pixel_shape(g, dtype, True):
        return ({"_packed": 1, "kernel_shape": list(g.kernel)},
                {1: packed_gemm.pack_panels(w.reshape(g.m, g.c * g.k_size))})
    return None


def _direct_build(g: ConvGeom, wmat, weights, bcol, epi: Epilogue, pool, shuffled: bool = False):
    """1x1 stride-1 conv: GEMMs straight on the NCHW input, one task per image, or column pieces
    of one image followed by the epilogue on channel blocks. `shuffled`: group k's channels go to
    k, k + G, ... of Y (omrt.compiler.passes.shuffle_into_conv), written through a strided view."""
    gr, cg, mg, p = g.group, g.c // g.group, g.m // g.group, g.p_size
    flops = g.image_flops
    min_flops = GROUPED_MIN_PARALLEL_FLOPS if gr > 1 else MIN_PARALLEL_FLOPS
    parts = task_parts(g.m * p * g.n * g.itemsize, pool.size, flops * g.n, min_flops)
    whole = parts == 1 or g.n >= pool.size or shuffled
    cols = [slice(0, p)] if whole else [slice(a, b) for a, b in col_ranges(p, pool.size)]
    if len(cols) == 1:
        whole = True
    by_channels = not whole and _channel_split(g)
    ranges = lead_split(g.m, pool.size, CHANNEL_ALIGN, flops) if by_channels else split(g.m, pool.size)
    native = blas_task.channel_job(g, epi, cg, ranges) if by_channels and not shuffled else None
    shape4 = (g.n, gr, mg, p)
    # Images of one task go through in blocks of about CHUNK_BYTES of output: one numpy call per
    # block instead of per image (small images), the epilogue still on cached output.
    image_tasks = split(g.n, min(g.n, pool.size))
    per_call = max(1, CHUNK_BYTES // (g.m * p * g.itemsize))

    def in_output_order(b: np.ndarray) -> np.ndarray:
        """A shuffled output's bias in Y's own channel order (output channel k*G + g is group g's
        k-th), so the epilogue runs on Y's contiguous rows instead of the strided group view."""
        return np.ascontiguousarray(b.reshape(gr, mg).T).reshape(mg, gr, 1)

    shuffled_bias = in_output_order(bcol) if shuffled and bcol is not None else None

    def run(inputs, outputs, scratch):
        x, y = inputs[0], outputs[0]
        bias, res = split_inputs(inputs, epi.residual)
        w = wmat if wmat is not None else weights(inputs[1])
        bv = bcol if bcol is not None else (bias.reshape(gr, mg, 1) if bias is not None else None)
        x4, r4 = x.reshape(g.n, gr, cg, p), res_view(res, shape4)
        y4 = y.reshape(g.n, mg, gr, p).transpose(0, 2, 1, 3) if shuffled else y.reshape(shape4)
        if shuffled:
            y_rows = y.reshape(g.n, mg, gr, p)
            b_rows = shuffled_bias if shuffled_bias is not None or bv is None else in_output_order(bv)

        if whole:
            def images(i: int) -> None:
                a, b = image_tasks[i]
                for n0 in range(a, b, per_call):
                    n1 = min(b, n0 + per_call)
                    np.matmul(w, x4[n0:n1], out=y4[n0:n1])
                    if shuffled:
                        finish(epi, y_rows[n0:n1], b_rows, None)
                    else:
                        finish(epi, y4[n0:n1], bv, None if r4 is None else r4[n0:n1])

            pool.run(images, len(image_tasks))
            return
        b2 = None if bv is None else bv.reshape(g.m, 1)
        for n in range(g.n):
            r2 = None if r4 is None else r4[n].reshape(g.m, p)
            if by_channels:
                channel_blocks(pool, epi, w[0], x4[n, 0], y4[n, 0], b2, r2, ranges, native)
                continue

            def piece(i: int) -> None:
                np.matmul(w, x4[n, :, :, cols[i]], out=y4[n, :, :, cols[i]])

            pool.run(piece, len(cols))
            finish_blocks(pool, epi, y4[n].reshape(g.m, p), b2, r2, ranges)
    return run


def channel_blocks(pool, epi: Epilogue, w: np.ndarray, cols: np.ndarray, y: np.ndarray,
                   bias: np.ndarray | None, res: np.ndarray | None, ranges: list[tuple[int, int]],
                   native: blas_task.ChannelJob | None = None) -> None:
    """y = epilogue(w @ cols + bias, res), one task per block of output channels (rows of w and y):
    as `native`'s job where given and the operands fit it (no GIL, no Python per task)."""
    if native is not None and native.run(pool, w, cols, y, bias, res):
        return

    def block(i: int) -> None:
        a, b = ranges[i]
        out = y[a:b]
        np.matmul(w[a:b], cols, out=out)
        finish(epi, out, None if bias is None else bias[a:b], None if res is None else res[a:b])

    pool.run(block, len(ranges))


def _im2col_build(g: ConvGeom, wmat, weights, bcol, epi: Epilogue, pool, dtype: np.dtype):
    """im2col into scratch, then GEMM.

    Small outputs (a few hundred pixels, where bands of rows make thin GEMMs and strided epilogues)
    fill the whole column matrix first, split by input channels, multiply column pieces of it and
    finish on channel blocks.
    Otherwise tasks own output-row bands: each builds its own columns (in L2), multiplies and
    applies the epilogue.
    """
    gr, cg, mg, ks, p, nd = g.group, g.c // g.group, g.m // g.group, g.k_size, g.p_size, len(g.kernel)
    kdim = cg * ks
    o0 = g.out_sp[0]
    rest = p // o0 if o0 else 0
    flops = g.image_flops
    head = (slice(None),) * (1 + nd)
    pad_elems = _pad_elems(g)
    parts = task_parts((g.c * ks + g.m) * p * g.itemsize, pool.size, flops, chunk=IMAGE_BAND_BYTES)
    bands = split(o0, min(parts, max(1, (o0 * rest) // MIN_COLS)))
    small = len(bands) > 1 and p < BAND_MIN_COLS * len(bands)
    pieces = col_ranges(p, pool.size) if small else []
    fills = split(g.c, pool.size) if small else []
    by_channels = small and _channel_split(g)
    ranges = lead_split(g.m, pool.size, CHANNEL_ALIGN, flops) if by_channels else split(g.m, pool.size)
    native = blas_task.channel_job(g, epi, g.c * g.k_size, ranges) if by_channels else None
    slots = image_slots(g) if pool.size > 1 and flops * g.n >= MIN_PARALLEL_FLOPS else 0
    slot_elems = _slot_elems(g)
    image_bands = _image_bands(g)
    phased = _phased(g) and not small

    def run(inputs, outputs, scratch):
        x, y = inputs[0], outputs[0]
        bias, res = split_inputs(inputs, epi.residual)
        w = wmat if wmat is not None else weights(inputs[1])
        bv = bcol if bcol is not None else (bias.reshape(gr, mg, 1) if bias is not None else None)
        work = scratch.view(dtype)
        y4 = y.reshape(g.n, gr, mg, p)
        r4 = res_view(res, (g.n, gr, mg, p))

        def band_into(n: int, sources, r0: int, r1: int, cols_buf: np.ndarray) -> None:
            """Columns of output rows r0:r1 of image n into cols_buf, GEMM, epilogue."""
            c0, c1 = r0 * rest, r1 * rest
            chunk = cols_buf[:g.c * ks * (c1 - c0)]
            band_cols = chunk.reshape((g.c,) + g.kernel + (r1 - r0,) + g.out_sp[1:])
            for part, win in sources:
                np.copyto(band_cols[part], win[head + (slice(r0, r1),)])
            out = y4[n, :, :, c0:c1]
            np.matmul(w, chunk.reshape(gr, kdim, c1 - c0), out=out)
            finish(epi, out, bv, None if r4 is None else r4[n, :, :, c0:c1])

        if slots:
            def image_task(k: int) -> None:
                slot = work[k * slot_elems:(k + 1) * slot_elems]
                for n in range(k, g.n, slots):
                    sources = _column_sources(g, x[n], slot[:pad_elems], phased)
                    for r0, r1 in image_bands:
                        band_into(n, sources, r0, r1, slot[pad_elems:])

            pool.run(image_task, slots)
            return
        buf = _padded_image(g, work) if g.padded else None
        cols = work[pad_elems:pad_elems + g.c * ks * p]
        cols5 = cols.reshape((g.c,) + g.kernel + g.out_sp)
        for n in range(g.n):
            src = x[n]

            def fill(i: int) -> None:
                a, b = fills[i]
                s = src[a:b]
                if buf is not None:
                    pad_into(s, buf[a:b], g.pb)
                    s = buf[a:b]
                np.copyto(cols5[a:b], windows(s, g.kernel, g.out_sp, g.strides, g.dilations))

            def piece(i: int) -> None:
                a, b = pieces[i]
                np.matmul(w, cols.reshape(gr, kdim, p)[:, :, a:b], out=y4[n, :, :, a:b])

            if small:
                pool.run(fill, len(fills))
                b2 = None if bv is None else bv.reshape(g.m, 1)
                r2 = None if r4 is None else r4[n].reshape(g.m, p)
                if by_channels:
                    channel_blocks(pool, epi, w[0], cols.reshape(kdim, p), y4[n, 0], b2, r2, ranges, native)
                    continue
                pool.run(piece, len(pieces))
                finish_blocks(pool, epi, y4[n].reshape(g.m, p), b2, r2, ranges)
                continue
            sources = _column_sources(g, src, work[:pad_elems], phased)

            def band(i: int) -> None:
                r0, r1 = bands[i]
                band_into(n, sources, r0, r1, cols[g.c * ks * r0 * rest:])

            pool.run(band, len(bands))
    return run


def _bias_fixed(spec: OpSpec) -> bool:
    """No bias, or a constant one: none comes at run time, when it would have to go first."""
    return len(spec.inputs) < 3 or spec.inputs[2] is None or 2 in spec.consts


def _residual_in_kernel(spec: OpSpec) -> bool:
    """Whether the conv, as it builds on a host where the micro-kernels run, goes to a path that
    adds the residual as it stores each output element (the phase conv and the packed conv with
    a clamp for activation and no bias at run time)."""
    if spec.attr("_winograd") or spec.attr("_shuffle_out") or 1 not in spec.consts or conv_repeats(spec) is not None:
        return False
    g, dtype = conv_geom(spec), np.dtype(spec.outputs[0].dtype)
    if dtype != np.float32 or g.depthwise or Epilogue(spec.attrs).clamp is None or not _bias_fixed(spec):
        return False
    if spec.attr("_packed") or pixel_shape(g, dtype, True):
        return packed_eligible(g, dtype, True) or pixel_eligible(g, dtype, True)
    return phase_eligible(g, dtype, True)


def _conv_overwrites(spec: OpSpec) -> tuple[int, ...]:
    """The residual, as the input whose bytes the output may take (base.register), where the kernel
    adds it as it stores: each line of the residual is then read and written once, where a
    separate output is read for ownership and written beside the residual's reads. ResNet-50 at
    batch 1 on a loaded Zen 4 VM (benchmarks/ab_models.py, RESIDUAL_IN_PLACE=0 against 1):
    63.8 -> 59.5 ms."""
    if not RESIDUAL_IN_PLACE or not spec.attr("_residual") or not _residual_in_kernel(spec):
        return ()
    return (len(spec.inputs) - 1,)


def _residual_aside(run, spec: OpSpec):
    """`run` given its residual in a buffer of its own: a path that writes its output before it
    reads the residual, where the compiler put both in the same bytes (a host where the micro-
    kernels do not run, a bias given at run time). The buffer is allocated once, at build."""
    index = int(spec.attr(OVERWRITES))
    aside = np.empty(spec.inputs[index].shape, spec.inputs[index].dtype)

    def copied(inputs, outputs, scratch):
        ins = list(inputs)
        np.copyto(aside, ins[index])
        ins[index] = aside
        run(ins, outputs, scratch)

    return copied


@register("Conv", workspace=_conv_workspace, prepack=_conv_prepack, overwrites=_conv_overwrites)
@float16_via_float32
def conv(spec: OpSpec):
    run = _conv_build(spec)
    if spec.attr(OVERWRITES) is None or (getattr(run, "residual_first", False) and _bias_fixed(spec)):
        return run
    return _residual_aside(run, spec)


def _conv_build(spec: OpSpec):
    g = conv_geom(spec)
    epi = Epilogue(spec.attrs)
    dtype = np.dtype(spec.outputs[0].dtype)
    shuffled = bool(spec.attr("_shuffle_out"))
    check(not shuffled or (g.direct_view and not g.depthwise and not epi.residual and not spec.attr("_winograd")),
          f"Conv {spec.name}: a shuffled output needs a grouped 1x1 stride-1 unpadded conv without residual")
    if spec.attr("_packed"):
        check(1 in spec.consts, f"Conv {spec.name}: packed weights must be constant")
        want = packed_gemm.panels_shape(36 if spec.attr("_winograd") else 1, g.m,
                                        g.c if spec.attr("_winograd") else g.c * g.k_size)
        check(spec.consts[1].shape == want and spec.consts[1].dtype == np.float32,
              f"Conv {spec.name}: packed weights of shape {spec.consts[1].shape} {spec.consts[1].dtype}, "
              f"expected {want} float32")
    if spec.attr("_winograd"):
        return wino_build(g, spec.consts.get(1), spec.consts.get(2), epi, dtype, bool(spec.attr("_packed")))
    w_const = spec.consts.get(1)
    b_const = spec.consts.get(2)
    if spec.attr("_packed"):
        if packed_eligible(g, dtype, True):
            return packed_build(g, w_const, b_const, epi, get_pool())
        if pixel_eligible(g, dtype, True) and not shuffled:
            return pixel_build(g, w_const, b_const, epi, get_pool())
        w_const = packed_gemm.unpack_panels(w_const, g.m).reshape((g.m, g.c) + g.kernel)
    repeats = None if shuffled else conv_repeats(spec)
    if repeats is not None:
        return repeated_conv_build(spec, *repeats)
    check(g.c % g.group == 0 and g.m % g.group == 0, f"Conv {spec.name}: channels not divisible by group")
    pool = get_pool()
    cg, mg, ks = g.c // g.group, g.m // g.group, g.k_size

    def weights(w: np.ndarray) -> np.ndarray:
        if g.depthwise:
            return w.reshape(g.c, ks)
        return w.reshape(g.group, mg, cg * ks)

    wmat = weights(w_const) if w_const is not None else None
    if g.depthwise:
        bcol = b_const.reshape(g.c, 1) if b_const is not None else None
        if depthwise_jit.fits(g, dtype):
            build = depthwise_jit.depthwise_jit_build
        else:
            build = depthwise_cl_build if channels_last_wins(g) else depthwise_build
        return build(g, wmat, weights, bcol, epi, pool, dtype)
    if not shuffled and phase_eligible(g, dtype, w_const is not None):
        if pool.size == 1 and _packed_over_phase(g, dtype):
            return packed_build(g, packed_gemm.shared_panels(w_const.reshape(g.m, g.c * g.k_size)), b_const, epi, pool)
        return phase_build(g, w_const, b_const, epi, pool)
    bcol = b_const.reshape(g.group, mg, 1) if b_const is not None else None
    if _stacked(g, shuffled):
        return stacked_build(g, wmat, weights, bcol, epi, pool, dtype)
    if g.direct_view:
        return _direct_build(g, wmat, weights, bcol, epi, pool, shuffled)
    if tap_gemm_eligible(g):
        return tap_gemm_build(g, wmat, weights, bcol, epi, pool, dtype)
    if flat_eligible(g):
        return flat_build(g, wmat, weights, bcol, epi, pool, dtype)
    return _im2col_build(g, wmat, weights, bcol, epi, pool, dtype)
