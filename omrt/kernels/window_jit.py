"""Compiled window loops (omrt.kernels.jit): depthwise conv, max and average pool on 2-D planes.

A window op reads, for output (oh, ow) and tap (kh, kw), input (oh*sh + kh*dh - pt, ow*sw + kw*dw
- pl). Copying each input plane once into a buffer split into its sh*sw stride phases, with the
padding filled in (0 for a conv or an average, -inf for a max), makes every tap one contiguous
slice of one phase at a fixed offset, and the taps of all outputs one flat loop of n elements: the
phase's border columns are computed and dropped when rows are stored. Long flat loops are what
LLVM vectorizes; per-row loops on 7- or 14-element rows are not.

The loops live in one file because numba's on-disk cache checks only the file of the function it
compiled, not of the functions it calls.
"""
from __future__ import annotations

import numpy as np

from omrt.kernels import jit

# Flat loops run over a whole number of 16-float vectors: the tail past the last output row is
# computed from the fill and dropped, and no loop ends in a scalar remainder.
VECTOR = 16


@jit.compiled
def plan(h_in, w_in, oh_n, ow_n, kh_n, kw_n, sh, sw, dh, dw, pt, pl):
    """The phased layout of one plane: (n, wq, size, offsets, rows, cols, row_start, col_first,
    col_count, col_start).

    n: flat loop length; wq: phase row width; size: buffer elements for all phases; offsets:
    each tap's start in the buffer (unsigned, so indexing with it needs no wraparound check);
    rows/cols: how much of the input any window reads; row_start: where input row h lands;
    col_first/col_count/col_start: per column phase, its first input column, column count and
    start within a row. Integer division happens here, once, not per row.
    """
    hp = (oh_n - 1) * sh + (kh_n - 1) * dh + 1
    wp = (ow_n - 1) * sw + (kw_n - 1) * dw + 1
    wq = (wp + sw - 1) // sw
    n = (oh_n * wq + VECTOR - 1) // VECTOR * VECTOR
    phase = n + (kh_n - 1) * dh // sh * wq + (kw_n - 1) * dw // sw + 1
    offsets = np.empty(kh_n * kw_n, dtype=np.uint64)
    for kh in range(kh_n):
        for kw in range(kw_n):
            r, q = kh * dh, kw * dw
            offsets[kh * kw_n + kw] = ((r % sh) * sw + q % sw) * phase + (r // sh) * wq + q // sw
    rows = max(0, min(h_in, hp - pt))
    cols = max(0, min(w_in, wp - pl))
    row_start = np.empty(rows, dtype=np.int64)
    for h in range(rows):
        r = pt + h
        row_start[h] = (r % sh) * sw * phase + (r // sh) * wq
    col_first = np.empty(sw, dtype=np.int64)
    col_count = np.zeros(sw, dtype=np.int64)
    col_start = np.empty(sw, dtype=np.int64)
    for pc in range(sw):
        j0 = (pc - pl) % sw
        col_first[pc] = j0
        if j0 < cols:
            col_count[pc] = (cols - j0 + sw - 1) // sw
        col_start[pc] = pc * phase + (pl + j0) // sw
    return n, wq, sh * sw * phase, offsets, rows, cols, row_start, col_first, col_count, col_start


@jit.compiled
def load(plane, buf, rows, cols, pl, sw, row_start, col_first, col_count, col_start):
    """Copy one (H, W) input plane into its phases in buf; the padding keeps the buffer's fill.

    Indexed directly with unsigned offsets rather than through per-row slices: making a slice
    costs about 20 ns, more than copying a 14-element row (27x27 planes at stride 2: 700 ns per
    plane with slices, 160 ns without).
    """
    for h in range(rows):
        start = np.uint64(row_start[h])
        if sw == 1:
            dst = start + np.uint64(pl)
            for j in range(cols):
                buf[dst + np.uint64(j)] = plane[h, j]
        elif sw == 2:
            # Both column phases in one loop: two passes of stride-2 reads took three times as long.
            even = start + np.uint64(col_start[pl % 2])
            odd = start + np.uint64(col_start[1 - pl % 2])
            half = cols // 2
            for m in range(half):
                um = np.uint64(m)
                buf[even + um] = plane[h, 2 * m]
                buf[odd + um] = plane[h, 2 * m + 1]
            if cols % 2:
                buf[even + np.uint64(half)] = plane[h, cols - 1]
        else:
            for pc in range(sw):
                dst = start + np.uint64(col_start[pc])
                j0 = col_first[pc]
                for j in range(col_count[pc]):
                    buf[dst + np.uint64(j)] = plane[h, j0 + j * sw]


@jit.compiled
def store(acc, out, wq):
    """The valid columns of the flat accumulator into one (OH, OW) output plane."""
    oh_n, ow_n = out.shape
    for oh in range(oh_n):
        src = np.uint64(oh * wq)
        for j in range(ow_n):
            out[oh, j] = acc[src + np.uint64(j)]


@jit.compiled
def store_scaled(acc, out, wq, scale):
    """store, each output multiplied by scale[oh, ow] (an average's reciprocal window count)."""
    oh_n, ow_n = out.shape
    for oh in range(oh_n):
        src = np.uint64(oh * wq)
        for j in range(ow_n):
            out[oh, j] = acc[src + np.uint64(j)] * scale[oh, j]


@jit.compiled
def depthwise_planes(x, w, b, y, first, kh_n, kw_n, sh, sw, dh, dw, pt, pl):
    """y[p] = b[c] + sum over taps of w[c, tap] * x[p] shifted, with c = (first + p) % C.

    x (P, H, W) input planes, w (C, KH*KW) taps, b (C,), y (P, OH, OW); pt/pl the top/left pads.
    """
    planes, h_in, w_in = x.shape
    oh_n, ow_n = y.shape[1], y.shape[2]
    channels = w.shape[0]
    n, wq, size, offsets, rows, cols, row_start, col_first, col_count, col_start = plan(
        h_in, w_in, oh_n, ow_n, kh_n, kw_n, sh, sw, dh, dw, pt, pl)
    padded = np.zeros(size, dtype=y.dtype)
    acc = np.empty(n, dtype=y.dtype)
    for p in range(planes):
        load(x[p], padded, rows, cols, pl, sw, row_start, col_first, col_count, col_start)
        c = (first + p) % channels
        wc = w[c]
        bc = b[c]
        for i in range(n):
            acc[i] = bc
        for t in range(offsets.size):
            o = offsets[t]
            wt = wc[t]
            for k in range(n):
                i = np.uint64(k)
                acc[i] += wt * padded[i + o]
        store(acc, y[p], wq)


@jit.compiled
def pool_planes(x, y, kh_n, kw_n, sh, sw, dh, dw, pt, pl, is_max, scale):
    """y[p] = max (or scale * sum) over each window of x[p]: x (P, H, W), y (P, OH, OW).

    Max propagates NaN as numpy's maximum does; scale is the (OH, OW) reciprocal count map.
    """
    planes, h_in, w_in = x.shape
    oh_n, ow_n = y.shape[1], y.shape[2]
    n, wq, size, offsets, rows, cols, row_start, col_first, col_count, col_start = plan(
        h_in, w_in, oh_n, ow_n, kh_n, kw_n, sh, sw, dh, dw, pt, pl)
    padded = np.full(size, -np.inf if is_max else 0.0, dtype=y.dtype)
    acc = np.empty(n, dtype=y.dtype)
    for p in range(planes):
        load(x[p], padded, rows, cols, pl, sw, row_start, col_first, col_count, col_start)
        o = offsets[0]
        for k in range(n):
            i = np.uint64(k)
            acc[i] = padded[i + o]
        for t in range(1, offsets.size):
            o = offsets[t]
            if is_max:
                for k in range(n):
                    i = np.uint64(k)
                    v = padded[i + o]
                    a = acc[i]
                    acc[i] = v if (v > a or v != v) else a
            else:
                for k in range(n):
                    i = np.uint64(k)
                    acc[i] += padded[i + o]
        if is_max:
            store(acc, y[p], wq)
        else:
            store_scaled(acc, y[p], wq, scale)


@jit.inlined
def _row_taps(x, acc, t, lv, rv, w0, w1, w2, z):
    """acc + one row of taps centred on x[t]: the left and right neighbours only where lv / rv."""
    one = np.uint64(1)
    acc += w0 * (x[t - one] if lv else z)
    acc += w1 * x[t]
    acc += w2 * (x[t + one] if rv else z)
    return acc


@jit.inlined
def _same3x3_band(x, y, base, lo, hi, width, w, bias, left, right, above, below):
    """Outputs lo:hi of the plane at flat offset `base` of a 3x3, stride-1, pad-1 conv, read
    straight from the unpadded plane: tap (kh, kw) of output i is input i + (kh-1)*width + kw-1.

    The taps that would wrap into the neighbouring row (left/right: 0 in the first/last column)
    read 0 instead, selected per load so the loop still vectorizes (AVX-512 masked loads). A band
    without a row above or below adds those taps' weights times 0, as zero padding does, without
    reading. The terms are summed in the order the padded loop (depthwise_planes) sums them.
    """
    z = np.float32(0.0)
    stride = np.uint64(width)
    for k in range(lo, hi):
        i = np.uint64(k)
        a = np.uint64(base) + i
        lv = left[i]
        rv = right[i]
        acc = bias
        if above:
            acc = _row_taps(x, acc, a - stride, lv, rv, w[0], w[1], w[2], z)
        else:
            acc += w[0] * z
            acc += w[1] * z
            acc += w[2] * z
        acc = _row_taps(x, acc, a, lv, rv, w[3], w[4], w[5], z)
        if below:
            acc = _row_taps(x, acc, a + stride, lv, rv, w[6], w[7], w[8], z)
        else:
            acc += w[6] * z
            acc += w[7] * z
            acc += w[8] * z
        y[a] = acc


@jit.compiled
def depthwise_same3x3(x, w, b, y, height, width, first, last, left, right):
    """Planes first:last of a depthwise 3x3 conv with stride 1, dilation 1 and one pixel of zero
    padding on every side (output size = input size), x and y the whole (P*H*W,) flat arrays.

    Plane p uses channel p % C of w (C, 9) and b (C,). left/right (H*W,) are 0 in the first/last
    column of a plane. No padded copy: every tap is read in place. Every read that is made
    unconditionally stays inside its plane; a read that would cross a row edge (and, at the
    array's ends, leave x) is made only where left/right allow it.
    """
    n = height * width
    channels = w.shape[0]
    for p in range(first, last):
        c = p % channels
        base = p * n
        wc = w[c]
        bc = b[c]
        if height == 1:
            _same3x3_band(x, y, base, 0, n, width, wc, bc, left, right, False, False)
        else:
            _same3x3_band(x, y, base, 0, width, width, wc, bc, left, right, False, True)
            _same3x3_band(x, y, base, width, n - width, width, wc, bc, left, right, True, True)
            _same3x3_band(x, y, base, n - width, n, width, wc, bc, left, right, True, False)


@jit.inlined
def _shifted_rows(x, cols, src, dst, lo, hi, shift, mask, masked):
    """cols[dst + i] = x[src + i + shift] for i in lo:hi, 0 where `masked` and mask[i] is 0."""
    z = np.float32(0.0)
    s = np.uint64(src + shift)
    d = np.uint64(dst)
    if masked:
        for k in range(lo, hi):
            i = np.uint64(k)
            cols[d + i] = x[s + i] if mask[i] else z
    else:
        for k in range(lo, hi):
            i = np.uint64(k)
            cols[d + i] = x[s + i]


@jit.compiled
def columns_same3x3(x, cols, height, width, left, right, first, last):
    """im2col of a 3x3, stride-1, pad-1 conv without a padded copy: x (C*H*W,) flat, cols
    (C*9*H*W,) flat, row c*9 + kh*3 + kw holding channel c shifted by (kh-1, kw-1), 0 outside
    the plane; only pixels first:last of each row are written (a thread's share of the columns).
    left/right as for depthwise_same3x3; reads across a row edge are masked the same way.
    """
    n = height * width
    channels = x.size // n
    z = np.float32(0.0)
    for c in range(channels):
        src = c * n
        for kh in range(3):
            lo = max(width if kh == 0 else 0, first)
            hi = min(n - width if kh == 2 else n, last)
            for kw in range(3):
                dst = (c * 9 + kh * 3 + kw) * n
                for k in range(first, min(lo, last)):
                    cols[dst + k] = z
                for k in range(max(hi, first), last):
                    cols[dst + k] = z
                shift = (kh - 1) * width + kw - 1
                if kw == 0:
                    _shifted_rows(x, cols, src, dst, lo, hi, shift, left, True)
                elif kw == 2:
                    _shifted_rows(x, cols, src, dst, lo, hi, shift, right, True)
                else:
                    _shifted_rows(x, cols, src, dst, lo, hi, shift, left, False)
