"""Small stride-1 k x k convs as one GEMM over shifted flat views of the padded input.

On padded images laid out flat (omrt.kernels.flat_images), every tap's column block is one
contiguous slice of each channel, so im2col is a copy with long contiguous rows instead of
Ho*k*k*C copies of Wo elements. The GEMM writes a staging block and the bias add moves the valid
columns into the output in the same pass. One image is cut into bands of output rows, one task
each; a batch goes in blocks of images side by side, one numpy call per step for a whole block.

Measured against the general im2col path (2 threads, Zen 5, fused Relu): DenseNet's 128->32 on 7x7
0.140 -> 0.074 ms, 64->64 on 14x14 0.241 -> 0.140, 96->128 on 14x14 0.280 -> 0.224; it loses above
about 5e7 flops (256->256 on 14x14: 0.80 -> 0.90), where the general path's column pieces or
channel blocks use BLAS better, and on strided convs (a stride-phase variant lost on
every ResNet shape), so it is limited to small stride-1 convs. Blocks of images at batch 8
(2 threads) against one image per call: Inception's 16->32 5x5 on 28x28 1.53 -> 1.26 ms.
"""
from __future__ import annotations

import numpy as np

from omrt.kernels.conv_common import MIN_PARALLEL_FLOPS, ConvGeom, finish_staged, split_inputs, task_parts
from omrt.kernels.epilogue import Epilogue
from omrt.kernels.flat_images import FlatImages, block_plan
from omrt.kernels.parallel import split

FLAT_MAX_FLOPS = 5e7
BLOCK_BYTES = 1024 * 1024   # padded images, columns and staging per block of a batch


def flat_eligible(g: ConvGeom) -> bool:
    """2-D, stride 1, group 1, a kernel larger than 1x1, small enough to be overhead-bound."""
    return (len(g.kernel) == 2 and g.strides == (1, 1) and g.group == 1 and g.k_size > 1
            and not g.depthwise and g.image_flops < FLAT_MAX_FLOPS)


def _image_elems(g: ConvGeom, lay: FlatImages) -> int:
    """One image's padded input, columns and staging block."""
    return (g.c + g.c * g.k_size + g.m) * lay.span


def _plan(g: ConvGeom, lay: FlatImages) -> tuple[int, int, list[tuple[int, int]]]:
    return block_plan(g.n, _image_elems(g, lay) * g.itemsize, BLOCK_BYTES)


def flat_workspace(g: ConvGeom) -> int:
    lay = FlatImages.of(g)
    if g.n == 1:
        return _image_elems(g, lay) * g.itemsize
    per_block, slots, _ = _plan(g, lay)
    return slots * per_block * _image_elems(g, lay) * g.itemsize


def flat_build(g: ConvGeom, wmat, weights, bcol, epi: Epilogue, pool, dtype: np.dtype):
    lay = FlatImages.of(g)
    c, m, ks = g.c, g.m, g.k_size
    ho = g.out_sp[0]
    flops = g.image_flops
    per_block, slots, blocks = _plan(g, lay) if g.n > 1 else (1, 1, [(0, 1)])
    in_elems = c * per_block * lay.span
    cols_elems = c * ks * per_block * lay.span
    slot_elems = per_block * _image_elems(g, lay)
    per_row = (c * ks + m) * lay.wp * g.itemsize
    bands = split(ho, min(task_parts(per_row * ho, pool.size, flops), ho))

    def run(inputs, outputs, scratch):
        x, y = inputs[0], outputs[0]
        bias, res = split_inputs(inputs, epi.residual)
        w = (wmat if wmat is not None else weights(inputs[1])).reshape(m, c * ks)
        bv = bcol if bcol is not None else bias
        bv = None if bv is None else bv.reshape(m, 1, 1)
        work = scratch.view(dtype)

        def columns_gemm(slot: np.ndarray, start: int, length: int) -> np.ndarray:
            """Columns of positions start .. start+length-1 of the slot's images, multiplied into
            the slot's staging block at the same positions; returns the staging block."""
            rows = slot[:in_elems].reshape(c, -1)
            cols = slot[in_elems + c * ks * start:in_elems + c * ks * (start + length)]
            np.copyto(cols.reshape(c, *lay.kernel, length), lay.taps(rows, start, length))
            stage = slot[in_elems + cols_elems:in_elems + cols_elems + m * per_block * lay.span].reshape(m, -1)
            np.matmul(w, cols.reshape(c * ks, length), out=stage[:, start:start + length])
            return stage

        if g.n == 1:
            lay.fill(x, work[:in_elems].reshape(c, 1, lay.span))

            def band(i: int) -> None:
                r0, r1 = bands[i]
                stage = columns_gemm(work, r0 * lay.wp, (r1 - r0) * lay.wp)
                valid = lay.valid(stage, 1)[0, :, r0:r1]
                finish_staged(epi, y[0, :, r0:r1], valid, bv, None if res is None else res[0, :, r0:r1])

            pool.run(band, len(bands))
            return

        def task(k: int) -> None:
            slot = work[k * slot_elems:(k + 1) * slot_elems]
            for a, b in blocks[k::slots]:
                lay.fill(x[a:b], slot[:in_elems].reshape(c, per_block, lay.span))
                stage = columns_gemm(slot, 0, lay.block_len(b - a))
                finish_staged(epi, y[a:b], lay.valid(stage, b - a), bv, None if res is None else res[a:b])

        pool.run(task, slots, flops * g.n >= MIN_PARALLEL_FLOPS)
    return run
