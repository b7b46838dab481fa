"""Group-1 convs on small maps through omrt.kernels.packed_gemm, on weights the compiler packed.

Where BLAS loses most is a large weight against few columns: a batch-1 conv on a 7x7 map multiplies
each weight by 49 pixels, and BLAS packs the whole weight on each call. These convs run the packed
micro-kernel instead, on weights stored packed in the model (conv._conv_prepack), straight on
the input (1x1, stride 1, unpadded) or on im2col columns built in scratch, the bias added in the
kernel; threads take blocks of panels (output channels), each running the residual and
activation on its rows while they are in cache. 3x3 stride-1 "same" convs
build their columns in one compiled pass from the unpadded input (window_jit.columns_same3x3):
128 channels of 7x7 0.039 -> 0.008 ms against a padded copy and numpy's strided copy.

Chosen where it beat numpy's matmul on one Zen 5 thread with caches flushed before each call (the
weights come from memory in a model), as in packed_gemm's table: up to MAX_COLUMNS pixels with a
reduction of at least MIN_DEPTH, or up to WIDE_MAX_COLUMNS with at least WIDE_MIN_DEPTH. Past
that the micro-kernel's one scattered store per output (its vectors run along output channels)
costs more than BLAS loses: 1024x256 by 196 columns 1.16x numpy's time, 256x64 by 3136 1.96x.
Each task allocates its partial-sum buffer (packed_gemm.accumulator_floats, at most 28 KB).

Convs with taps read their columns where they lie (GATHER_COLUMNS): the kernel takes offset
tables (gather_tables, packed_gemm.Gather) into the padded image, or the unpadded input itself,
instead of a column matrix im2col would first copy, each pixel once per tap that reads it. Two
threads, one conv, im2col -> tables (benchmarks/ab_conv.py; a Zen 4 VM, hot caches):
ResNet-50's 512->512 3x3/2 on 14x14 1.69 -> 1.38 ms, 256->256 3x3/2 on 28x28 1.72 -> 1.34, the
3x3 512->512 on 7x7 2.05 -> 1.54. That makes strided convs with a deep reduction worth the kernel
at any map size and batch (strided_gather), image after image: ResNet-50's 128->128 3x3/2 on
56x56 (784 columns, a phase conv before) 1.50 -> 1.29 ms, ZFNet's 96->256 5x5/2 4.58 -> 3.83;
four images on one thread (a batch lane), against im2col or stacked images: 10.8 -> 9.7,
11.4 -> 9.3 (256->256 on 28x28), 12.2 -> 10.4 (512->512 on 14x14). Strided 1x1 convs keep their
sampled columns: read in place, each pixel's cache line carries a wasted neighbour.

A batch of 1x1 convs on small maps (batch_columns: 7x7 and below) runs as one product over every
image's columns, read where they lie and stored each in its image's place (batch_tables), where
BLAS copied the images side by side first (omrt.kernels.stacked_images) and packed the weights on
each call. Four images on one thread: ResNet-50's 512->2048 on 7x7 5.00 -> 4.64 ms, 2048->512
4.57 -> 4.24; on 14x14 BLAS image by image stays ahead (256->1024 4.62 against 4.96).
"""
from __future__ import annotations

import numpy as np

from omrt.kernels import jit, packed_gemm, pad_jit
from omrt.kernels.conv_common import (
    MIN_PARALLEL_FLOPS, ConvGeom, edge_masks, finish, pad_into, split_inputs, windows,
)
from omrt.kernels.epilogue import Epilogue
from omrt.kernels.parallel import Pool, split, task_blocks
from omrt.kernels.window_jit import columns_same3x3

MAX_COLUMNS = 64
MIN_DEPTH = 256
WIDE_MAX_COLUMNS = 200
# From 512 (was 1024): DenseNet's, Inception-v1's and ResNet-50's 1x1 convs over 512-1023 inputs
# on 14x14, whose weights BLAS packs cold from memory on each call. Two threads, batch 1
# (benchmarks/ab_models.py, WIDE_MIN_DEPTH=1024 against 512): DenseNet-121 20.60 -> 20.31 ms,
# Inception-v1 11.71 -> 11.31, ResNet-50 22.71 -> 22.38, SqueezeNet equal (3.455 / 3.477); from
# 256 SqueezeNet lost 1 % (its 256->48 and 384->64 on 13x13) for no more elsewhere.
WIDE_MIN_DEPTH = 512
# 1: one-panel 3x3 "same" convs split by pieces of columns (0: they run on one thread).
COLUMN_PIECES = 1
# 1: where the kernel finishes the output itself, its blocks of panels run as one native job (0: as
# Python tasks, each calling the kernel).
NATIVE_TASKS = 1
# Inputs below which small-map 3x3 convs are kept from Winograd (beats_winograd). It was 128 while
# Winograd's own GEMMs ran on numpy below 128 channels; with them packed from 64 (winograd.
# PACKED_MIN_CHANNELS), two threads, batch 1 (benchmarks/ab_conv.py, 128 -> 64): SqueezeNet's
# 64->256 on 13x13 0.373 -> 0.396 ms, Inception-v1's 96->208 on 14x14 0.500 -> 0.473, 112->224
# 0.618 -> 0.536. At 96 (ab_ops.py, 128 -> 96, Inception-v1's on 13x13 in the model): 96->208
# 0.505 -> 0.430, 112->224 0.609 -> 0.426; the model (ab_models.py, two runs of each) 27.0 / 26.7
# -> 25.7 / 25.4 ms, batch 8 equal (173.5 / 177.5 against 176.2 / 157.7).
PACKED_OVER_WINOGRAD_INPUTS = 96
# 1: the kernel reads a conv's columns where they lie in the (padded) input, through offset tables
# (packed_gemm.Gather); 0: im2col into scratch first.
GATHER_COLUMNS = 1
# Padded-image bytes from which the threads pad channel ranges each (below, the caller pads alone).
PAD_SPLIT_BYTES = 512 * 1024
STRIDED_MIN_OUTPUTS = 64
# 1: a 1x1 stride-2 unpadded conv's columns (every other pixel) come from one compiled pass on the
# caller (pad_jit, as the phase conv samples its strided 1x1 convs); 0: numpy's strided copy, split
# over the threads as Python tasks. Inside ResNet-50 at batch 1 (benchmarks/ab_ops.py): 512->1024
# 1x1/2 1.313 -> 1.157 ms, 1024->2048 1x1/2 1.286 -> 1.139; alone on two threads 1.26-1.29 ->
# 1.19-1.21 and 1.24-1.27 -> 1.18.
SAMPLED_PASS = 1
# 0: strided 1x1 convs past MAX_COLUMNS outputs go to the phase conv, its vectors along the
# sampled pixels (1: the packed kernel takes them up to WIDE_MAX_COLUMNS, one scattered store per
# output). ResNet-50's 512->1024 1x1/2 on 28x28 (benchmarks/ab_conv.py ds28, packed -> phases,
# two runs each): one thread 2.29 / 2.26 -> 2.04 / 2.03 ms, two 1.43 / 1.40 -> 1.30 / 1.30; inside
# the model on two threads (ab_ops.py) 1.41 -> 1.34. Up to MAX_COLUMNS (1024->2048 1x1/2 on 14x14,
# 49 outputs) the packed kernel stays ahead: 1.30 / 1.25 against 1.75 / 1.62.
STRIDED_POINTWISE_WIDE = 0


def packed_shape(g: ConvGeom, dtype: np.dtype, const_weights: bool) -> bool:
    """Group-1 float32 convs with constant weights, one image, few pixels and a deep reduction,
    and strided ones with a deep reduction at any map size and batch (strided_gather): the convs
    whose weights the compiler stores packed (conv._conv_prepack). The shape alone decides, so a
    model compiled on one host runs on any."""
    if g.group != 1 or np.dtype(dtype) != np.float32 or not const_weights:
        return False
    if g.n != 1:
        return strided_gather(g) or batch_columns(g)
    depth, cols = g.c * g.k_size, g.p_size
    sampled = g.k_size == 1 and max(g.strides) > 1 and not int(STRIDED_POINTWISE_WIDE)
    return (cols <= MAX_COLUMNS and depth >= MIN_DEPTH
            or cols <= WIDE_MAX_COLUMNS and depth >= WIDE_MIN_DEPTH and not sampled
            or cols <= WIDE_MAX_COLUMNS and depth >= MIN_DEPTH and g.same_3x3 or strided_gather(g))


def strided_gather(g: ConvGeom) -> bool:
    """Strided convs with kernels larger than 1x1 over a deep reduction and STRIDED_MIN_OUTPUTS or
    more outputs, whatever their map size: the kernel reads their columns where they lie
    (GATHER_COLUMNS), where im2col would copy each input pixel once per tap that reads it."""
    return (g.k_size > 1 and max(g.strides) > 1 and g.c * g.k_size >= MIN_DEPTH and g.m >= STRIDED_MIN_OUTPUTS
            and bool(GATHER_COLUMNS))


def beats_winograd(g: ConvGeom, dtype: np.dtype) -> bool:
    """A 3x3 "same" conv kept from Winograd, for the packed kernel or, where its rows are wide
    enough, the direct conv over stride phases (omrt.kernels.phase_conv), which since it runs
    narrow maps as one flat row takes them first (two threads, packed -> phases: SqueezeNet's
    64->256 on 13x13 0.27-0.31 -> 0.23-0.25 ms, Inception-v1's 96->208 on 14x14 0.40-0.46 ->
    0.26-0.28, Inception-v1 batch 1 12.98 -> 12.06 ms). Why not Winograd: a map of at most
    WIDE_MAX_COLUMNS pixels is 16 tiles or fewer, padded to 16x16 (13x13 wastes a third), and
    with fewer than PACKED_OVER_WINOGRAD_INPUTS inputs the transforms cost as much as its 36
    small GEMMs (on numpy below 128 channels when this was measured). One conv, caches flushed,
    Winograd -> packed on one / two threads (`bench_conv_kernel.py --winograd --cold`):
    SqueezeNet's 64->256 on 13x13 0.47 -> 0.37 / 0.45 -> 0.31 ms, 48->192 0.43 -> 0.24 /
    0.32 -> 0.24; Inception-v1's 96->208 on 14x14 0.51 -> 0.44 / 0.52 -> 0.38, 112->224 equal.
    In the models (batch 1, two threads, benchmarks/ab_models.py with
    PACKED_OVER_WINOGRAD_INPUTS=0 against the default): SqueezeNet-1.1 3.92 -> 3.71 ms (slow
    state 5.64 -> 5.21), Inception-v1 equal (12.94 / 12.92)."""
    return g.same_3x3 and g.c < PACKED_OVER_WINOGRAD_INPUTS and packed_shape(g, dtype, True)


def packed_eligible(g: ConvGeom, dtype: np.dtype, const_weights: bool) -> bool:
    """packed_shape, where the micro-kernel runs (packed_gemm.available)."""
    return packed_shape(g, dtype, const_weights) and packed_gemm.available()


def packed_workspace(g: ConvGeom) -> int:
    """The padded image and its columns (nothing for a 1x1 stride-1 unpadded conv); at least a copy
    of an unpadded image, which the gather tables read from where the input is not contiguous, and
    a padded image per image where a batch runs as one product."""
    if g.direct_view:
        return 0
    one_image = max(g.padded_elems + g.c * g.k_size * g.p_size, g.c * int(np.prod(g.in_sp)))
    return max(one_image, g.n * g.padded_elems if batch_product(g) else 0) * g.itemsize


def batch_product(g: ConvGeom) -> bool:
    """A batch of strided convs on small output maps (up to WIDE_MAX_COLUMNS pixels an image) as
    one product: every image padded side by side in scratch (or read where it lies), the weights
    streamed once for all of them. Four images on one thread, image by image -> one product:
    ResNet-50's 512->512 3x3/2 on 14x14 10.3 -> 9.0 ms, 256->256 on 28x28 9.3 -> 9.0; its 128->128 on 56x56
    (784 columns an image) took 9.7 -> 10.5 and stays image by image."""
    return g.n > 1 and strided_gather(g) and g.p_size <= WIDE_MAX_COLUMNS


def batch_columns(g: ConvGeom) -> bool:
    """1x1 stride-1 unpadded convs of a batch on small maps (up to MAX_COLUMNS pixels an image) over
    a reduction of MIN_DEPTH or more: one product over every image's columns, read where they lie
    (batch_tables), where BLAS would pack the weights for each image or the images be copied side
    by side first (omrt.kernels.stacked_images)."""
    return (g.direct_view and g.p_size <= MAX_COLUMNS and g.c >= MIN_DEPTH
            and bool(GATHER_COLUMNS))


def batch_tables(g: ConvGeom) -> packed_gemm.Gather:
    """gather_tables for every image of a batch at once, read from the padded images side by side
    in scratch, or from the unpadded input (n, C, *in_sp) where it lies, each image's outputs
    stored in its own place of (n, m, *out_sp)."""
    one = gather_tables(g)
    images = np.arange(g.n, dtype=np.int64)[:, None]
    pixels = g.p_size
    coff = images * (g.padded_elems if g.padded else g.c * int(np.prod(g.in_sp))) + one.coff[None, :]
    ycoff = images * (g.m * pixels) + np.arange(pixels, dtype=np.int64)[None, :]
    return packed_gemm.Gather(one.koff, np.ascontiguousarray(coff.reshape(-1)), np.ascontiguousarray(ycoff.reshape(-1)))


def gather_tables(g: ConvGeom) -> packed_gemm.Gather:
    """The conv's im2col columns as offsets into its padded image (C, *pad_sp), or into the input
    itself where the conv is unpadded: reduction row (c, *tap), in the weights' order, at koff,
    output pixel at coff."""
    extent = g.pad_sp if g.padded else g.in_sp
    steps = np.cumprod((1,) + tuple(extent[::-1]), dtype=np.int64)[::-1]   # floats per step of (C, *spatial)
    plane, spatial = steps[0], steps[1:]
    nd = len(g.kernel)
    taps = np.indices(g.kernel, np.int64).reshape(nd, -1).T @ (spatial * np.asarray(g.dilations, np.int64))
    pixels = np.indices(g.out_sp, np.int64).reshape(nd, -1).T @ (spatial * np.asarray(g.strides, np.int64))
    koff = (np.arange(g.c, dtype=np.int64)[:, None] * plane + taps[None, :]).reshape(-1)
    return packed_gemm.Gather(np.ascontiguousarray(koff), np.ascontiguousarray(pixels, np.int64))


def packed_build(g: ConvGeom, panels: np.ndarray, b_const: np.ndarray | None, epi: Epilogue, pool: Pool):
    """`panels`: the weights as the compiler stored them (packed_gemm.pack_panels), used in place."""
    depth, cols = g.c * g.k_size, g.p_size
    weights = packed_gemm.packed(panels.reshape((1,) + panels.shape[-3:]), g.m,
                                 None if b_const is None else np.asarray(b_const, np.float32))
    rows = packed_gemm.PANEL_ROWS
    flops = g.image_flops
    parts = pool.size if flops >= MIN_PARALLEL_FLOPS else 1
    panels = task_blocks(weights.count, parts, 1, flops)
    direct = g.direct_view
    in_place = g.same_3x3
    # The im2col is split by input channels over the threads that then split the GEMM: the padded
    # copy and the strided window copy (numpy) took 155 us for 512 channels of 14x14 at stride 2,
    # serial before the GEMMs. Two threads, the conv alone, against the serial im2col: ResNet-50's
    # 512->512 3x3/2 on 14x14 0.835 -> 0.813 ms, 256->256 3x3/2 on 28x28 0.806 -> 0.764.
    channel_pieces = split(g.c, parts)
    # Fewer panels than threads (32 outputs or fewer) on a 3x3 "same" conv: threads take pieces
    # of the columns instead, each building its own and multiplying every panel by them.
    # DenseNet's 128->32 on 14x14 alone on two threads 0.094 -> 0.078 ms; DenseNet-121 batch 1
    # (benchmarks/ab_models.py, COLUMN_PIECES=0 against 1) 21.53-21.76 -> 21.26-21.65 ms.
    one_panel = in_place and len(panels) < parts and COLUMN_PIECES
    pieces = split(cols, parts, packed_gemm.COLUMN_GROUP) if one_panel else []
    # Where the kernel finishes the output itself (a clamp or no activation, no bias given at run
    # time), the blocks of panels run as one native job (omrt.kernels.native_jobs).
    clamp = epi.clamp if NATIVE_TASKS and not pieces else None
    gather = gather_tables(g) if GATHER_COLUMNS and g.k_size > 1 and not pieces else None
    job = packed_gemm.job(weights, cols, panels, gather) if clamp is not None else None
    pad_pieces = split(g.c, parts if g.padded_elems * g.itemsize >= PAD_SPLIT_BYTES else 1)
    # A batch as one product over every image's columns (batch_product, batch_columns), where the
    # kernel finishes the output itself; otherwise image by image.
    batch = batch_tables(g) if (batch_product(g) or batch_columns(g)) and g.n > 1 and clamp is not None else None
    batch_parts = pool.size if flops * g.n >= MIN_PARALLEL_FLOPS else 1
    batch_pad_pieces = split(g.n * g.c, batch_parts if g.n * g.padded_elems * g.itemsize >= PAD_SPLIT_BYTES else 1)
    batch_split_pad = pad_jit.SplitPad(g.pb, (1, 1), batch_pad_pieces)
    batch_job = (packed_gemm.job(weights, g.n * cols, task_blocks(weights.count, batch_parts, 1, flops * g.n), batch)
                 if batch is not None else None)
    split_pad = pad_jit.SplitPad(g.pb, (1, 1), pad_pieces)
    sampled = bool(SAMPLED_PASS) and g.kernel == (1, 1) and g.strides == (2, 2) and not g.padded
    if in_place:
        left, right = edge_masks(g)
        jit.warm_up("columns_same3x3", lambda: columns_same3x3(
            jit.tiny(1), jit.tiny(9), 1, 1, np.zeros(1, np.uint8), np.zeros(1, np.uint8), 0, 1))

    def padded(src: np.ndarray, buf: np.ndarray, pieces: list[tuple[int, int]],
               split_job: pad_jit.SplitPad) -> np.ndarray:
        """src (planes, *spatial) padded into buf: by the threads' ranges of planes (as split_job's
        native job where pad_jit takes it), or on this thread alone."""
        if len(pieces) == 1:
            pad_into(src, buf, g.pb)
            return buf
        job = split_job.job(src, buf.reshape((1, 1) + buf.shape)) if len(g.kernel) == 2 else None
        if job is not None:
            job.run(pool)
            return buf

        def pad(i: int) -> None:
            a, b = pieces[i]
            pad_into(src[a:b], buf[a:b], g.pb)

        pool.run(pad, len(pieces))
        return buf

    def image(xn: np.ndarray, work: np.ndarray) -> np.ndarray:
        """The array the gather tables index: image xn padded into scratch, or xn itself,
        contiguous."""
        if not g.padded:
            if xn.flags.c_contiguous:
                return xn
            buf = work[:xn.size].reshape(xn.shape)
            np.copyto(buf, xn)
            return buf
        return padded(xn, work[:g.padded_elems].reshape((g.c,) + g.pad_sp), pad_pieces, split_pad)

    def run(inputs, outputs, scratch):
        x, y = inputs[0], outputs[0]
        bias, res = split_inputs(inputs, epi.residual)
        b2 = None if bias is None or b_const is not None else bias.reshape(g.m, 1)
        if (batch_job is not None and b2 is None and x.flags.c_contiguous and y.flags.c_contiguous
                and (res is None or res.flags.c_contiguous)):
            lo, hi = clamp
            y_at = y.ctypes.data
            images = x
            if g.padded:
                planes = (g.n * g.c,)
                images = padded(x.reshape(planes + g.in_sp),
                                scratch.view(np.float32)[:g.n * g.padded_elems].reshape(planes + g.pad_sp),
                                batch_pad_pieces, batch_split_pad)
            batch_job.set(x=images.ctypes.data, y=y_at, ldy=cols, res=y_at if res is None else res.ctypes.data,
                          lo=float(lo), hi=float(hi),
                          variant=packed_gemm.variant(res is not None, (lo, hi) != (-np.inf, np.inf)))
            batch_job.run(pool)
            return
        for n in range(g.n):
            convolve(x[n], y[n].reshape(g.m, cols), None if res is None else res[n].reshape(g.m, cols), b2, scratch)

    def convolve(xn: np.ndarray, y2: np.ndarray, r2: np.ndarray | None, b2: np.ndarray | None,
                 scratch: np.ndarray) -> None:
        """One image xn (C, *spatial) into y2 (m, pixels), the residual r2 added."""
        if direct:
            x2 = xn.reshape(depth, cols)
        elif gather is not None:
            x2 = image(xn, scratch.view(np.float32))
        elif in_place:
            x2 = scratch.view(np.float32)[:depth * cols].reshape(depth, cols)
            if not pieces:
                columns_same3x3(xn.reshape(-1), x2.reshape(-1), *g.in_sp, left, right, 0, cols)
        else:
            work = scratch.view(np.float32)
            buf = work[:g.padded_elems].reshape((g.c,) + g.pad_sp) if g.padded else None
            x2 = work[g.padded_elems:g.padded_elems + depth * cols].reshape(depth, cols)
            x5 = x2.reshape((g.c,) + g.kernel + g.out_sp)

            def columns(i: int) -> None:
                c0, c1 = channel_pieces[i]
                src = xn[c0:c1]
                if buf is not None:
                    pad_into(src, buf[c0:c1], g.pb)
                    src = buf[c0:c1]
                np.copyto(x5[c0:c1], windows(src, g.kernel, g.out_sp, g.strides, g.dilations))

            samples = x5.reshape((g.c,) + g.out_sp) if sampled else None
            if samples is not None and pad_jit.fits(xn, samples):
                pad_jit.pad_planes(xn, samples, 0, 0, step=2)
            else:
                pool.run(columns, len(channel_pieces))

        def block(i: int) -> None:
            first, last = panels[i]
            acc = np.empty(packed_gemm.accumulator_floats(cols), np.float32)
            packed_gemm.multiply(weights, x2, y2, acc, first, last, gather=gather)
            r0, r1 = first * rows, min(g.m, last * rows)
            finish(epi, y2[r0:r1], None if b2 is None else b2[r0:r1], None if r2 is None else r2[r0:r1])

        def piece(i: int) -> None:
            c0, c1 = pieces[i]
            columns_same3x3(xn.reshape(-1), x2.reshape(-1), *g.in_sp, left, right, c0, c1)
            acc = np.empty(packed_gemm.accumulator_floats(c1 - c0), np.float32)
            packed_gemm.multiply(weights, x2[:, c0:c1], y2[:, c0:c1], acc)
            finish(epi, y2[:, c0:c1], b2, None if r2 is None else r2[:, c0:c1])

        if pieces:
            pool.run(piece, len(pieces))
        elif (job is not None and b2 is None and (r2 is None or r2.strides == y2.strides)
              and (gather is not None or x2.strides[1] == 4)):
            lo, hi = clamp
            y_at = y2.ctypes.data
            job.set(x=x2.ctypes.data, y=y_at, ldx=0 if gather is not None else x2.strides[0] // 4,
                    ldy=y2.strides[0] // 4,
                    res=y_at if r2 is None else r2.ctypes.data, lo=float(lo), hi=float(hi),
                    variant=packed_gemm.variant(r2 is not None, (lo, hi) != (-np.inf, np.inf)))
            job.run(pool)
        else:
            pool.run(block, len(panels))

    # The native jobs gather each residual element just before they scatter the output element
    # to its place (conv._conv_overwrites); the Python blocks add it after the product.
    run.residual_first = job is not None
    return run
