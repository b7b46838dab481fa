"""Pooling: windows reduced axis by axis (omrt.kernels.separable), reduced into the output.

Padding (explicit, auto_pad, and the ceil_mode overhang) is materialised once per call in planned
scratch filled with the reduction's identity; averaging multiplies by a reciprocal count map
computed at build time, so count_include_pad costs nothing at run time. Planes are cut into
blocks of a few MB (smaller blocks measured slower: each costs a handful of numpy calls); blocks
go to the kernel thread pool only when the op is large enough to repay a dispatch. The Indices output of MaxPool keeps
the per-tap path, which needs each tap's position.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from omrt.kernels import avgpool_jit, jit, maxpool_jit
from omrt.kernels.base import OpSpec, check, register
from omrt.kernels.conv_common import WindowGeom, pad_into, window_geom
from omrt.kernels.epilogue import float16_via_float32
from omrt.kernels.parallel import get_pool, split
from omrt.kernels.window_jit import pool_planes
from omrt.kernels.separable import Separable
from omrt.kernels.window3 import Window3

BLOCK_BYTES = 4 * 1024 * 1024  # input+output bytes per plane block; fewer blocks, fewer numpy calls
# Input+output bytes above which blocks go to the thread pool. Plans with strided row passes do
# more work per byte than all-flat ones (omrt.kernels.separable), so they pay off sooner: on one
# Zen 5 core pair, 64x112x112 3x3/2 went 0.38 -> 0.29 ms on two threads while 256x28x28 3x3/1
# (all flat, 1.7 MB) went 0.18 -> 0.21.
PARALLEL_BYTES = 1024 * 1024
PARALLEL_BYTES_FLAT = 4 * 1024 * 1024
# The compiled loop (omrt.kernels.window_jit) takes about 37 us per MB of a 3x3/2 max pool, so
# a second thread repays its wake-up only on the larger ones. One op, 2 threads against 1
# (`bench_pool_kernel.py`): 64x112x112 (4 MB) 0.147 -> 0.122 ms, 64x111x111 (3.9 MB) 0.150 ->
# 0.139, 192x56x56 (3 MB) 0.138 -> 0.140, 128x55x55 (1.9 MB) 0.087 -> 0.103; ShuffleNet's
# 24x112x112 (1.5 MB) in the model at batch 1, 0.058 -> 0.090.
PARALLEL_BYTES_COMPILED = 3 * 1024 * 1024
# The one-pass kernels (omrt.kernels.maxpool_jit, avgpool_jit) split as native jobs, which their
# threads start without the GIL: from 512 KB (two threads: SqueezeNet's 128x55x55 3x3/2 0.065 ->
# 0.036 ms, 256x27x27 0.033 -> 0.019, DenseNet's 2x2/2 on 512x28x28 0.026 -> 0.015 ms).
PARALLEL_BYTES_ONE_PASS = 512 * 1024
# 1: 3x3 stride-2 max pools through omrt.kernels.maxpool_jit, 2x2 stride-2 average pools through
# omrt.kernels.avgpool_jit, where they run (0: the general loop).
ONE_PASS_MAX_POOL = 1
ONE_PASS_AVERAGE_POOL = 1


@dataclass
class PoolGeom(WindowGeom):
    @property
    def needs_pad(self) -> bool:
        return self.pad_sp != self.in_sp

    @property
    def taps(self) -> list[tuple[int, ...]]:
        return list(np.ndindex(*self.kernel))

    def tap_slices(self) -> list[tuple[slice, ...]]:
        """Per tap, the strided slice of the padded input that tap reads for every output."""
        return [(slice(None), slice(None)) + tuple(slice(t * d, t * d + (o - 1) * s + 1, s)
                                                   for t, d, o, s in zip(tap, self.dilations, self.out_sp,
                                                                         self.strides))
                for tap in self.taps]

    def axis_counts(self, with_pads: bool) -> list[np.ndarray]:
        """Per axis and tap, whether output o's tap k falls in the counted region."""
        res = []
        for ax, (i, b, e, o, s, k, d) in enumerate(zip(self.in_sp, self.pb, self.pe, self.out_sp,
                                                        self.strides, self.kernel, self.dilations)):
            pos = (np.arange(o)[:, None] * s + np.arange(k)[None, :] * d)  # index into padded axis
            lo, hi = (0, i + b + e) if with_pads else (b, b + i)
            res.append((pos >= lo) & (pos < hi))
        return res


def pool_geom(spec: OpSpec) -> PoolGeom:
    return PoolGeom(**vars(window_geom(spec, tuple(spec.attr("kernel_shape")))))


def _plan(g: PoolGeom) -> Separable:
    return Separable(g.pad_sp, g.out_sp, g.kernel, g.strides, g.dilations)


def _window3(g: PoolGeom) -> Window3 | None:
    """The unpadded 3x3 plan (omrt.kernels.window3) where it applies."""
    return Window3.plan(g.in_sp, g.out_sp, g.kernel, g.strides, g.dilations, g.pb)


def _stage_elems(plan: Separable, direct: Window3 | None) -> int:
    """Elements per plane of each of the two intermediates, for whichever plan runs."""
    elems = max(plan.stage_elems(), plan.flat_elems())
    return max(elems, direct.buffer_elems()) if direct is not None else elems


def _pool_workspace(spec: OpSpec) -> int:
    """Padded input (when padding is needed) and two intermediates, for all planes."""
    g = pool_geom(spec)
    planes = g.n * g.c
    pad = planes * int(np.prod(g.pad_sp)) if g.needs_pad else 0
    return (pad + 2 * planes * _stage_elems(_plan(g), _window3(g))) * g.itemsize


def _blocks(g: PoolGeom, threads: int, parallel_bytes: int) -> tuple[list[tuple[int, int]], bool]:
    """Ranges over the flattened N*C planes of about BLOCK_BYTES each, and whether to use threads.

    Small ops stay on the calling thread: the passes are bound by memory and per-call costs, and
    waking a pool thread costs 10-60 us on a virtual machine.
    """
    planes = g.n * g.c
    per_plane = (int(np.prod(g.pad_sp)) + int(np.prod(g.out_sp))) * g.itemsize
    total = planes * per_plane
    parts = max(1, -(-total // BLOCK_BYTES))
    threaded = threads > 1 and total > parallel_bytes
    if threaded:
        parts = threads * -(-parts // threads)
    return split(planes, parts), threaded


def _separable(g: PoolGeom, fill: Any, scale: np.ndarray | None, op: Any):
    """Kernel body shared by max and average pooling: per plane block, pad, reduce axis by axis."""
    pool = get_pool()
    plan = _plan(g)
    blocks, threaded = _blocks(g, pool.size, PARALLEL_BYTES_FLAT if plan.all_flat else PARALLEL_BYTES)
    planes = g.n * g.c
    n_pad = planes * int(np.prod(g.pad_sp)) if g.needs_pad else 0
    direct = _window3(g)
    n_stage = _stage_elems(plan, direct)

    def run_blocks(x: np.ndarray, y: np.ndarray, scratch: np.ndarray | None) -> None:
        x3 = x.reshape((planes,) + x.shape[2:])
        y3 = y.reshape((planes,) + y.shape[2:])
        work = scratch[:(n_pad + 2 * planes * n_stage) * x.dtype.itemsize].view(x.dtype)
        buf = work[:n_pad].reshape((planes,) + g.pad_sp) if g.needs_pad else None
        stage = work[n_pad:].reshape(2, planes, n_stage)

        def task(i: int) -> None:
            a, b = blocks[i]
            src = x3[a:b]
            if direct is not None and src.flags.c_contiguous:
                direct.run(src, y3[a:b], (stage[0, a:b].reshape(-1), stage[1, a:b].reshape(-1)), op)
                if scale is not None:
                    np.multiply(y3[a:b], scale, out=y3[a:b])
                return
            if buf is not None:
                pad_into(src, buf[a:b], g.pb, fill)
                src = buf[a:b]
            out = y3[a:b]
            plan.run(src, out, (stage[0, a:b].reshape(-1), stage[1, a:b].reshape(-1)), op)
            if scale is not None:
                np.multiply(out, scale, out=out)

        pool.run(task, len(blocks), threaded)
    return run_blocks


def _compiles(g: PoolGeom, dtype: np.dtype) -> bool:
    """2-D float pools go through the compiled loop (omrt.kernels.window_jit) when it is enabled."""
    return jit.enabled() and len(g.in_sp) == 2 and np.dtype(dtype) in (np.float32, np.float64)


def _compiled(g: PoolGeom, scale: np.ndarray | None, is_max: bool, dtype: np.dtype):
    """Kernel body for 2-D pools through omrt.kernels.window_jit: blocks of planes, no scratch."""
    pool = get_pool()
    blocks, threaded = _blocks(g, pool.size, PARALLEL_BYTES_COMPILED)
    planes = g.n * g.c
    geometry = (*g.kernel, *g.strides, *g.dilations, *g.pb[:2])
    weights = np.ones((1, 1), dtype=dtype) if scale is None else np.ascontiguousarray(scale, dtype=dtype)
    jit.warm_up(f"pool_planes {np.dtype(dtype)}", lambda: pool_planes(
        jit.tiny(1, 1, 1, dtype=dtype), jit.tiny(1, 1, 1, dtype=dtype), 1, 1, 1, 1, 1, 1, 0, 0, is_max, weights[:1, :1]))

    def run_blocks(x: np.ndarray, y: np.ndarray, scratch: np.ndarray | None) -> None:
        x3 = x.reshape((planes,) + x.shape[2:])
        y3 = y.reshape((planes,) + y.shape[2:])

        def task(i: int) -> None:
            a, b = blocks[i]
            pool_planes(x3[a:b], y3[a:b], *geometry, is_max, weights)

        pool.run(task, len(blocks), threaded)
    return run_blocks


def _window_3s2(g: PoolGeom, dtype: np.dtype) -> bool:
    """The 3x3 stride-2 max pools omrt.kernels.maxpool_jit takes: float32, 2-D, undilated, each
    window meeting an input row (at most two rows of top padding, none past the input's end)."""
    return (bool(ONE_PASS_MAX_POOL) and len(g.in_sp) == 2 and g.kernel == (3, 3) and g.strides == (2, 2)
            and g.dilations == (1, 1) and np.dtype(dtype) == np.float32 and g.pb[1] <= 2 and jit.enabled()
            and maxpool_jit.available()
            and maxpool_jit.every_window_reads_a_row(g.in_sp[0], g.out_sp[0], g.pb[0]))


def _window_2s2(g: PoolGeom, dtype: np.dtype) -> bool:
    """The 2x2 stride-2 unpadded average pools omrt.kernels.avgpool_jit takes (whole windows:
    the output is the input halved, rounded down), float32, 2-D."""
    return (bool(ONE_PASS_AVERAGE_POOL) and len(g.in_sp) == 2 and g.kernel == (2, 2) and g.strides == (2, 2)
            and g.dilations == (1, 1) and not any(g.pb) and not any(g.pe)
            and g.out_sp == (g.in_sp[0] // 2, g.in_sp[1] // 2) and np.dtype(dtype) == np.float32
            and jit.enabled() and avgpool_jit.available())


def _one_pass(g: PoolGeom, general, make_job):
    """Kernel body for a one-pass IR pool: make_job(blocks) gives its native job over blocks of
    planes (omrt.kernels.native_jobs), run on the pool's threads without the GIL, no scratch;
    tensors that are not contiguous (a view into a larger buffer) go through `general`."""
    pool = get_pool()
    blocks, threaded = _blocks(g, pool.size, PARALLEL_BYTES_ONE_PASS)
    job = make_job(blocks)

    def run_blocks(x: np.ndarray, y: np.ndarray, scratch: np.ndarray | None) -> None:
        if not (x.flags.c_contiguous and y.flags.c_contiguous):
            general(x, y, scratch)
            return
        job.set(x=x.ctypes.data, y=y.ctypes.data)
        job.run(pool, threaded)
    return run_blocks


def _lowest(dtype: np.dtype) -> Any:
    return -np.inf if dtype.kind == "f" else np.iinfo(dtype).min


def _padded(g: PoolGeom, x: np.ndarray, scratch: np.ndarray | None, fill: Any) -> np.ndarray:
    if not g.needs_pad:
        return x
    buf = scratch[:g.n * g.c * int(np.prod(g.pad_sp)) * x.dtype.itemsize].view(x.dtype)
    buf = buf.reshape((g.n, g.c) + g.pad_sp)
    pad_into(x, buf, g.pb, fill)
    return buf


@register("MaxPool", workspace=_pool_workspace)
@float16_via_float32
def max_pool(spec: OpSpec):
    """Max over taps; with the Indices output, flat input indices (row- or column-major)."""
    g = pool_geom(spec)
    dtype = np.dtype(spec.outputs[0].dtype)
    fill = _lowest(dtype)
    slices = g.tap_slices()
    want_idx = len(spec.outputs) > 1
    if want_idx:
        order = "F" if int(spec.attr("storage_order", 0)) else "C"
        # spatial flat index each tap reads, per output position (padding positions are never picked)
        grids = [np.arange(o)[:, None] * s + np.arange(k)[None, :] * d - b
                 for o, s, k, d, b in zip(g.out_sp, g.strides, g.kernel, g.dilations, g.pb)]
        tap_idx = []
        for tap in g.taps:
            coords = np.meshgrid(*[np.clip(gr[:, t], 0, n - 1) for gr, t, n in zip(grids, tap, g.in_sp)],
                                 indexing="ij")
            tap_idx.append(np.ravel_multi_index(coords, g.in_sp, order=order).astype(np.int64))
        plane = int(np.prod(g.in_sp))
        chan_off = (np.arange(g.n * g.c, dtype=np.int64) * plane).reshape((g.n, g.c) + (1,) * len(g.in_sp))

    if want_idx:
        blocked = None
    elif _compiles(g, dtype):
        blocked = _compiled(g, None, True, dtype)
    else:
        blocked = _separable(g, fill, None, np.maximum)
    if blocked is not None and _window_3s2(g, dtype):
        blocked = _one_pass(g, blocked, lambda blocks: maxpool_jit.job(blocks, *g.in_sp, *g.out_sp, g.pb[0], g.pb[1]))

    def run(inputs, outputs, scratch):
        x, y = inputs[0], outputs[0]
        if blocked is not None:
            blocked(x, y, scratch)
            return
        xp = _padded(g, x, scratch, fill)
        np.copyto(y, xp[slices[0]])
        idx = outputs[1]
        np.copyto(idx, tap_idx[0])
        for sl, ti in zip(slices[1:], tap_idx[1:]):
            better = xp[sl] > y  # boolean temporary, only on the Indices path
            np.copyto(y, xp[sl], where=better)
            np.copyto(idx, ti, where=better)
        np.add(idx, chan_off, out=idx)
    return run


@register("AveragePool", workspace=_pool_workspace)
@float16_via_float32
def average_pool(spec: OpSpec):
    g = pool_geom(spec)
    dtype = np.dtype(spec.outputs[0].dtype)
    if _whole_plane(g):
        return _plane_mean(int(np.prod(g.in_sp)), dtype)
    include = bool(spec.attr("count_include_pad", 0))
    counts = g.axis_counts(with_pads=include)
    total = np.ones(g.out_sp)
    for ax, cnt in enumerate(counts):
        shape = [1] * len(g.out_sp)
        shape[ax] = -1
        total = total * cnt.sum(axis=1).reshape(shape)
    inv = (1.0 / np.maximum(total, 1)).astype(dtype)
    blocked = _compiled(g, inv, False, dtype) if _compiles(g, dtype) else _separable(g, 0, inv, np.add)
    if _window_2s2(g, dtype):
        blocked = _one_pass(g, blocked, lambda blocks: avgpool_jit.job(blocks, *g.in_sp, *g.out_sp))

    def run(inputs, outputs, scratch):
        blocked(inputs[0], outputs[0], scratch)
    return run


def _whole_plane(g: PoolGeom) -> bool:
    """One unpadded window covering each whole plane (ResNet's and DenseNet's final 7x7 pools)."""
    return g.kernel == g.in_sp and not g.needs_pad and all(o == 1 for o in g.out_sp)


def _plane_mean(plane: int, dtype: np.dtype):
    """Each plane's mean as one matrix-vector product with a 1/plane vector.

    numpy's mean over short trailing axes runs a scalar loop per plane: 2048 planes of 7x7 took
    40 us as a mean and 6 us as a product; the rounding differs only in the summation order.
    """
    weights = np.full(plane, 1.0 / max(plane, 1), dtype=dtype)

    def run(inputs, outputs, scratch):
        x, y = inputs[0], outputs[0]
        rows = x.reshape(y.size, plane)
        if y.flags.c_contiguous:
            np.matmul(rows, weights, out=y.reshape(y.size))
        else:
            np.copyto(y, np.matmul(rows, weights).reshape(y.shape))
    return run


@register("GlobalAveragePool")
@float16_via_float32
def global_average_pool(spec: OpSpec):
    shape = spec.inputs[0].shape
    return _plane_mean(int(np.prod(shape[2:])), np.dtype(spec.outputs[0].dtype))


@register("GlobalMaxPool")
@float16_via_float32
def global_max_pool(spec: OpSpec):
    axes = tuple(range(2, len(spec.inputs[0].shape)))
    check(len(axes) > 0, f"GlobalMaxPool {spec.name}: needs spatial axes")

    def run(inputs, outputs, scratch):
        np.max(inputs[0], axis=axes, keepdims=True, out=outputs[0])
    return run
