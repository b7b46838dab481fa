"""Depthwise Conv (one input and one output channel per group): per-channel im2col + matmul.

Each tap is one contiguous slice of every channel's flattened input phase (omrt.kernels.taps),
so a channel's k x k columns are whole-plane copies into a (C, k*k, L) block (one strided copy
per input phase when that phase's taps form a grid, as they do for any plain k x k window), L being the
accumulator's phase-row width. One stacked matmul (C, 1, k*k) @ (C, k*k, L) then computes every
channel: measured twice as fast as k*k multiply + add passes, which are two numpy passes per tap.
One strided copy moves the valid columns into the output, where bias and epilogue run on
contiguous channels. Every channel is the same small GEMM, so all channels round alike whatever
the split, and tasks may own blocks of channels.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from numpy.lib.stride_tricks import as_strided

from omrt.kernels.conv_common import ConvGeom, finish_staged, split_inputs
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


def _tasks(g: ConvGeom, ft: FlatTaps, threads: int) -> list[tuple[int, int, int, int]]:
    """(first image, end image, first channel, end channel). A batch is cut into blocks of whole
    images (every numpy call then covers a block, so calls stay few and long enough to release
    the GIL); one image is cut into channel blocks when it is large. Small work stays on one
    thread: these passes are bound by numpy's per-call costs, which a second thread does not hide
    (splitting a 272-channel 14x14 image over 2 threads was slower)."""
    work = 2.0 * len(ft.taps) * g.n * g.c * ft.length
    parts = 1 if threads == 1 or work < MIN_PARALLEL_ELEMS else threads
    if g.n > 1:
        return [(a, b, 0, g.c) for a, b in split(g.n, parts)]
    return [(0, 1, a, b) for a, b in split(g.c, parts)]


@dataclass(frozen=True)
class TapGroup:
    """Taps of one input phase whose offsets form a grid: one strided copy fills their columns."""

    phase: int
    base: int
    shape: tuple[int, ...]
    steps: tuple[int, ...]
    taps: tuple[int, ...]      # kernel tap indices, in the order the copy writes them


def tap_groups(ft: FlatTaps, kernel: tuple[int, ...]) -> list[TapGroup]:
    """Group the taps by phase; a phase whose offsets are not a regular grid gets one group per tap."""
    coords = list(np.ndindex(*kernel))
    groups: list[TapGroup] = []
    for phase in sorted({ph for ph, _ in ft.taps}):
        members = [t for t, (ph, _) in enumerate(ft.taps) if ph == phase]
        axes = [sorted({coords[t][d] for t in members}) for d in range(len(kernel))]
        shape = tuple(len(a) for a in axes)
        offs = np.array([ft.taps[t][1] for t in members])
        grid = [tuple(a.index(coords[t][d]) for d, a in enumerate(axes)) for t in members]
        regular = int(np.prod(shape)) == len(members) and grid == sorted(grid)
        if regular:
            idx = np.array(grid).reshape(-1, len(kernel))
            steps = tuple(int(offs[list(idx[:, d]).index(1)] - offs[0]) if shape[d] > 1 else 0
                          for d in range(len(kernel)))
            regular = bool((offs == offs[0] + idx @ np.array(steps)).all())
        if regular:
            groups.append(TapGroup(phase, int(offs[0]), shape, steps, tuple(members)))
        else:
            groups += [TapGroup(phase, int(ft.taps[t][1]), (1,), (0,), (t,)) for t in members]
    return groups


def depthwise_build(g: ConvGeom, wmat: np.ndarray | None, weights: Callable[[np.ndarray], np.ndarray],
                    bcol: np.ndarray | None, epi: Epilogue, pool: Pool, dtype: np.dtype):
    ft = layout(g)
    ks = g.k_size
    length, n_ph, q = ft.length, ft.n_phases, ft.phase_size
    tasks = _tasks(g, ft, pool.size)
    n_buf = g.n * g.c * n_ph * q
    groups = tap_groups(ft, g.kernel)
    order = [t for grp in groups for t in grp.taps]

    def columns(w: np.ndarray) -> np.ndarray:
        """(C, 1, ks): each channel's taps as a contiguous row, in the order the copies write them."""
        return np.ascontiguousarray(w.reshape(g.c, 1, ks)[:, :, order])

    w_cols = columns(wmat) if wmat is not None else None
    b_const = bcol.reshape((g.c,) + (1,) * len(g.out_sp)) if bcol is not None else None

    def run(inputs, outputs, scratch):
        x, y = inputs[0], outputs[0]
        bias, res = split_inputs(inputs, epi.residual)
        wc = w_cols if w_cols is not None else columns(weights(inputs[1]))
        bv = b_const if b_const is not None else (
            bias.reshape((g.c,) + (1,) * len(g.out_sp)) if bias is not None else None)
        work = scratch.view(dtype)
        src_all = work[:n_buf].reshape(g.n, g.c, n_ph, q)
        acc_all = work[n_buf:n_buf + g.n * g.c * length].reshape(g.n, g.c, length)
        cols_all = work[n_buf + g.n * g.c * length:n_buf + (1 + ks) * g.n * g.c * length]
        cols_all = cols_all.reshape(g.n, g.c, ks, length)

        def task(i: int) -> None:
            n0, n1, a, b = tasks[i]
            rows = (n1 - n0) * (b - a)
            src = src_all[n0:n1, a:b]
            ft.fill(x[n0:n1, a:b].reshape((rows,) + x.shape[2:]), src.reshape(rows, n_ph, q))
            cols = cols_all[n0:n1, a:b]
            start = 0
            for grp in groups:
                base = src[:, :, grp.phase, grp.base:]
                es = base.strides[-1]
                view = as_strided(base, base.shape[:2] + grp.shape + (length,),
                                  base.strides[:2] + tuple(st * es for st in grp.steps) + (es,), writeable=False)
                cnt = len(grp.taps)
                np.copyto(cols[:, :, start:start + cnt].reshape(base.shape[:2] + grp.shape + (length,)), view)
                start += cnt
            acc = acc_all[n0:n1, a:b]
            np.matmul(wc[a:b], cols, out=acc.reshape(n1 - n0, b - a, 1, length))
            valid = ft.out_view(acc.reshape(rows, length)).reshape((n1 - n0, b - a) + g.out_sp)
            finish_staged(epi, y[n0:n1, a:b], valid, None if bv is None else bv[a:b],
                          None if res is None else res[n0:n1, a:b])

        pool.run(task, len(tasks))
    return run
