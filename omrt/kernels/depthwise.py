"""Depthwise Conv (one input and one output channel per group): per-tap multiply-adds.

Each tap is one contiguous slice of every channel's flattened input phase (omrt.kernels.taps),
multiplied by that channel's weight as a (C, 1) column and added into an accumulator with the
phase's row width, so numpy streams whole planes instead of Wo-element rows; one strided copy
moves the valid columns into the output, where bias and epilogue run on contiguous channels.
Every element is computed by the same operations in the same tap order whatever the split, so
tasks may own blocks of channels (this is elementwise, not a GEMM).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from omrt.kernels.conv_common import ConvGeom, split_inputs
from omrt.kernels.epilogue import Epilogue
from omrt.kernels.parallel import Pool, split
from omrt.kernels.taps import FlatTaps, flat_taps

# Elementwise operations per image below which one thread beats two.
MIN_PARALLEL_ELEMS = 4e6


def layout(g: ConvGeom) -> FlatTaps:
    return flat_taps(g.in_sp, g.out_sp, g.kernel, g.strides, g.dilations, g.pb, g.pad_sp)


def depthwise_workspace(g: ConvGeom) -> int:
    """Input phases, accumulator and product, for the whole batch."""
    ft = layout(g)
    return g.n * g.c * (ft.n_phases * ft.phase_size + 2 * ft.length) * g.itemsize


def _tasks(g: ConvGeom, ft: FlatTaps, threads: int) -> list[tuple[int, int, int]]:
    """(image, first channel, end channel): whole images, or channel blocks of one image when an
    image is large. A second thread is not worth it below that: these passes are bound by
    numpy's per-call and per-row costs, which threads sharing a core do not hide (measured with
    benchmarks/bench_conv_kernel.py: splitting a 272-channel 14x14 image over 2 threads was slower)."""
    work = 2.0 * len(ft.taps) * g.c * ft.length
    blocks = 1 if threads == 1 or g.n > 1 or work < MIN_PARALLEL_ELEMS else threads
    return [(n, a, b) for n in range(g.n) for a, b in split(g.c, blocks)]


def depthwise_build(g: ConvGeom, wmat: np.ndarray | None, weights: Callable[[np.ndarray], np.ndarray],
                    bcol: np.ndarray | None, epi: Epilogue, pool: Pool, dtype: np.dtype):
    ft = layout(g)
    ks, p = g.k_size, g.p_size
    taps = ft.taps
    length, n_ph, q = ft.length, ft.n_phases, ft.phase_size
    tasks = _tasks(g, ft, pool.size)
    n_buf = g.n * g.c * n_ph * q

    def columns(w: np.ndarray) -> np.ndarray:
        """(ks, C, 1): each tap's per-channel weights as a contiguous column."""
        return np.ascontiguousarray(w.reshape(g.c, ks).T).reshape(ks, g.c, 1)

    w_cols = columns(wmat) if wmat is not None else None
    b_const = bcol.reshape(g.c, 1) if bcol is not None else None

    def run(inputs, outputs, scratch):
        x, y = inputs[0], outputs[0]
        bias, res = split_inputs(inputs, epi.residual)
        wc = w_cols if w_cols is not None else columns(weights(inputs[1]))
        bv = b_const if b_const is not None else (bias.reshape(g.c, 1) if bias is not None else None)
        work = scratch.view(dtype)
        src_all = work[:n_buf].reshape(g.n, g.c, n_ph, q)
        acc_all = work[n_buf:n_buf + g.n * g.c * length].reshape(g.n, g.c, length)
        tmp_all = work[n_buf + g.n * g.c * length:n_buf + 2 * g.n * g.c * length].reshape(g.n, g.c, length)

        def task(i: int) -> None:
            n, a, b = tasks[i]
            src = src_all[n, a:b]
            ft.fill(x[n, a:b], src)
            acc, tmp = acc_all[n, a:b], tmp_all[n, a:b]
            for k, (ph, off) in enumerate(taps):
                piece = src[:, ph, off:off + length]
                if k == 0:
                    np.multiply(piece, wc[k, a:b], out=acc)
                else:
                    np.multiply(piece, wc[k, a:b], out=tmp)
                    np.add(acc, tmp, out=acc)
            np.copyto(y[n, a:b], ft.out_view(acc))
            flat = y[n, a:b].reshape(b - a, p)
            if bv is not None:
                np.add(flat, bv[a:b], out=flat)
            epi(flat, None if res is None else res[n, a:b].reshape(b - a, p))

        pool.run(task, len(tasks))
    return run
