"""Winograd F(4x4, 3x3) for 3x3 stride-1 convs (Lavin & Gray).

Y = A^T [(G g G^T) * (B^T d B)] A on 6x6 input tiles. Each 2-D transform is one GEMM with a
Kronecker-product matrix, so all three stages run in BLAS; the weights are transformed at compile
time (the prepack hook in omrt.kernels.conv). Tasks own image bands of tiles; with few tiles in
the batch, or weights streamed from memory, they own blocks of output channels instead
(by_channel_blocks).
"""
from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from omrt.kernels import jit, packed_gemm, winograd_jit, winograd_native
from omrt.kernels.conv_common import (
    CHANNEL_ALIGN, CHUNK_BYTES, MIN_PARALLEL_FLOPS, ConvGeom, finish, pad_into, split_inputs,
)
from omrt.kernels.epilogue import Epilogue
from omrt.kernels.parallel import get_pool, lead_split, split

_BT = np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
                [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], dtype=np.float64)
_G = np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
               [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]], dtype=np.float64)
_AT = np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0],
                [0, 1, -1, 8, -8, 1]], dtype=np.float64)
_WINO_IN = np.kron(_BT, _BT)      # (36, 36): vec(B^T d B) for row-major 6x6 d
_WINO_OUT = np.kron(_AT, _AT)     # (16, 36)
_WINO_W = np.kron(_G, _G)         # (36, 9)
WINOGRAD_MIN_CHANNELS = 16
# The input transform costs the same per input channel whatever the outputs; with 16 inputs it
# outweighs the saved multiplies (SqueezeNet's 16->64 on 55x55: 0.51 ms Winograd, 0.34 ms im2col
# on one thread; `bench_conv_kernel.py --cases q55`).
WINOGRAD_MIN_INPUTS = 32
# The transformed weights are 4x the plain ones and every task re-reads them, so Winograd only
# pays off with enough tiles per weight pass (measured with benchmarks/bench_conv_kernel.py).
WINOGRAD_MIN_TILES = 16
# Winograd makes more numpy calls and pool dispatches than im2col (transforms, a second dispatch
# for by_channel_blocks), a cost that does not shrink with the op, so small convs keep im2col.
# With the transforms as Kronecker GEMMs (numpy paths, OMRT_JIT=0): SqueezeNet-1.1 at batch 1
# (`profile_model.py`, kernel time, three alternations) 5.85-6.22 -> 4.84-4.97 ms with its three
# Winograd shapes (28-54 Mflop each) on im2col; Inception-v1's 13x13 convs of 60-100 Mflop tie
# either way; from 120 Mflop Winograd wins (128->192 on 27x27, 322 Mflop: 0.77-0.98 against 1.11).
# With the compiled transforms (omrt.kernels.winograd_jit) those SqueezeNet shapes gain from
# Winograd (32->128 on 27x27 0.30 -> 0.21 ms alone; the model 5.05-5.16 -> 4.81-4.92 ms, two
# alternations; Inception-v1 batch 1 19.0-19.2 -> 18.7, batch 8 within its spread).
WINOGRAD_MIN_FLOPS = 2e7
WINOGRAD_MIN_FLOPS_NUMPY = 1e8
# With few output channels the input transform (proportional to C) outweighs the saved multiplies
# on small maps, so they need this many tiles per image. DenseNet's 128->32 against the tap GEMM
# (omrt.kernels.tap_gemm), one conv flushed (`bench_conv_kernel.py --cold`, the tap GEMM's shapes
# forced to Winograd): at batch 4 on one thread, as a batch lane runs them, 56x56 6.04 -> 4.99 ms,
# 28x28 1.89 -> 1.41-1.60, 14x14 (16 tiles) 0.56 -> 0.58-0.65, 7x7 0.28 -> 0.34; at batch 1 on
# two threads 56x56 1.06 -> 0.85, 28x28 0.40 -> 0.37, 14x14 0.21 -> 0.26.
FEW_OUTPUTS = 64
FEW_OUTPUTS_MIN_TILES = 49
WINO_TASK_COLS = 128      # tiles per task: enough GEMM columns, small enough to stay in L2
CHANNEL_SPLIT_MAX_TILES = 32  # tiles of the whole batch up to which output channels are split (by_channel_blocks)
# Transformed weights beyond what the last-level cache holds are streamed from memory by every
# task; by_channel_blocks splits such convs by output channels so no weight is read twice.
# A stricter tile minimum for them no longer paid: with 16 tiles, 512->512 3x3 on 14x14 at
# batch 1 (VGG-19) and on 7x7 at batch 4 (ResNet-50 in two lanes at batch 8) ran faster by
# Winograd, one conv flushed 2.59 -> 2.19 ms on two threads and 6.57 -> 4.16 on one
# (`bench_conv_kernel.py --cold`), in the model VGG-19 batch 1 76.5-77.6 -> 75.6-76.2 ms and
# ResNet-50 batch 8 176.2-181.3 -> 173.0-175.7.
STREAMED_WEIGHT_BYTES = 16 * 1024 * 1024
# Tiles per row, and input channels, up to which the compiled input transform reads the tiles
# where they lie in the padded input (winograd_jit.transform_in_tiles) instead of gathering them
# into 36 rows first, a numpy copy of one tile row's few floats at a time (85-125 us of a 0.75 ms
# conv for ResNet-50's 256->256 on 14x14, 4 tiles a row). One conv alone on two threads
# (benchmarks/ab_conv.py, IN_PLACE_MAX_TILES=0 against 8, the VM's fast state): ResNet-50's
# 256->256 on 14x14 0.925 / 0.885 -> 0.878 / 0.835 ms, 128->128 on 28x28 0.800 / 0.793 -> 0.720 /
# 0.744, Inception-v1's 160->320 on 13x13 0.833 / 0.840 -> 0.714 / 0.772. Inside ResNet-50
# (benchmarks/ab_ops.py): equal in the fast state (-0.03 and -0.20 ms for those convs), and in a
# slow moment 8.38 -> 6.63 ms for the five 256->256 and 5.39 -> 3.97 for the three 128->128.
# With 14 tiles a row (64->64 on 56x56) reading in place lost 3-8 %, and with 512 channels
# (VGG-19's 14x14 and 28x28 convs: the model 97.0 -> 99.1 ms).
IN_PLACE_MAX_TILES = 8
IN_PLACE_MAX_CHANNELS = 256


# Where the GEMMs are packed (and the output pass compiled), the stages run as native jobs
# (omrt.kernels.winograd_native) instead of Python tasks. ResNet-50 at batch 1, each op timed in
# turn in both (benchmarks/ab_ops.py, 0 against 1): the five 256->256 on 14x14 4.54 -> 3.46 ms,
# the three 128->128 on 28x28 2.46 -> 2.07, the three 64->64 on 56x56 3.13 -> 3.19 (their tiles
# gathered by a compiled loop instead of numpy's copy); all ops 42.0 -> 40.4 ms.
NATIVE_JOBS = 1
# Blocks per thread of the native jobs' input and output channels (by_channel_blocks), taken as the
# threads come free (omrt.kernels.parallel.task_blocks): ResNet-50's five 256->256 on 14x14 with a
# busy loop on cpu0 half the time (ab_ops.py, 1 against 4) 4.92 -> 4.50 ms; without it equal.
NATIVE_CHANNEL_BLOCKS = 4


def _streamed(g: ConvGeom) -> bool:
    """The transformed float32 weights are beyond what the last-level cache holds."""
    return 36 * g.m * g.c * 4 > STREAMED_WEIGHT_BYTES


# Input and output channels from which the 36 GEMMs run on omrt.kernels.packed_gemm: one thread,
# (36, M, C) @ (36, C, tiles) against numpy's batched matmul, hot / caches flushed: 256x256 by 16
# tiles 0.48 / 0.79 -> 0.31 / 0.52 ms, 128x128 by 49 0.26 / 0.42 -> 0.24 / 0.34; 64x64 by 196
# 0.24 / 0.36 -> 0.25 / 0.49 (short reductions: the kernel's per-group overhead shows). Whole convs
# of 64-127 channels still gain from 64 (was 128): their stages then run as native jobs
# (NATIVE_JOBS), not Python tasks around numpy's GEMMs. Two threads, batch 1, 128 -> 64
# (benchmarks/ab_conv.py --winograd): ResNet-50's 64->64 on 56x56 2.04 -> 1.79 ms, Inception-v1's
# 96->128 on 27x27 1.74 -> 1.27, 64->192 on 55x55 4.10 -> 3.98; in ResNet-50 (ab_ops.py) its three
# 64->64 6.50 -> 4.46 and 5.31 -> 4.67 ms, on one thread 6.24 -> 5.60. Models (ab_models.py, two
# runs of each): ResNet-50 batch 1 56.2 / 57.3 -> 56.0 / 55.5 ms, Inception-v1 29.0 / 28.8 ->
# 27.4 / 27.5, VGG-19 equal (129.8 / 131.0 -> 129.8 / 135.2); at batch 4 on one thread (as a
# batch lane runs them) 64->64 on 56x56 equal (9.15 -> 9.37 / 9.24), 96->128 6.82 -> 5.82.
PACKED_MIN_CHANNELS = 64


def packed_gemm_wins(g: ConvGeom) -> bool:
    return min(g.c, g.m) >= PACKED_MIN_CHANNELS


def wino_eligible(g: ConvGeom, dtype: Any) -> bool:
    th, tw = wino_tiles(g)
    tiles = g.n * th * tw
    return (np.dtype(dtype) == np.float32 and len(g.kernel) == 2 and g.kernel == (3, 3)
            and g.strides == (1, 1) and g.dilations == (1, 1) and g.group == 1
            and min(g.c, g.m) >= WINOGRAD_MIN_CHANNELS and g.c >= WINOGRAD_MIN_INPUTS
            and (th * tw >= FEW_OUTPUTS_MIN_TILES if g.m < FEW_OUTPUTS else tiles >= WINOGRAD_MIN_TILES)
            and g.image_flops * g.n >= (WINOGRAD_MIN_FLOPS if jit.enabled() else WINOGRAD_MIN_FLOPS_NUMPY))


def beats_tap_gemm(g: ConvGeom) -> bool:
    """Whether a conv the tap GEMM could take runs faster as Winograd: only with the compiled
    transforms (the Kronecker GEMMs cost more than the saved multiplies), on maps of at least
    FEW_OUTPUTS_MIN_TILES tiles (wino_eligible checks those)."""
    return jit.enabled()


def wino_weight(w: np.ndarray) -> np.ndarray:
    """(M, C, 3, 3) -> (36, M, C): the 36 weight matrices of the batched GEMM."""
    m, c = w.shape[:2]
    u = _WINO_W @ w.astype(np.float64).reshape(m * c, 9).T
    return np.ascontiguousarray(u.reshape(36, m, c).astype(np.float32))


def wino_tiles(g: ConvGeom) -> tuple[int, int]:
    return -(-g.out_sp[0] // 4), -(-g.out_sp[1] // 4)


def wino_workspace(g: ConvGeom) -> int:
    """Padded batch, two tile buffers for the whole batch (each thread works in the part of them
    its tiles own), and the transformed outputs of the channel-block path."""
    th, tw = wino_tiles(g)
    t = g.n * th * tw
    pad = g.n * g.c * (4 * th + 2) * (4 * tw + 2)
    return (pad + 36 * max(g.c, g.m) * t + max(36 * g.c, 16 * g.m) * t + 16 * g.m * t) * g.itemsize


def by_channel_blocks(g: ConvGeom, threads: int) -> bool:
    """Few tiles in the whole batch: split output channels, not tiles.

    Cut into tile bands, every task multiplies all the transformed weights by a handful of tile
    columns (8 per task for 14x14), so each task streams the whole weight set for thin GEMMs.
    Cut by output channels, each task reads only its rows of the weights and multiplies them by
    every tile; the input transform before it is split by input channels. ResNet-50's 256->256 on
    14x14 (5 convs, 2 threads, in the model): 4.0-4.4 -> 3.0-3.2 ms. 28x28 maps (49 tiles) were
    no faster this way than in bands, unless the weights are streamed from memory (beyond
    STREAMED_WEIGHT_BYTES), where every band re-reads all of them: VGG-19's 512->512 on 28x28
    (3 convs, 37.7 MB of transformed weights each) 18.3-26.7 -> 13.9-17.0 ms at batch 1 and
    97-101 -> 89-95 ms at batch 8.
    """
    th, tw = wino_tiles(g)
    few = g.n * th * tw <= CHANNEL_SPLIT_MAX_TILES
    return threads > 1 and (few or _streamed(g)) and g.m >= 2 * CHANNEL_ALIGN


def wino_tasks(g: ConvGeom, threads: int) -> list[tuple[int, int, int, int]]:
    """(first image, end image, first tile row, end tile row): one image band or whole images."""
    th, tw = wino_tiles(g)
    t = th * tw
    if t >= WINO_TASK_COLS or g.n < threads:
        bands = max(1, round(t / WINO_TASK_COLS), -(-threads // g.n))
        return [(n, n + 1, a, b) for n in range(g.n) for a, b in split(th, bands)]
    per = max(1, min(-(-WINO_TASK_COLS // t), g.n // threads))
    # a multiple of the thread count: 8 images of 49 tiles in 3 tasks left one thread idle a third
    count = -(-g.n // per)
    count = min(g.n, threads * -(-count // threads))
    return [(a, b, 0, th) for a, b in split(g.n, count)]


def task_runs(tasks: list[tuple[int, int, int, int]], threads: int, th: int, tw: int) -> list[tuple[int, int, int, int]]:
    """(first task, end task, first tile column, tile columns): consecutive runs of the tasks, one
    per thread, each run in turn in the same scratch, the part of the tile buffers that the run's
    first task owns, as large as its largest task (tasks lie in tile order, so that part is within
    the run's own). Each task writing its own part instead streamed the transformed tiles through
    memory: one conv flushed, at batch 4 on one thread (`bench_conv_kernel.py --winograd --cold
    --batch 4`), 64->64 on 56x56 1.12-1.16 -> 0.93 of onnxruntime's time, 128->128 on 28x28
    0.86-0.87 -> 0.78-0.79, SqueezeNet's 32->128 on 27x27 1.14-1.22 -> 1.02-1.03."""
    runs = []
    for lo, hi in split(len(tasks), min(len(tasks), threads)):
        n0, _, r0, _ = tasks[lo]
        cols = max((n1 - na) * (r1 - ra) * tw for na, n1, ra, r1 in tasks[lo:hi])
        runs.append((lo, hi, n0 * th * tw + r0 * tw, cols))
    return runs


def wino_build(g: ConvGeom, u_const: np.ndarray | None, b_const: np.ndarray | None, epi: Epilogue,
                dtype: np.dtype, packed_weights: bool = False):
    """`packed_weights`: u_const is stored packed (packed_gemm.pack_panels, conv._conv_prepack)."""
    pool = get_pool()
    th, tw = wino_tiles(g)
    t = th * tw
    hp, wp = 4 * th + 2, 4 * tw + 2
    ho, wo = g.out_sp
    exact = (ho, wo) == (4 * th, 4 * tw)
    c, m, isz = g.c, g.m, g.itemsize
    pad_n = g.n * c * hp * wp
    a_w = 36 * max(c, m)
    b_w = max(36 * c, 16 * m)
    a_off, b_off = pad_n, pad_n + a_w * g.n * t
    o_off = b_off + b_w * g.n * t
    # The transforms as compiled row passes (omrt.kernels.winograd_jit) or as Kronecker GEMMs.
    compiled = jit.enabled()
    in_place_tiles = compiled and tw <= IN_PLACE_MAX_TILES and c <= IN_PLACE_MAX_CHANNELS
    # ... and the move into the output with bias, residual and activation as one compiled pass
    one_pass = epi.one_pass if compiled and np.dtype(dtype) == np.float32 else None
    zeros = np.zeros(m, dtype=dtype)
    zeros.flags.writeable = False  # as constant biases are: one compiled signature for both
    if compiled:
        winograd_jit.warm_up()
    k_in = _WINO_IN.astype(dtype)
    k_out = _WINO_OUT.astype(dtype)
    # The 36 GEMMs through omrt.kernels.packed_gemm on the weights as stored (output in the
    # kernel's own (tiles, channels) layout, which the compiled output pass reads as it is); where
    # that cannot run, numpy's matmul on an unpacked copy.
    packed = None
    if packed_weights:
        if one_pass is not None and packed_gemm.available():
            packed = packed_gemm.packed(u_const, m)
        else:
            u_const = packed_gemm.unpack_panels(u_const, m).astype(dtype, copy=False)
    # the flops of the direct conv decide threading, as for every other conv path
    threads = pool.size if g.image_flops * g.n >= MIN_PARALLEL_FLOPS else 1
    channels = by_channel_blocks(g, threads)
    tasks = [] if channels else wino_tasks(g, threads)
    runs = task_runs(tasks, threads, th, tw) if tasks else []
    # channel blocks start on a packed panel where the GEMMs are packed
    align = CHANNEL_ALIGN if packed is None else packed_gemm.PANEL_ROWS
    ranges = lead_split(m, pool.size, align, 72.0 * m * c * g.n * t) if channels else []
    in_ranges = split(c, pool.size) if channels else []
    pad_parts = split(g.n * c, pool.size if pool.size > 1 and pad_n * isz > CHUNK_BYTES else 1)
    bshape = (m, 1, 1)
    native = None
    if NATIVE_JOBS and packed is not None and winograd_native.available():
        geometry = dict(N=g.n, C=c, M=m, H=g.in_sp[0], W=g.in_sp[1], HO=ho, WO=wo, HP=hp, WP=wp, TOP=g.pb[0],
                        LEFT=g.pb[1], TH=th, TW=tw, IN_PLACE=int(in_place_tiles), A_W=a_w, B_W=b_w)
        if channels:
            per = NATIVE_CHANNEL_BLOCKS * pool.size
            first, second, columns = split(c, per), split(m, per, align), g.n * t
        else:
            first, second = pad_parts, [run[:3] for run in runs]
            columns = max((n1 - n0) * (r1 - r0) * tw for n0, n1, r0, r1 in tasks)
        native = winograd_native.WinogradJobs(geometry, packed, one_pass, first, second, tasks, columns,
                                              (0, a_off, b_off, o_off))

    def run(inputs, outputs, scratch):
        x, y = inputs[0], outputs[0]
        bias, res = split_inputs(inputs, epi.residual)
        if native is not None:
            b = b_const if b_const is not None else bias
            fits = (b is None or b.size == m) and (res is None or res.shape == y.shape)
            if fits and winograd_native.takes(x, y, res, b):
                native.run(pool, x, y, b, res, scratch.view(dtype), threads > 1)
                return
        u = u_const if u_const is not None else inputs[1]
        bvec = (b_const if b_const is not None else bias).reshape(bshape) if bias is not None else None
        work = scratch.view(dtype)
        buf = work[:pad_n].reshape(g.n, c, hp, wp)

        def gemm(v: np.ndarray, out: np.ndarray, lo: int = 0, hi: int = m) -> np.ndarray:
            """u[:, lo:hi] @ v (36, channels, columns) into `out`'s memory; from the packed GEMM
            its transpose (36, columns, channels), one allocation of partial sums per call."""
            if packed is None:
                mo = out[:36 * (hi - lo) * v.shape[2]].reshape(36, hi - lo, v.shape[2])
                np.matmul(u[:, lo:hi], v, out=mo)
                return mo
            mo = out[:36 * (hi - lo) * v.shape[2]].reshape(36, v.shape[2], hi - lo)
            rows = packed_gemm.PANEL_ROWS
            acc = np.empty(packed_gemm.accumulator_floats(v.shape[2]), np.float32)
            packed_gemm.multiply(packed, v, mo, acc, lo // rows, -(-hi // rows), transposed=True)
            return mo
        flat_x, flat_buf = x.reshape(g.n * c, *x.shape[2:]), buf.reshape(g.n * c, hp, wp)

        def pad_part(i: int) -> None:
            a, b = pad_parts[i]
            pad_into(flat_x[a:b], flat_buf[a:b], g.pb)

        pool.run(pad_part, len(pad_parts))
        s0, s1, s2, s3 = buf.strides
        y6 = y.reshape(g.n, m, th, 4, tw, 4) if exact else None

        def transform_in(n0: int, ni: int, r0: int, rb: int, a: np.ndarray, b: np.ndarray,
                         c0: int = 0, c1: int = c) -> np.ndarray:
            """B^T d B of the tiles of images n0.. and tile rows r0.. (input channels c0:c1 of them):
            (36, C, tiles) in b, a: scratch of the same size."""
            cols = ni * rb * tw
            if in_place_tiles:
                v = b[:36 * c * cols].reshape(36, c, cols)
                winograd_jit.transform_in_tiles(buf, v, n0, ni, r0, rb, tw, c0, c1)
                return v
            d = a[:36 * c * cols].reshape(36, c, cols)[:, c0:c1]
            tiles = as_strided(buf[n0, c0:, 4 * r0:], (6, 6, c1 - c0, ni, rb, tw),
                               (s2, s3, s1, s0, 4 * s2, 4 * s3), writeable=False)
            np.copyto(d.reshape(6, 6, c1 - c0, ni, rb, tw), tiles)
            v = b[:36 * c * cols].reshape(36, c, cols)
            if compiled:
                winograd_jit.transform_in(a[:36 * c * cols].reshape(36, -1), v.reshape(36, -1), c0 * cols, c1 * cols)
            else:
                np.matmul(k_in, d.reshape(36, -1), out=v[:, c0:c1].reshape(36, -1))
            return v

        def transform_out(mo: np.ndarray, o: np.ndarray, stage: np.ndarray, n0: int, ni: int, r0: int, rb: int,
                          ch: slice) -> None:
            """A^T M A of mo (36, channels, tiles), or (36, tiles, channels) from the packed GEMM,
            into y[n0:n0+ni, ch], then bias, residual, activation."""
            mb = mo.shape[2] if packed is not None else mo.shape[1]
            o = o[:16 * mo[0].size].reshape(16, -1)
            if compiled:
                winograd_jit.transform_out(mo.reshape(36, -1), o, 0, o.shape[1])
            else:
                np.matmul(k_out, mo.reshape(36, -1), out=o)
            if one_pass is not None:
                c0 = ch.start or 0
                b = zeros[:mb] if bvec is None else bvec[c0:c0 + mb].reshape(mb)
                o3 = o.reshape(16, -1, mb).transpose(0, 2, 1) if packed is not None else o.reshape(16, mb, -1)
                winograd_jit.scatter_out(o3, y, c0, n0, r0, rb, tw, b, y if res is None else res, res is not None,
                                         *one_pass)
                return
            blocks = o.reshape(4, 4, mb, ni, rb, tw).transpose(3, 2, 4, 0, 5, 1)
            rows = slice(4 * r0, min(4 * (r0 + rb), ho))
            imgs = slice(n0, n0 + ni)
            if y6 is not None:
                np.copyto(y6[imgs, ch, r0:r0 + rb], blocks)
            else:
                st = stage[:16 * mb * ni * rb * tw].reshape(ni, mb, rb, 4, tw, 4)
                np.copyto(st, blocks)
                np.copyto(y[imgs, ch, rows], st.reshape(ni, mb, 4 * rb, 4 * tw)[:, :, :rows.stop - rows.start, :wo])
            finish(epi, y[imgs, ch, rows], None if bvec is None else bvec[ch],
                   None if res is None else res[imgs, ch, rows])

        if channels:
            nt = g.n * t
            a_all, b_all = work[a_off:a_off + a_w * nt], work[b_off:b_off + b_w * nt]
            v = b_all[:36 * c * nt].reshape(36, c, nt)

            def inputs_part(i: int) -> None:
                transform_in(0, g.n, 0, th, a_all, b_all, *in_ranges[i])

            pool.run(inputs_part, len(in_ranges))
            o_all = work[o_off:o_off + 16 * m * nt]

            def block(i: int) -> None:
                lo, hi = ranges[i]
                mo = gemm(v, a_all[36 * lo * nt:36 * hi * nt], lo, hi)
                transform_out(mo, o_all[16 * lo * nt:16 * hi * nt], mo.reshape(-1), 0, g.n, 0, th, slice(lo, hi))

            pool.run(block, len(ranges))
            return

        def run_of_tasks(k: int) -> None:
            lo, hi, col0, cols = runs[k]
            a = work[a_off + a_w * col0:a_off + a_w * (col0 + cols)]
            b = work[b_off + b_w * col0:b_off + b_w * (col0 + cols)]
            for n0, n1, r0, r1 in tasks[lo:hi]:
                ni, rb = n1 - n0, r1 - r0
                v = transform_in(n0, ni, r0, rb, a, b)
                mo = gemm(v, a)
                transform_out(mo, b, a, n0, ni, r0, rb, slice(None))

        pool.run(run_of_tasks, len(runs), threads > 1)
    return run
