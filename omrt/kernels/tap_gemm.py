"""Stride-1 convs with fewer outputs than inputs: one GEMM for all kernel taps, then shifted sums.

On padded images laid out flat (omrt.kernels.flat_images), tap (i, j) of the output at flat
position f reads the input at f + i*dh*Wp + j*dw. So one GEMM of the stacked tap weights
(k*k*M, C) by the padded image (C, Hp*Wp + slack) gives every tap's contribution at every
position, P[t, m, f], and the output is the sum over taps of P[t] shifted by the tap's offset.
BLAS reads and packs the image once, where im2col first writes C*k*k values per pixel and a GEMM
per tap packs the image k*k times; the price is k*k partial sums of M values per position, fewer
than im2col's C*k*k columns only while M < C.

Measured on one thread (Zen 5, bias + Relu) against im2col + GEMM and against one GEMM per tap,
DenseNet's 128->32 per image: 56x56 2.05 / 1.42 -> 1.24 ms, 28x28 0.54 / 0.40 -> 0.35,
14x14 0.18 / 0.11 -> 0.11. With 64 outputs (128->64 on 56x56) it ties the per-tap form and beats
im2col by 20 %; with 128 im2col is as fast. Against Winograd F(4x4, 3x3) with the compiled
transforms it wins only on maps under 49 tiles (14x14 and 7x7), where the input transform, as
costly per input channel as 36 outputs' worth of GEMM, is not repaid; larger maps go to Winograd
(omrt.kernels.winograd.FEW_OUTPUTS_MIN_TILES). With more outputs than inputs it loses:
Inception's 16->32 5x5 on 28x28 (800 partial sums per position against 400 columns) 0.34 ms
against flat im2col's 0.19 (2 threads).

Work split: a batch goes in blocks of images side by side (about BLOCK_BYTES of padded input and
partial sums, so small maps make few numpy calls), one task per scratch slot. One image is cut
into bands of output rows, one per thread; each band's GEMM covers its rows plus the halo the
taps reach.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from omrt.kernels.conv_common import MIN_PARALLEL_FLOPS, ConvGeom, finish_staged, split_inputs
from omrt.kernels.epilogue import Epilogue
from omrt.kernels.flat_images import FlatImages, block_plan
from omrt.kernels.parallel import split

TAP_GEMM_MAX_OUTPUTS = 48
BLOCK_BYTES = 2 * 1024 * 1024
MAX_BANDS = 8       # bands of one image, each with its own partial sums
# Partial sums up to this size are reduced in one call (DenseNet's 128->32 per image, one thread:
# 7x7 16 -> 4 us, 14x14 26 -> 10, 28x28 58 -> 29); beyond it tap-by-tap adds stream better
# (56x56, 3.9 MB: 71 us against 108).
REDUCE_MAX_BYTES = 2 * 1024 * 1024


def tap_gemm_eligible(g: ConvGeom) -> bool:
    """2-D, stride 1, group 1, a kernel larger than 1x1, at most TAP_GEMM_MAX_OUTPUTS outputs and
    fewer outputs than inputs (so the partial sums are fewer than im2col's columns)."""
    return (len(g.kernel) == 2 and g.strides == (1, 1) and g.group == 1 and g.k_size > 1
            and not g.depthwise and g.m <= TAP_GEMM_MAX_OUTPUTS and g.m < g.c)


def _image_elems(g: ConvGeom, lay: FlatImages) -> int:
    """Padded input, partial sums and their total for one image in the batch path."""
    return (g.c + (g.k_size + 1) * g.m) * lay.span


def tap_gemm_workspace(g: ConvGeom) -> int:
    lay = FlatImages.of(g)
    if g.n == 1:
        return (g.c * lay.span + (g.k_size + 1) * g.m * (lay.rows_len + MAX_BANDS * lay.halo)) * g.itemsize
    per_block, slots, _ = block_plan(g.n, _image_elems(g, lay) * g.itemsize, BLOCK_BYTES)
    return slots * per_block * _image_elems(g, lay) * g.itemsize


def stacked_taps(w: np.ndarray, g: ConvGeom) -> np.ndarray:
    """(M, C*kh*kw) weights -> (kh*kw*M, C): tap t's matrix is rows t*M .. t*M + M - 1."""
    m, c = g.m, g.c
    return np.ascontiguousarray(w.reshape(m, c, g.k_size).transpose(2, 0, 1).reshape(g.k_size * m, c))


def _sum_taps(part: np.ndarray, lay: FlatImages, m: int, length: int, stage: np.ndarray) -> np.ndarray:
    """Sum over taps t of part[t*M:(t+1)*M, off_t:off_t + length]; returns an (M, cols) buffer whose
    first `length` columns hold it. Partial sums that fit in L2 are summed by one reduction over
    a (kh, kw, M, length) view into `stage` (one numpy call); larger ones tap by tap over tap 0's
    block (its offset is 0, so each element is read before it is replaced), which streams them
    once instead of the reduction's scattered passes."""
    cols = part.shape[1]
    if part.nbytes <= REDUCE_MAX_BYTES:
        s = part.strides[1]
        (kh, kw), (step_i, step_j) = lay.kernel, lay.steps
        taps = as_strided(part, (kh, kw, m, length),
                          ((kw * m * cols + step_i) * s, (m * cols + step_j) * s, cols * s, s), writeable=False)
        np.add.reduce(taps, axis=(0, 1), out=stage[:, :length])
        return stage
    acc = part[:m, :length]
    for t, off in enumerate(lay.offsets[1:], start=1):
        np.add(acc, part[t * m:(t + 1) * m, off:off + length], out=acc)
    return part[:m]


def tap_gemm_build(g: ConvGeom, wmat, weights, bcol, epi: Epilogue, pool, dtype: np.dtype):
    lay = FlatImages.of(g)
    c, m, ks = g.c, g.m, g.k_size
    ho, wo = g.out_sp
    threaded = 2.0 * ks * m * c * lay.span * g.n >= MIN_PARALLEL_FLOPS
    w_taps = stacked_taps(wmat.reshape(m, c * ks), g) if wmat is not None else None

    def prepare(inputs):
        bias, res = split_inputs(inputs, epi.residual)
        wt = w_taps if w_taps is not None else stacked_taps(weights(inputs[1]).reshape(m, c * ks), g)
        bv = bcol if bcol is not None else bias
        return wt, None if bv is None else bv.reshape(m, 1, 1), res

    if g.n == 1:
        bands = split(ho, min(MAX_BANDS, ho, pool.size if threaded else 1))
        starts = np.cumsum([0] + [(r1 - r0) * lay.wp + lay.halo for r0, r1 in bands]).tolist()

        def run_one(inputs, outputs, scratch):
            x, y = inputs[0], outputs[0]
            wt, bv, res = prepare(inputs)
            work = scratch.view(dtype)
            image = work[:c * lay.span].reshape(c, lay.span)
            lay.fill(x, image.reshape(c, 1, lay.span))
            sums = work[c * lay.span:]
            totals = sums[ks * m * starts[-1]:]

            def band(i: int) -> None:
                r0, r1 = bands[i]
                cols = (r1 - r0) * lay.wp + lay.halo
                part = sums[ks * m * starts[i]:ks * m * (starts[i] + cols)].reshape(ks * m, cols)
                np.matmul(wt, image[:, r0 * lay.wp:r0 * lay.wp + cols], out=part)
                stage = totals[m * starts[i]:m * (starts[i] + cols)].reshape(m, cols)
                acc = _sum_taps(part, lay, m, (r1 - r0) * lay.wp, stage)[:, :(r1 - r0) * lay.wp]
                valid = acc.reshape(m, r1 - r0, lay.wp)[:, :, :wo]
                finish_staged(epi, y[0, :, r0:r1], valid, bv, None if res is None else res[0, :, r0:r1])

            pool.run(band, len(bands), threaded)
        return run_one

    per_block, slots, blocks = block_plan(g.n, _image_elems(g, lay) * g.itemsize, BLOCK_BYTES)
    slot_elems = per_block * _image_elems(g, lay)
    in_elems = c * per_block * lay.span
    part_elems = ks * m * per_block * lay.span

    def run_batch(inputs, outputs, scratch):
        x, y = inputs[0], outputs[0]
        wt, bv, res = prepare(inputs)
        work = scratch.view(dtype)

        def task(k: int) -> None:
            slot = work[k * slot_elems:(k + 1) * slot_elems]
            images = slot[:in_elems].reshape(c, per_block, lay.span)
            for a, b in blocks[k::slots]:
                cols = (b - a) * lay.span
                lay.fill(x[a:b], images)
                part = slot[in_elems:in_elems + ks * m * cols].reshape(ks * m, cols)
                np.matmul(wt, images.reshape(c, -1)[:, :cols], out=part)
                stage = slot[in_elems + part_elems:in_elems + part_elems + m * cols].reshape(m, cols)
                sums = _sum_taps(part, lay, m, lay.block_len(b - a), stage)
                finish_staged(epi, y[a:b], lay.valid(sums, b - a), bv, None if res is None else res[a:b])

        pool.run(task, slots, threaded)
    return run_batch
