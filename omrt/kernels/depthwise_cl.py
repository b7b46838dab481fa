"""Depthwise 2-D Conv in a channels-last scratch layout: every tap is one long contiguous pass.

The NCHW path (omrt.kernels.depthwise) copies k*k tap columns per channel and multiplies them in
one stacked matmul: its traffic is k*k times the input, and at batch > 1 that leaves the caches.
Here a chunk of images is scattered once into its stride phases laid out (position, channel), the
channel index innermost (omrt.kernels.taps gives the phase geometry). A tap is then a contiguous
block of (output rows, output row x channels) of one phase, and its weights, tiled once along an
output row, are a contiguous row of the same width: acc += tap * weights is two SIMD passes with
no copy and no per-channel loop. One transposing pass with the bias writes NCHW output, where the
epilogue runs. A chunk's phases and two accumulator-sized buffers stay in L2.

Chosen where it won on one and two threads against the NCHW path (ShuffleNet's shapes, Zen 5):
one image of at most 14x14 outputs (544 channels on 7x7: 0.125-0.131 -> 0.077-0.081 ms) and a
batch of at least 28x28 (136 channels on 28x28 at batch 8, two threads: 2.2-2.9 -> 1.3-1.5 ms).
It lost on one image of 28x28 (0.21 -> 0.27 ms), and on a batch of small planes with two threads,
where its many short numpy calls queue for the GIL between the threads.
"""
from __future__ import annotations

import numpy as np

from omrt.kernels.conv_common import IMAGE_SLOTS, ConvGeom, finish_staged, split_inputs
from omrt.kernels.epilogue import Epilogue
from omrt.kernels.parallel import Pool, split
from omrt.kernels.taps import FlatTaps, flat_taps

# Output pixels per image up to which one image is faster channels-last, and from which a batch is.
SMALL_PLANE = 14 * 14
LARGE_PLANE = 28 * 28
# Scratch per chunk of images: each numpy call covers a whole chunk (few, long calls, so two
# threads do not queue for the GIL between them) while the chunk's buffers stay in L2.
CHUNK_BYTES = 1 << 20


def _layout(g: ConvGeom) -> FlatTaps:
    return flat_taps(g.in_sp, g.out_sp, g.kernel, g.strides, g.dilations, g.pb, g.pad_sp)


def channels_last_wins(g: ConvGeom) -> bool:
    """2-D depthwise convs over one small image or a batch of large ones (module docstring)."""
    plane = int(np.prod(g.out_sp))
    return len(g.kernel) == 2 and (plane <= SMALL_PLANE if g.n == 1 else plane >= LARGE_PLANE)


def _image_elems(g: ConvGeom, ft: FlatTaps) -> int:
    """Phases plus accumulator plus product buffer of one image."""
    return g.c * (ft.n_phases * ft.phase_size + 2 * int(np.prod(g.out_sp)))


def _chunk(g: ConvGeom, ft: FlatTaps) -> int:
    """Images per chunk: as many as fit CHUNK_BYTES (at least one, at most a slot's share)."""
    per = _image_elems(g, ft) * g.itemsize
    return max(1, min(-(-g.n // _slots(g)), CHUNK_BYTES // per))


def _slots(g: ConvGeom) -> int:
    """Scratch slots, one per task, each reused chunk after chunk so it stays in cache. The
    count depends only on the batch, so the planned work memory fits any thread count."""
    return min(g.n, IMAGE_SLOTS)


def depthwise_cl_workspace(g: ConvGeom) -> int:
    ft = _layout(g)
    return _slots(g) * _chunk(g, ft) * _image_elems(g, ft) * g.itemsize


def depthwise_cl_build(g: ConvGeom, wmat: np.ndarray | None, weights, bcol: np.ndarray | None,
                       epi: Epilogue, pool: Pool, dtype: np.dtype):
    ft = _layout(g)
    c, length, n_ph, q = g.c, ft.length, ft.n_phases, ft.phase_size
    rows, cols = g.out_sp
    width = ft.length // rows          # positions per phase row; the first `cols` are outputs
    chunk = _chunk(g, ft)
    slot_elems = chunk * _image_elems(g, ft)
    phase_elems = chunk * n_ph * q * c
    out_elems = chunk * rows * cols * c

    def tiled(w: np.ndarray) -> np.ndarray:
        """(taps, cols * C): each tap's per-channel weights repeated along an output row."""
        per_tap = w.reshape(c, g.k_size).T.astype(dtype, copy=False)
        return np.ascontiguousarray(np.broadcast_to(per_tap[:, None, :], (g.k_size, cols, c))).reshape(g.k_size, -1)

    w_const = tiled(wmat) if wmat is not None else None
    b_const = bcol.reshape(c, 1, 1) if bcol is not None else None
    tasks = split(g.n, min(_slots(g), pool.size))

    def run(inputs, outputs, scratch):
        x, y = inputs[0], outputs[0]
        bias, res = split_inputs(inputs, epi.residual)
        wt = w_const if w_const is not None else tiled(weights(inputs[1]))
        bv = b_const if b_const is not None else (bias.reshape(c, 1, 1) if bias is not None else None)
        work = scratch.view(dtype)

        def images(n0: int, n1: int, k: int) -> None:
            """Images n0:n1 (at most one chunk) through slot k."""
            m = n1 - n0
            slot = work[k * slot_elems:(k + 1) * slot_elems]
            phases = slot[:phase_elems].reshape(chunk, n_ph, q, c)[:m]
            acc = slot[phase_elems:phase_elems + out_elems].reshape(chunk, rows, cols * c)[:m]
            prod = slot[phase_elems + out_elems:phase_elems + 2 * out_elems].reshape(chunk, rows, cols * c)[:m]
            ft.fill_channels_last(x[n0:n1], phases)
            for t, (ph, off) in enumerate(ft.taps):
                tap = phases[:, ph, off:off + length].reshape(m, rows, width * c)[:, :, :cols * c]
                if t == 0:
                    np.multiply(tap, wt[0], out=acc)
                else:
                    np.multiply(tap, wt[t], out=prod)
                    np.add(acc, prod, out=acc)
            valid = acc.reshape(m, rows, cols, c).transpose(0, 3, 1, 2)
            finish_staged(epi, y[n0:n1], valid, bv, None if res is None else res[n0:n1])

        def task(i: int) -> None:
            a, b = tasks[i]
            for n0 in range(a, b, chunk):
                images(n0, min(b, n0 + chunk), i)

        pool.run(task, len(tasks))
    return run
