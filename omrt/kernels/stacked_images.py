"""Convs with small output maps at batch > 1: a block of images' columns side by side in one GEMM.

A conv whose output map is 7x7 is, image by image, a GEMM with 49 columns: OpenBLAS runs those at
about 185 GFLOP/s against 235 with a few hundred columns, and every image's GEMM reads and packs
the whole weight matrix again. Here each block of images has its columns (the input itself for a
1x1 stride-1 conv, im2col otherwise) copied side by side into scratch, multiplied by the weights
once, and the product moved into the images' outputs with the bias, residual and activation.

Measured on one Zen 5 thread, caches flushed, 4 images of 7x7 (as a batch lane of ResNet-50 at
batch 8 runs them), separate GEMMs against copy + one GEMM + copy back: 512->2048 1x1 2.66 ->
2.13 ms, 2048->512 2.80 -> 2.24, 1024->2048 5.68 -> 4.21, 4608->512 (ResNet's 3x3/2 im2col) 6.28
-> 4.93. With 128 outputs (DenseNet's 1x1 convs on 7x7) the copies cost what the GEMM gains
(0.36 -> 0.39), and on 14x14 maps (196 columns) stacking lost 17-22 %.
"""
from __future__ import annotations

import numpy as np

from omrt.kernels.conv_common import MIN_PARALLEL_FLOPS, ConvGeom, finish, pad_into, split_inputs, windows
from omrt.kernels.epilogue import Epilogue
from omrt.kernels.parallel import split

STACK_MAX_COLS = 64             # output pixels per image up to which images are stacked
STACK_COLS = 256                # columns per stacked GEMM
STACK_MIN_WEIGHTS = 512 * 512   # weights (outputs x columns per pixel) from which packing them per image costs


def stack_eligible(g: ConvGeom) -> bool:
    return (g.n > 1 and g.group == 1 and not g.depthwise and g.p_size <= STACK_MAX_COLS
            and g.m * g.c * g.k_size >= STACK_MIN_WEIGHTS)


def stacked_workspace(g: ConvGeom) -> int:
    """Per image: its padded input, its columns and its product, so blocks on different threads
    never share scratch."""
    return g.n * (g.padded_elems + (g.c * g.k_size + g.m) * g.p_size) * g.itemsize


def stacked_build(g: ConvGeom, wmat, weights, bcol, epi: Epilogue, pool, dtype: np.dtype):
    c, m, p, kdim = g.c, g.m, g.p_size, g.c * g.k_size
    pad_elems = g.padded_elems
    cols_off = g.n * pad_elems
    prod_off = cols_off + g.n * kdim * p
    blocks = split(g.n, max(-(-g.n * p // STACK_COLS), min(g.n, pool.size)))
    threaded = g.image_flops * g.n >= MIN_PARALLEL_FLOPS
    direct = g.direct_view

    def run(inputs, outputs, scratch):
        x, y = inputs[0], outputs[0]
        bias, res = split_inputs(inputs, epi.residual)
        w = (wmat if wmat is not None else weights(inputs[1]))[0]
        bv = bcol if bcol is not None else (bias.reshape(1, m, 1) if bias is not None else None)
        work = scratch.view(dtype)

        def block(i: int) -> None:
            a, b = blocks[i]
            k = b - a
            cols = work[cols_off + a * kdim * p:cols_off + b * kdim * p].reshape(kdim, k * p)
            if direct:
                np.copyto(cols.reshape(c, k, p), x[a:b].reshape(k, c, p).transpose(1, 0, 2))
            else:
                per_image = cols.reshape((c,) + g.kernel + (k,) + g.out_sp)
                for j in range(k):
                    src = x[a + j]
                    if g.padded:
                        buf = work[(a + j) * pad_elems:(a + j + 1) * pad_elems].reshape((c,) + g.pad_sp)
                        pad_into(src, buf, g.pb)
                        src = buf
                    np.copyto(per_image[(slice(None),) * (1 + len(g.kernel)) + (j,)],
                              windows(src, g.kernel, g.out_sp, g.strides, g.dilations))
            prod = work[prod_off + a * m * p:prod_off + b * m * p].reshape(m, k * p)
            np.matmul(w, cols, out=prod)
            out = y[a:b].reshape(k, m, p)
            np.copyto(out, prod.reshape(m, k, p).transpose(1, 0, 2))
            finish(epi, out, bv, None if res is None else res[a:b].reshape(k, m, p))

        pool.run(block, len(blocks), threaded)
    return run
