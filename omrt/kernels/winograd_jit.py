"""Winograd F(4x4, 3x3) tile transforms as compiled row passes (omrt.kernels.jit).

The numpy path (omrt.kernels.winograd) applies B^T d B to every gathered 6x6 tile as one GEMM
with the (36, 36) Kronecker matrix, and A^T M A as one with the (16, 36) matrix: 2592 and 1152
multiply-adds per tile and channel, most of them by zero. The separable 1-D transforms need about
a tenth of that; here they run as passes along the tiles, which lie contiguous in each of the 36
rows. Measured on one Zen 5 thread for ResNet-50's 64->64 3x3 on 56x56 (12,544 tile columns):
input transform 0.176 -> 0.115 ms, output 0.094 -> 0.059. The move of the output tiles into
NCHW rows takes the bias, residual and activation along (scatter_out): 0.197 -> 0.047 ms for
that conv's output. The whole conv went 1.02 -> 0.75 ms.
"""
from __future__ import annotations

import numpy as np

from omrt.kernels import jit

# float32 constants keep float32 arithmetic float32 (numba widens a float64 literal's product).
F2, F4, F5, F8 = np.float32(2), np.float32(4), np.float32(5), np.float32(8)
# Tile columns per chunk: 36 rows of them (72 KB) stay in L2, a row pass's operands in L1.
CHUNK = 512


@jit.inlined
def _bt(x0, x1, x2, x3, x4, x5, o0, o1, o2, o3, o4, o5):
    """The six rows of B^T x, one loop per output row: each loop has one destination, so LLVM's
    runtime alias checks stay few enough for it to vectorize."""
    n = o0.size
    for k in range(n):
        o0[k] = F4 * x0[k] - F5 * x2[k] + x4[k]
    for k in range(n):
        o1[k] = -F4 * x1[k] - F4 * x2[k] + x3[k] + x4[k]
    for k in range(n):
        o2[k] = F4 * x1[k] - F4 * x2[k] - x3[k] + x4[k]
    for k in range(n):
        o3[k] = -F2 * x1[k] - x2[k] + F2 * x3[k] + x4[k]
    for k in range(n):
        o4[k] = F2 * x1[k] - x2[k] - F2 * x3[k] + x4[k]
    for k in range(n):
        o5[k] = F4 * x1[k] - F5 * x3[k] + x5[k]


@jit.inlined
def _at(x0, x1, x2, x3, x4, x5, o0, o1, o2, o3):
    """The four rows of A^T x, one loop per output row (see _bt)."""
    n = o0.size
    for k in range(n):
        o0[k] = x0[k] + x1[k] + x2[k] + x3[k] + x4[k]
    for k in range(n):
        o1[k] = x1[k] - x2[k] + F2 * x3[k] - F2 * x4[k]
    for k in range(n):
        o2[k] = x1[k] + x2[k] + F4 * x3[k] + F4 * x4[k]
    for k in range(n):
        o3[k] = x1[k] - x2[k] + F8 * x3[k] - F8 * x4[k] + x5[k]


@jit.compiled
def transform_in_tiles(buf, v, n0, ni, r0, rb, tw, c0, c1):
    """v[6a + b, c, (n*rb + r)*tw + t] = (B^T D B)[a, b] for the 6x6 tile D at rows 4(r0 + r),
    columns 4t of image n0 + n, channel c of the padded input buf (n, C, rows, cols), channels
    c0:c1: the tiles read where they lie, for maps a few tiles wide, where gathering them into
    transform_in's 36 rows first is a strided copy of a few floats at a time. B^T runs down the
    six input rows of a tile row first, along whole rows, then across each result row at every
    fourth column (transform_in's order, across then down, read the rows with a stride of 4 in
    its first pass and ran slower here: ResNet-50's 256->256 on 14x14 0.84-0.88 -> 1.10 ms)."""
    wp = 4 * tw + 2
    t = np.empty((6, wp), dtype=v.dtype)
    for c in range(c0, c1):
        for n in range(ni):
            for r in range(rb):
                base = (n * rb + r) * tw
                h = 4 * (r0 + r)
                img = buf[n0 + n, c]
                _bt(img[h, :wp], img[h + 1, :wp], img[h + 2, :wp], img[h + 3, :wp], img[h + 4, :wp],
                    img[h + 5, :wp], t[0], t[1], t[2], t[3], t[4], t[5])
                for a in range(6):
                    ta = t[a]
                    o = 6 * a
                    for k in range(tw):
                        q = 4 * k
                        x0, x1, x2, x3, x4, x5 = ta[q], ta[q + 1], ta[q + 2], ta[q + 3], ta[q + 4], ta[q + 5]
                        v[o, c, base + k] = F4 * x0 - F5 * x2 + x4
                        v[o + 1, c, base + k] = -F4 * x1 - F4 * x2 + x3 + x4
                        v[o + 2, c, base + k] = F4 * x1 - F4 * x2 - x3 + x4
                        v[o + 3, c, base + k] = -F2 * x1 - x2 + F2 * x3 + x4
                        v[o + 4, c, base + k] = F2 * x1 - x2 - F2 * x3 + x4
                        v[o + 5, c, base + k] = F4 * x1 - F5 * x3 + x5


@jit.compiled
def gather_tiles(buf, d, n0, ni, r0, rb, tw, c0, c1):
    """d[6a + b, c, (n*rb + r)*tw + t] = buf[n0 + n, c, 4(r0 + r) + a, 4t + b] for channels c0:c1:
    the 6x6 tiles of the padded input as transform_in's 36 rows, each input row read once."""
    for c in range(c0, c1):
        for n in range(ni):
            img = buf[n0 + n, c]
            for r in range(rb):
                base = (n * rb + r) * tw
                for a in range(6):
                    src = img[4 * (r0 + r) + a]
                    for b in range(6):
                        row = d[6 * a + b, c]
                        for t in range(tw):
                            row[base + t] = src[4 * t + b]


@jit.compiled
def transform_in(d, v, start, stop):
    """v[a*6 + b, f] = (B^T D_f B)[a, b] for columns start:stop, D_f the 6x6 tile d[:, f]
    (row-major); d and v are (36, columns). Columns go in chunks that stay in L1."""
    t = np.empty((36, CHUNK), dtype=v.dtype)
    for f0 in range(start, stop, CHUNK):
        f1 = min(f0 + CHUNK, stop)
        n = f1 - f0
        for i in range(6):
            r = 6 * i
            _bt(d[r, f0:f1], d[r + 1, f0:f1], d[r + 2, f0:f1], d[r + 3, f0:f1], d[r + 4, f0:f1],
                d[r + 5, f0:f1], t[r, :n], t[r + 1, :n], t[r + 2, :n], t[r + 3, :n], t[r + 4, :n],
                t[r + 5, :n])
        for b in range(6):
            _bt(t[b, :n], t[6 + b, :n], t[12 + b, :n], t[18 + b, :n], t[24 + b, :n], t[30 + b, :n],
                v[b, f0:f1], v[6 + b, f0:f1], v[12 + b, f0:f1], v[18 + b, f0:f1], v[24 + b, f0:f1],
                v[30 + b, f0:f1])


@jit.compiled
def transform_out(m, o, start, stop):
    """o[p*4 + q, f] = (A^T M_f A)[p, q] for columns start:stop, M_f the 6x6 tile m[:, f]
    (row-major); m is (36, columns), o (16, columns)."""
    s = np.empty((24, CHUNK), dtype=o.dtype)
    for f0 in range(start, stop, CHUNK):
        f1 = min(f0 + CHUNK, stop)
        n = f1 - f0
        for i in range(6):
            r = 6 * i
            _at(m[r, f0:f1], m[r + 1, f0:f1], m[r + 2, f0:f1], m[r + 3, f0:f1], m[r + 4, f0:f1],
                m[r + 5, f0:f1], s[4 * i, :n], s[4 * i + 1, :n], s[4 * i + 2, :n], s[4 * i + 3, :n])
        for q in range(4):
            _at(s[q, :n], s[4 + q, :n], s[8 + q, :n], s[12 + q, :n], s[16 + q, :n], s[20 + q, :n],
                o[q, f0:f1], o[4 + q, f0:f1], o[8 + q, f0:f1], o[12 + q, f0:f1])


@jit.compiled
def scatter_out(o, y, ch0, n0, r0, rb, tw, bias, res, has_res, act, lo, hi):
    """y[n0 + n, ch0 + m, 4(r0 + r) + p, 4j + q] = act(o[4p + q, m, (n*rb + r)*tw + j] + bias[m]
    + res[...]) for the output tiles in o (16, channels, columns), clipped to y's height and width.

    The transposing copy and the epilogue in one pass: per output row, the four column phases
    are interleaved into a row buffer, then bias, residual and activation run along the row. The
    activation is written out here rather than shared with omrt.kernels.fused_epilogue: numba's
    cache would not notice a change in another file.
    """
    h_out, w_out = y.shape[2], y.shape[3]
    mb, cols = o.shape[1], o.shape[2]
    ni = cols // (rb * tw)
    row = np.empty(4 * tw, dtype=y.dtype)
    for m in range(mb):
        b = bias[m]
        c = ch0 + m
        for n in range(ni):
            for r in range(rb):
                base = (n * rb + r) * tw
                for p in range(4):
                    h = 4 * (r0 + r) + p
                    if h >= h_out:
                        break
                    for j in range(tw):
                        col = base + j
                        row[4 * j] = o[4 * p, m, col]
                        row[4 * j + 1] = o[4 * p + 1, m, col]
                        row[4 * j + 2] = o[4 * p + 2, m, col]
                        row[4 * j + 3] = o[4 * p + 3, m, col]
                    for w in range(w_out):
                        v = row[w] + b
                        if has_res:
                            v = v + res[n0 + n, c, h, w]
                        if act == 1:
                            v = max(v, lo)
                        elif act == 2:
                            v = min(max(v, lo), hi)
                        elif act == 3:
                            v = max(v, v * lo)
                        y[n0 + n, c, h, w] = v




def warm_up() -> None:
    """The passes compiled (or loaded from the cache) at kernel build time (omrt.kernels.jit),
    for constant (read-only) and computed biases."""
    tiny, zero = jit.tiny, np.float32(0)
    jit.warm_up("transform_in_tiles", lambda: transform_in_tiles(tiny(1, 1, 6, 6), tiny(36, 1, 1), 0, 1, 0, 1, 1, 0, 1))
    jit.warm_up("transform_in", lambda: transform_in(tiny(36, 1), tiny(36, 1), 0, 1))
    jit.warm_up("transform_out", lambda: transform_out(tiny(36, 1), tiny(16, 1), 0, 1))
    for const in (False, True):
        jit.warm_up(f"scatter_out {const}", lambda: scatter_out(
            tiny(16, 1, 1), tiny(1, 1, 1, 1), 0, 0, 0, 1, 1, tiny(1, writeable=not const), tiny(1, 1, 1, 1), False,
            0, zero, zero))
        # o as a (16, channels, columns) view of (16, columns, channels) memory (the packed GEMM's
        # layout): two channels of two one-tile images, so the view is not contiguous.
        jit.warm_up(f"scatter_out {const} transposed", lambda: scatter_out(
            tiny(16, 2, 2).transpose(0, 2, 1), tiny(2, 2, 4, 4), 0, 0, 0, 1, 1, tiny(2, writeable=not const),
            tiny(2, 2, 4, 4), False, 0, zero, zero))
