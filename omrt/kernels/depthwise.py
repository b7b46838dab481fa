"""Depthwise Conv (one input and one output channel per group): per-channel im2col + matmul.

Each tap is one contiguous slice of every channel's flattened input phase (omrt.kernels.taps),
so a channel's k x k columns are k*k whole-plane copies into a (C, k*k, L) block, L being the
accumulator's phase-row width. One stacked matmul (C, 1, k*k) @ (C, k*k, L) then computes every
channel: measured twice as fast as k*k multiply + add passes, which are two numpy passes per tap.
One strided copy moves the valid columns into the output, where bias and epilogue run on
contiguous channels. Every channel is the same small GEMM, so all channels round alike whatever
the split, and tasks may own blocks of channels.
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
    """Input phases, accumulator and tap columns, for the whole batch."""
    ft = layout(g)
    return g.n * g.c * (ft.n_phases * ft.phase_size + (1 + g.k_size) * ft.length) * g.itemsize


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
        """(C, 1, ks): each channel's taps as a contiguous row."""
        return np.ascontiguousarray(w.reshape(g.c, 1, ks))

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
        cols_all = work[n_buf + g.n * g.c * length:n_buf + (1 + ks) * g.n * g.c * length]
        cols_all = cols_all.reshape(g.n, g.c, ks, length)

        def task(i: int) -> None:
            n, a, b = tasks[i]
            src = src_all[n, a:b]
            ft.fill(x[n, a:b], src)
            acc, cols = acc_all[n, a:b], cols_all[n, a:b]
            for k, (ph, off) in enumerate(taps):
                np.copyto(cols[:, k], src[:, ph, off:off + length])
            np.matmul(wc[a:b], cols, out=acc.reshape(b - a, 1, length))
            np.copyto(y[n, a:b], ft.out_view(acc))
            flat = y[n, a:b].reshape(b - a, p)
            if bv is not None:
                np.add(flat, bv[a:b], out=flat)
            epi(flat, None if res is None else res[n, a:b].reshape(b - a, p))

        pool.run(task, len(tasks))
    return run
