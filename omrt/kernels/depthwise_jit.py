"""Depthwise 2-D Conv as one compiled loop per block of planes (omrt.kernels.window_jit).

Each plane is copied once into a zero-bordered buffer split into stride phases, and each tap is
one flat multiply-add loop over it, long enough to vectorize even on 7x7 planes. The bias starts
each accumulator; the residual and activation follow in the fused epilogue on the output block.

The commonest shape, 3x3 with stride 1 and one pixel of padding (MobileNet's and ShuffleNet's
stride-1 blocks), skips the copy: each output sums its nine taps read in place, in one
vectorized pass per band of rows, with the taps across a row edge masked. On one Zen 5 thread:
272 channels of 14x14 0.062 -> 0.016 ms, 544 of 7x7 0.044 -> 0.020, 136 of 28x28 0.051 -> 0.021,
with bit-identical results (the same terms in the same order).

On one Zen 5 thread, 272 channels of 14x14 with 3x3 taps took 0.13 ms through the per-channel
matmul path (omrt.kernels.depthwise) and 0.056 ms here. Each call allocates one padded plane and
one accumulator (a few KB to a few hundred KB) for its own use.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from omrt.kernels import jit
from omrt.kernels.conv_common import ConvGeom, edge_masks, finish, split_inputs
from omrt.kernels.epilogue import Epilogue
from omrt.kernels.parallel import Pool, split
from omrt.kernels.window_jit import depthwise_planes, depthwise_same3x3

# Multiply-adds per call below which one thread beats two (a pool wake-up is 10-60 us): about
# 0.25 ms of work on either loop.
MIN_PARALLEL_MACS = 2e6
SAME_3X3_MIN_PARALLEL_MACS = 6e6


def fits(g: ConvGeom, dtype: np.dtype) -> bool:
    """2-D float32 depthwise convs go through the compiled loop when it is enabled."""
    return jit.enabled() and len(g.in_sp) == 2 and np.dtype(dtype) == np.float32


def depthwise_jit_build(g: ConvGeom, wmat: np.ndarray | None, weights: Callable[[np.ndarray], np.ndarray],
                        bcol: np.ndarray | None, epi: Epilogue, pool: Pool, dtype: np.dtype):
    planes = g.n * g.c
    macs = planes * int(np.prod(g.out_sp)) * g.k_size
    in_place = g.same_3x3
    ranges = split(planes, pool.size if macs >= (SAME_3X3_MIN_PARALLEL_MACS if in_place else MIN_PARALLEL_MACS) else 1)
    geometry = (*g.kernel, *g.strides, *g.dilations, *g.pb[:2])
    zeros = np.zeros(g.c, dtype=dtype)
    zeros.flags.writeable = False  # as constant biases are: one compiled signature for both
    w_const = np.ascontiguousarray(wmat, dtype=dtype) if wmat is not None else None
    b_const = np.ascontiguousarray(bcol.reshape(g.c), dtype=dtype) if bcol is not None else None

    w_flag = w_const is None or w_const.flags.writeable
    b_flag = b_const is None or b_const.flags.writeable
    if in_place:
        left, right = edge_masks(g)
        jit.warm_up(f"depthwise_same3x3 {w_flag} {b_flag}", lambda: depthwise_same3x3(
            jit.tiny(1), jit.tiny(1, 9, writeable=w_flag), jit.tiny(1, writeable=b_flag), jit.tiny(1),
            1, 1, 0, 1, np.zeros(1, np.uint8), np.zeros(1, np.uint8)))
    else:
        jit.warm_up(f"depthwise_planes {w_flag} {b_flag}", lambda: depthwise_planes(
            jit.tiny(1, 1, 1), jit.tiny(1, 1, writeable=w_flag), jit.tiny(1, writeable=b_flag), jit.tiny(1, 1, 1),
            0, 1, 1, 1, 1, 1, 1, 0, 0))

    def run(inputs, outputs, scratch):
        x, y = inputs[0], outputs[0]
        bias, res = split_inputs(inputs, epi.residual)
        w = w_const if w_const is not None else np.ascontiguousarray(weights(inputs[1]), dtype=dtype)
        b = b_const if b_const is not None else (
            np.ascontiguousarray(bias.reshape(g.c), dtype=dtype) if bias is not None else zeros)
        x3 = x.reshape((planes,) + x.shape[2:])
        y3 = y.reshape((planes,) + y.shape[2:])
        r3 = None if res is None else res.reshape(y3.shape)

        def task(i: int) -> None:
            a, e = ranges[i]
            if in_place:
                depthwise_same3x3(x.reshape(-1), w, b, y.reshape(-1), *g.in_sp, a, e, left, right)
            else:
                depthwise_planes(x3[a:e], w, b, y3[a:e], a, *geometry)
            finish(epi, y3[a:e], None, None if r3 is None else r3[a:e])

        pool.run(task, len(ranges))
    return run
