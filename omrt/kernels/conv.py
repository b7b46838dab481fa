"""Conv and ConvTranspose: convolution as GEMM over planned scratch.

Paths, chosen once at build time:
  * 1x1, stride 1, no padding (any group): GEMMs straight on the NCHW view (no copy).
  * depthwise (one input channel per group, one output per group): shifted multiply-accumulate.
  * everything else: pad into scratch, im2col by strided copies, (batched) GEMMs into Y.
  * 3x3 stride-1 group-1 with `_winograd`: Winograd F(4x4,3x3) on pre-transformed weights.
Every path splits its GEMMs for the kernel thread pool (omrt.kernels.parallel) along images or
output columns, never output channels. Bias, residual and activation (omrt.kernels.epilogue) run
on whole images, on row bands while still in cache, or, after column pieces, as a second pass
over contiguous channel blocks (numpy's elementwise loops are slow on column slices).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from numpy.lib.stride_tricks import as_strided

from omrt.kernels.base import OpSpec, check, register
from omrt.kernels.epilogue import Epilogue, float16_via_float32
from omrt.kernels.parallel import get_pool, split


def compute_itemsize(dtype: Any) -> int:
    """Bytes per element the kernel computes in (float16 is computed in float32)."""
    dt = np.dtype(dtype)
    return 4 if dt == np.float16 else dt.itemsize


def same_pads(in_sp: Sequence[int], k_eff: Sequence[int], strides: Sequence[int],
              auto_pad: str, pads: Sequence[int] | None) -> tuple[list[int], list[int]]:
    """(begin, end) pads per spatial axis under ONNX auto_pad rules for Conv and pooling."""
    nd = len(in_sp)
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        pb, pe = [], []
        for i in range(nd):
            out = -(-in_sp[i] // strides[i])
            total = max(0, (out - 1) * strides[i] + k_eff[i] - in_sp[i])
            small, big = total // 2, total - total // 2
            pb.append(small if auto_pad == "SAME_UPPER" else big)
            pe.append(big if auto_pad == "SAME_UPPER" else small)
        return pb, pe
    if auto_pad == "VALID" or not pads:
        return [0] * nd, [0] * nd
    return list(pads[:nd]), list(pads[nd:])


def pad_into(x: np.ndarray, buf: np.ndarray, pb: Sequence[int], fill: float = 0.0) -> None:
    """Copy x (lead dims + spatial) into the interior of buf and fill only the border slabs."""
    lead = x.ndim - len(pb)
    interior = tuple(slice(None) for _ in range(lead)) + tuple(slice(p, p + n) for p, n in zip(pb, x.shape[lead:]))
    np.copyto(buf[interior], x)
    for d, p in enumerate(pb):
        ax = lead + d
        n = x.shape[ax]
        idx: list[Any] = [slice(None)] * buf.ndim
        if p > 0:
            idx[ax] = slice(0, p)
            buf[tuple(idx)] = fill
        if buf.shape[ax] > p + n:
            idx[ax] = slice(p + n, None)
            buf[tuple(idx)] = fill


def windows(buf: np.ndarray, kernel: Sequence[int], out_sp: Sequence[int],
            strides: Sequence[int], dilations: Sequence[int]) -> np.ndarray:
    """Read-only view (lead..., *kernel, *out) of buf's sliding windows."""
    nd = len(kernel)
    lead = buf.shape[:-nd]
    sp_strides = buf.strides[-nd:]
    shape = tuple(lead) + tuple(kernel) + tuple(out_sp)
    st = (tuple(buf.strides[:-nd]) + tuple(s * d for s, d in zip(sp_strides, dilations))
          + tuple(s * t for s, t in zip(sp_strides, strides)))
    return as_strided(buf, shape=shape, strides=st, writeable=False)


@dataclass
class ConvGeom:
    """Everything about a Conv that does not change between calls."""

    n: int
    c: int
    m: int
    group: int
    in_sp: tuple[int, ...]
    out_sp: tuple[int, ...]
    kernel: tuple[int, ...]
    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    pb: tuple[int, ...]
    pe: tuple[int, ...]
    itemsize: int

    @property
    def padded(self) -> bool:
        return any(self.pb) or any(self.pe)

    @property
    def pad_sp(self) -> tuple[int, ...]:
        """Padded extent, large enough for every window the output reads."""
        return tuple(max(i + b + e, (o - 1) * s + (k - 1) * d + 1)
                     for i, b, e, o, s, k, d in zip(self.in_sp, self.pb, self.pe, self.out_sp,
                                                    self.strides, self.kernel, self.dilations))

    @property
    def pointwise(self) -> bool:
        return (self.group == 1 and all(k == 1 for k in self.kernel) and all(s == 1 for s in self.strides)
                and not self.padded)

    @property
    def depthwise(self) -> bool:
        return self.group == self.c == self.m and self.group > 1

    @property
    def k_size(self) -> int:
        return int(np.prod(self.kernel))

    @property
    def p_size(self) -> int:
        return int(np.prod(self.out_sp))


def conv_geom(spec: OpSpec) -> ConvGeom:
    x, y = spec.inputs[0], spec.outputs[0]
    nd = len(x.shape) - 2
    if spec.attr("_winograd"):
        kernel = tuple(spec.attr("kernel_shape") or (3, 3))
    else:
        kernel = tuple(spec.attr("kernel_shape") or spec.inputs[1].shape[2:])
    strides = tuple(spec.attr("strides") or [1] * nd)
    dil = tuple(spec.attr("dilations") or [1] * nd)
    k_eff = [(k - 1) * d + 1 for k, d in zip(kernel, dil)]
    pb, pe = same_pads(x.shape[2:], k_eff, strides, spec.attr("auto_pad", "NOTSET"), spec.attr("pads"))
    return ConvGeom(x.shape[0], x.shape[1], y.shape[1], int(spec.attr("group", 1)), tuple(x.shape[2:]),
                    tuple(y.shape[2:]), kernel, strides, dil, tuple(pb), tuple(pe),
                    compute_itemsize(y.dtype))


def _split_inputs(inputs: Sequence[np.ndarray | None], residual: bool, first_bias: int = 2):
    """(bias or None, residual or None) from a producer's input list."""
    n = len(inputs)
    res = inputs[n - 1] if residual else None
    nb = n - 1 if residual else n
    bias = inputs[first_bias] if nb > first_bias else None
    return bias, res


# Work splitting: tasks own output columns (pixels) or whole images, never a subset of output
# channels, so every channel of a pixel comes out of the same BLAS call (see omrt.kernels.parallel).
CHUNK_BYTES = 512 * 1024   # output bytes per task: the epilogue then runs on data still in L2
MIN_PARALLEL_FLOPS = 2e6   # below this, waking a second thread costs more than it saves
MIN_COLS = 16              # narrower GEMM pieces lose more to packing than threads gain
BAND_MIN_COLS = 512        # im2col row bands narrower than this multiply channel blocks instead


def _parts(total_bytes: float, threads: int, flops: float) -> int:
    """How many pieces to cut an op into: a multiple of the thread count, each about CHUNK_BYTES."""
    if threads == 1 or flops < MIN_PARALLEL_FLOPS:
        return 1
    by_cache = -(-int(total_bytes) // CHUNK_BYTES)
    return threads * max(1, -(-by_cache // threads))


def _col_ranges(p: int, parts: int) -> list[tuple[int, int]]:
    parts = max(1, min(parts, p // MIN_COLS))
    return split(p, parts, 16 if p >= 16 * parts else 1)


def _finish(epi: Epilogue, y: np.ndarray, bias: np.ndarray | None, res: np.ndarray | None) -> None:
    """Bias, residual and activation on one piece of the output, right after it was computed."""
    if bias is not None:
        np.add(y, bias, out=y)
    epi(y, res)


def _conv_workspace(spec: OpSpec) -> int:
    g = conv_geom(spec)
    if spec.attr("_winograd"):
        return _wino_workspace(g)
    if _direct_view(g):
        return 0
    pad = g.c * int(np.prod(g.pad_sp)) if g.padded else 0
    if g.depthwise:
        return (pad + g.c * g.p_size) * g.itemsize
    return (pad + g.c * g.k_size * g.p_size) * g.itemsize


def _direct_view(g: "ConvGeom") -> bool:
    """1x1, stride 1, unpadded (any group): the input already is the GEMM operand."""
    return all(k == 1 for k in g.kernel) and all(s == 1 for s in g.strides) and not g.padded


# Winograd F(4x4, 3x3) (Lavin & Gray): Y = A^T [(G g G^T) * (B^T d B)] A on 6x6 input tiles.
# Each 2-D transform is one GEMM with a Kronecker-product matrix, so all three stages run in BLAS.
_BT = np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
                [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], dtype=np.float64)
_G = np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
               [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]], dtype=np.float64)
_AT = np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0],
                [0, 1, -1, 8, -8, 1]], dtype=np.float64)
_WINO_IN = np.kron(_BT, _BT)      # (36, 36): vec(B^T d B) for row-major 6x6 d
_WINO_OUT = np.kron(_AT, _AT)     # (16, 36)
_WINO_W = np.kron(_G, _G)         # (36, 9)
WINOGRAD_MIN_CHANNELS = 16
# The transformed weights are 4x the plain ones and every task re-reads them, so Winograd only
# pays off with enough tiles per weight pass (measured with benchmarks/bench_conv_kernel.py).
WINOGRAD_MIN_TILES = 16
WINO_TASK_COLS = 128      # tiles per task: enough GEMM columns, small enough to stay in L2


def _wino_eligible(g: ConvGeom, dtype: Any) -> bool:
    th, tw = _wino_tiles(g)
    return (np.dtype(dtype) == np.float32 and len(g.kernel) == 2 and g.kernel == (3, 3)
            and g.strides == (1, 1) and g.dilations == (1, 1) and g.group == 1
            and min(g.c, g.m) >= WINOGRAD_MIN_CHANNELS and g.n * th * tw >= WINOGRAD_MIN_TILES)


def _wino_weight(w: np.ndarray) -> np.ndarray:
    """(M, C, 3, 3) -> (36, M, C): the 36 weight matrices of the batched GEMM."""
    m, c = w.shape[:2]
    u = _WINO_W @ w.astype(np.float64).reshape(m * c, 9).T
    return np.ascontiguousarray(u.reshape(36, m, c).astype(np.float32))


def _wino_tiles(g: ConvGeom) -> tuple[int, int]:
    return -(-g.out_sp[0] // 4), -(-g.out_sp[1] // 4)


def _wino_workspace(g: ConvGeom) -> int:
    """Padded batch plus two tile buffers for the whole batch, so tasks never share scratch."""
    th, tw = _wino_tiles(g)
    t = g.n * th * tw
    pad = g.n * g.c * (4 * th + 2) * (4 * tw + 2)
    return (pad + 36 * max(g.c, g.m) * t + max(36 * g.c, 16 * g.m) * t) * g.itemsize


def _wino_tasks(g: ConvGeom, threads: int) -> list[tuple[int, int, int, int]]:
    """(first image, end image, first tile row, end tile row): one image band or whole images."""
    th, tw = _wino_tiles(g)
    t = th * tw
    if t >= WINO_TASK_COLS or g.n < threads:
        bands = max(1, round(t / WINO_TASK_COLS), -(-threads // g.n))
        return [(n, n + 1, a, b) for n in range(g.n) for a, b in split(th, bands)]
    per = max(1, min(-(-WINO_TASK_COLS // t), g.n // threads))
    return [(a, b, 0, th) for a, b in split(g.n, -(-g.n // per))]


def _wino_build(g: ConvGeom, u_const: np.ndarray | None, b_const: np.ndarray | None, epi: Epilogue,
                dtype: np.dtype):
    pool = get_pool()
    th, tw = _wino_tiles(g)
    t = th * tw
    hp, wp = 4 * th + 2, 4 * tw + 2
    ho, wo = g.out_sp
    exact = (ho, wo) == (4 * th, 4 * tw)
    c, m, isz = g.c, g.m, g.itemsize
    pad_n = g.n * c * hp * wp
    a_w = 36 * max(c, m)
    b_w = max(36 * c, 16 * m)
    a_off, b_off = pad_n, pad_n + a_w * g.n * t
    k_in = _WINO_IN.astype(dtype)
    k_out = _WINO_OUT.astype(dtype)
    tasks = _wino_tasks(g, pool.size)
    pad_parts = split(g.n * c, pool.size if pool.size > 1 and pad_n * isz > CHUNK_BYTES else 1)
    bshape = (m, 1, 1)

    def run(inputs, outputs, scratch):
        x, y = inputs[0], outputs[0]
        bias, res = _split_inputs(inputs, epi.residual)
        u = u_const if u_const is not None else inputs[1]
        bvec = (b_const if b_const is not None else bias).reshape(bshape) if bias is not None else None
        work = scratch.view(dtype)
        buf = work[:pad_n].reshape(g.n, c, hp, wp)
        flat_x, flat_buf = x.reshape(g.n * c, *x.shape[2:]), buf.reshape(g.n * c, hp, wp)

        def pad_part(i: int) -> None:
            a, b = pad_parts[i]
            pad_into(flat_x[a:b], flat_buf[a:b], g.pb)

        pool.run(pad_part, len(pad_parts))
        s0, s1, s2, s3 = buf.strides
        y6 = y.reshape(g.n, m, th, 4, tw, 4) if exact else None

        def task(i: int) -> None:
            n0, n1, r0, r1 = tasks[i]
            ni, rb = n1 - n0, r1 - r0
            cols = ni * rb * tw
            col0 = n0 * t + r0 * tw
            a = work[a_off + a_w * col0:a_off + a_w * (col0 + cols)]
            b = work[b_off + b_w * col0:b_off + b_w * (col0 + cols)]
            d = a[:36 * c * cols]
            tiles = as_strided(buf[n0, :, 4 * r0:], (6, 6, c, ni, rb, tw), (s2, s3, s1, s0, 4 * s2, 4 * s3),
                               writeable=False)
            np.copyto(d.reshape(6, 6, c, ni, rb, tw), tiles)
            v = b[:36 * c * cols].reshape(36, c * cols)
            np.matmul(k_in, d.reshape(36, c * cols), out=v)
            mo = a[:36 * m * cols].reshape(36, m, cols)
            np.matmul(u, v.reshape(36, c, cols), out=mo)
            o = b[:16 * m * cols].reshape(16, m * cols)
            np.matmul(k_out, mo.reshape(36, m * cols), out=o)
            blocks = o.reshape(4, 4, m, ni, rb, tw).transpose(3, 2, 4, 0, 5, 1)
            rows = slice(4 * r0, min(4 * r1, ho))
            if y6 is not None:
                np.copyto(y6[n0:n1, :, r0:r1], blocks)
            else:
                stage = a[:16 * m * cols].reshape(ni, m, rb, 4, tw, 4)
                np.copyto(stage, blocks)
                np.copyto(y[n0:n1, :, rows], stage.reshape(ni, m, 4 * rb, 4 * tw)[:, :, :rows.stop - rows.start, :wo])
            _finish(epi, y[n0:n1, :, rows], bvec, res[n0:n1, :, rows] if res is not None else None)

        pool.run(task, len(tasks))
    return run


def _conv_prepack(spec: OpSpec) -> tuple[dict[str, Any], dict[int, np.ndarray]] | None:
    if spec.attr("_winograd") or 1 not in spec.consts:
        return None
    g = conv_geom(spec)
    if not _wino_eligible(g, spec.outputs[0].dtype):
        return None
    return {"_winograd": 1}, {1: _wino_weight(spec.consts[1])}


def _res_view(res: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray | None:
    return None if res is None else res.reshape(shape)


def _finish_blocks(pool, epi: Epilogue, y2: np.ndarray, bias2: np.ndarray | None, res2: np.ndarray | None,
                   ranges: list[tuple[int, int]]) -> None:
    """Bias, residual and activation over contiguous channel blocks of one image's (M, P) output.

    GEMM tasks own column slices (see the note on work splitting); on a column slice numpy's
    elementwise loops pay per row and cost more than the GEMM itself, so the epilogue runs as a
    second pass over whole channels, which is elementwise and so exact on any split.
    """
    def task(i: int) -> None:
        a, b = ranges[i]
        _finish(epi, y2[a:b], None if bias2 is None else bias2[a:b], None if res2 is None else res2[a:b])

    pool.run(task, len(ranges))


def _direct_build(g: ConvGeom, wmat, weights, bcol, epi: Epilogue, pool):
    """1x1 stride-1 conv: GEMMs straight on the NCHW input, one task per image, or column pieces
    of one image followed by the epilogue on channel blocks."""
    gr, cg, mg, p = g.group, g.c // g.group, g.m // g.group, g.p_size
    flops = 2.0 * g.m * cg * p
    parts = _parts(g.m * p * g.n * g.itemsize, pool.size, flops * g.n)
    whole = parts == 1 or g.n >= pool.size
    cols = [slice(0, p)] if whole else [slice(a, b) for a, b in _col_ranges(p, pool.size)]
    if len(cols) == 1:
        whole = True
    ranges = split(g.m, pool.size)
    shape4 = (g.n, gr, mg, p)

    def run(inputs, outputs, scratch):
        x, y = inputs[0], outputs[0]
        bias, res = _split_inputs(inputs, epi.residual)
        w = wmat if wmat is not None else weights(inputs[1])
        bv = bcol if bcol is not None else (bias.reshape(gr, mg, 1) if bias is not None else None)
        x4, y4, r4 = x.reshape(g.n, gr, cg, p), y.reshape(shape4), _res_view(res, shape4)

        if whole:
            def image(n: int) -> None:
                np.matmul(w, x4[n], out=y4[n])
                _finish(epi, y4[n], bv, None if r4 is None else r4[n])

            pool.run(image, g.n)
            return
        b2 = None if bv is None else bv.reshape(g.m, 1)
        for n in range(g.n):
            def piece(i: int) -> None:
                np.matmul(w, x4[n, :, :, cols[i]], out=y4[n, :, :, cols[i]])

            pool.run(piece, len(cols))
            _finish_blocks(pool, epi, y4[n].reshape(g.m, p), b2,
                           None if r4 is None else r4[n].reshape(g.m, p), ranges)
    return run


def _depthwise_build(g: ConvGeom, wmat, weights, bcol, epi: Epilogue, pool, dtype: np.dtype, pad_elems: int):
    """One input channel per group: shifted multiply-adds over channel blocks that fit in L2."""
    taps = list(np.ndindex(*g.kernel))
    ks, p, nd = g.k_size, g.p_size, len(g.kernel)
    per_chan = (int(np.prod(g.pad_sp)) if g.padded else 0) + 2 * p
    flops = 2.0 * g.c * ks * p
    n_parts = max(_parts(g.c * per_chan * g.itemsize, pool.size, flops), 1)
    ranges = split(g.c, n_parts)
    tail = (1,) * nd

    def run(inputs, outputs, scratch):
        x, y = inputs[0], outputs[0]
        bias, res = _split_inputs(inputs, epi.residual)
        w = wmat if wmat is not None else weights(inputs[1])
        wb = w.reshape((g.c, ks) + tail)
        bv = bcol if bcol is not None else (bias.reshape(g.c, 1) if bias is not None else None)
        work = scratch.view(dtype)
        buf = work[:pad_elems].reshape((g.c,) + g.pad_sp) if g.padded else None
        tmp = work[pad_elems:pad_elems + g.c * p].reshape((g.c,) + g.out_sp)
        for n in range(g.n):
            x_n, y_n = x[n], y[n]

            def task(i: int) -> None:
                a, b = ranges[i]
                src = x_n[a:b]
                if buf is not None:
                    pad_into(src, buf[a:b], g.pb)
                    src = buf[a:b]
                win = windows(src, g.kernel, g.out_sp, g.strides, g.dilations)
                out, t_ = y_n[a:b], tmp[a:b]
                for k, tap in enumerate(taps):
                    if k == 0:
                        np.multiply(win[(slice(None),) + tap], wb[a:b, k], out=out)
                    else:
                        np.multiply(win[(slice(None),) + tap], wb[a:b, k], out=t_)
                        np.add(out, t_, out=out)
                out2 = out.reshape(b - a, p)
                _finish(epi, out2, None if bv is None else bv[a:b],
                        None if res is None else res[n, a:b].reshape(b - a, p))

            pool.run(task, len(ranges))
    return run


def _im2col_build(g: ConvGeom, wmat, weights, bcol, epi: Epilogue, pool, dtype: np.dtype, pad_elems: int):
    """im2col into scratch, then GEMM.

    Small outputs (a few hundred pixels, where bands of rows make thin GEMMs and strided epilogues)
    fill the whole column matrix first, split by input channels, multiply column pieces of it and
    finish on channel blocks.
    Otherwise tasks own output-row bands: each builds its own columns (in L2), multiplies and
    applies the epilogue.
    """
    gr, cg, mg, ks, p, nd = g.group, g.c // g.group, g.m // g.group, g.k_size, g.p_size, len(g.kernel)
    kdim = cg * ks
    o0 = g.out_sp[0]
    rest = p // o0 if o0 else 0
    flops = 2.0 * g.m * kdim * p
    head = (slice(None),) * (1 + nd)
    parts = _parts((g.c * ks + g.m) * p * g.itemsize, pool.size, flops)
    bands = split(o0, min(parts, max(1, (o0 * rest) // MIN_COLS)))
    small = len(bands) > 1 and p < BAND_MIN_COLS * len(bands)
    pieces = _col_ranges(p, pool.size) if small else []
    fills = split(g.c, pool.size) if small else []
    ranges = split(g.m, pool.size)

    def run(inputs, outputs, scratch):
        x, y = inputs[0], outputs[0]
        bias, res = _split_inputs(inputs, epi.residual)
        w = wmat if wmat is not None else weights(inputs[1])
        bv = bcol if bcol is not None else (bias.reshape(gr, mg, 1) if bias is not None else None)
        work = scratch.view(dtype)
        buf = work[:pad_elems].reshape((g.c,) + g.pad_sp) if g.padded else None
        cols = work[pad_elems:pad_elems + g.c * ks * p]
        y4 = y.reshape(g.n, gr, mg, p)
        r4 = _res_view(res, (g.n, gr, mg, p))
        cols5 = cols.reshape((g.c,) + g.kernel + g.out_sp)
        for n in range(g.n):
            src = x[n]

            def fill(i: int) -> None:
                a, b = fills[i]
                s = src[a:b]
                if buf is not None:
                    pad_into(s, buf[a:b], g.pb)
                    s = buf[a:b]
                np.copyto(cols5[a:b], windows(s, g.kernel, g.out_sp, g.strides, g.dilations))

            def piece(i: int) -> None:
                a, b = pieces[i]
                np.matmul(w, cols.reshape(gr, kdim, p)[:, :, a:b], out=y4[n, :, :, a:b])

            if small:
                pool.run(fill, len(fills))
                pool.run(piece, len(pieces))
                _finish_blocks(pool, epi, y4[n].reshape(g.m, p), None if bv is None else bv.reshape(g.m, 1),
                               None if r4 is None else r4[n].reshape(g.m, p), ranges)
                continue
            if buf is not None:
                pad_into(src, buf, g.pb)
                src = buf
            win = windows(src, g.kernel, g.out_sp, g.strides, g.dilations)

            def band(i: int) -> None:
                r0, r1 = bands[i]
                c0, c1 = r0 * rest, r1 * rest
                chunk = cols[g.c * ks * c0:g.c * ks * c1]
                np.copyto(chunk.reshape((g.c,) + g.kernel + (r1 - r0,) + g.out_sp[1:]),
                          win[head + (slice(r0, r1),)])
                out = y4[n, :, :, c0:c1]
                np.matmul(w, chunk.reshape(gr, kdim, c1 - c0), out=out)
                _finish(epi, out, bv, None if r4 is None else r4[n, :, :, c0:c1])

            pool.run(band, len(bands))
    return run


@register("Conv", workspace=_conv_workspace, prepack=_conv_prepack)
@float16_via_float32
def conv(spec: OpSpec):
    g = conv_geom(spec)
    epi = Epilogue(spec.attrs)
    dtype = np.dtype(spec.outputs[0].dtype)
    if spec.attr("_winograd"):
        return _wino_build(g, spec.consts.get(1), spec.consts.get(2), epi, dtype)
    check(g.c % g.group == 0 and g.m % g.group == 0, f"Conv {spec.name}: channels not divisible by group")
    pool = get_pool()
    w_const = spec.consts.get(1)
    b_const = spec.consts.get(2)
    cg, mg, ks = g.c // g.group, g.m // g.group, g.k_size
    pad_elems = g.c * int(np.prod(g.pad_sp)) if g.padded else 0

    def weights(w: np.ndarray) -> np.ndarray:
        if g.depthwise:
            return w.reshape(g.c, ks)
        return w.reshape(g.group, mg, cg * ks)

    wmat = weights(w_const) if w_const is not None else None
    if g.depthwise:
        bcol = b_const.reshape(g.c, 1) if b_const is not None else None
        return _depthwise_build(g, wmat, weights, bcol, epi, pool, dtype, pad_elems)
    bcol = b_const.reshape(g.group, mg, 1) if b_const is not None else None
    if _direct_view(g):
        return _direct_build(g, wmat, weights, bcol, epi, pool)
    return _im2col_build(g, wmat, weights, bcol, epi, pool, dtype, pad_elems)


@dataclass
class ConvTGeom:
    n: int
    c: int
    m: int
    group: int
    in_sp: tuple[int, ...]
    out_sp: tuple[int, ...]
    kernel: tuple[int, ...]
    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    pb: tuple[int, ...]
    itemsize: int

    @property
    def shift(self) -> tuple[int, ...]:
        """Offset of full-output index 0 in the accumulation buffer (negative pads grow the output)."""
        return tuple(max(0, -b) for b in self.pb)

    @property
    def full_sp(self) -> tuple[int, ...]:
        return tuple(s + max((i - 1) * st + (k - 1) * d + 1, b + o)
                     for s, i, st, k, d, b, o in zip(self.shift, self.in_sp, self.strides, self.kernel,
                                                     self.dilations, self.pb, self.out_sp))


def convt_geom(spec: OpSpec) -> ConvTGeom:
    x, w, y = spec.inputs[0], spec.inputs[1], spec.outputs[0]
    nd = len(x.shape) - 2
    in_sp = tuple(x.shape[2:])
    kernel = tuple(spec.attr("kernel_shape") or w.shape[2:])
    strides = tuple(spec.attr("strides") or [1] * nd)
    dil = tuple(spec.attr("dilations") or [1] * nd)
    opad = list(spec.attr("output_padding") or [0] * nd)
    pads = spec.attr("pads")
    auto_pad = spec.attr("auto_pad", "NOTSET")
    out_sp = tuple(y.shape[2:])
    if pads is None and auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        pb = []
        for i in range(nd):
            total = strides[i] * (in_sp[i] - 1) + opad[i] + (kernel[i] - 1) * dil[i] + 1 - out_sp[i]
            pb.append(total // 2 if auto_pad == "SAME_UPPER" else total - total // 2)
    elif pads is None or auto_pad == "VALID":
        pb = [0] * nd
    else:
        pb = list(pads[:nd])
    return ConvTGeom(x.shape[0], x.shape[1], y.shape[1], int(spec.attr("group", 1)), in_sp, out_sp, kernel,
                     strides, dil, tuple(pb), compute_itemsize(y.dtype))


def _convt_workspace(spec: OpSpec) -> int:
    g = convt_geom(spec)
    return (g.m * int(np.prod(g.kernel)) * int(np.prod(g.in_sp)) + g.m * int(np.prod(g.full_sp))) * g.itemsize


@register("ConvTranspose", workspace=_convt_workspace)
@float16_via_float32
def conv_transpose(spec: OpSpec):
    """Y = col2im(W^T X): one GEMM per image and group, then one strided add per kernel tap."""
    g = convt_geom(spec)
    epi = Epilogue(spec.attrs)
    dtype = np.dtype(spec.outputs[0].dtype)
    cg, mg = g.c // g.group, g.m // g.group
    ks, pin = int(np.prod(g.kernel)), int(np.prod(g.in_sp))
    nfull = g.m * int(np.prod(g.full_sp))
    taps = list(np.ndindex(*g.kernel))
    # accumulation slices of each tap, and the output crop, in the full buffer
    tap_slices = [(slice(None),) + tuple(slice(sh + t * d, sh + t * d + (i - 1) * s + 1, s)
                                         for sh, t, d, i, s in zip(g.shift, tap, g.dilations, g.in_sp, g.strides))
                  for tap in taps]
    crop = (slice(None),) + tuple(slice(sh + b, sh + b + o) for sh, b, o in zip(g.shift, g.pb, g.out_sp))

    def weights(w: np.ndarray) -> np.ndarray:
        return w.reshape(g.group, cg, mg * ks).transpose(0, 2, 1)

    w_const = spec.consts.get(1)
    wmat = weights(w_const) if w_const is not None else None
    bshape = (g.m,) + (1,) * len(g.kernel)

    def run(inputs, outputs, scratch):
        x, y = inputs[0], outputs[0]
        bias, res = _split_inputs(inputs, epi.residual)
        w = wmat if wmat is not None else weights(inputs[1])
        cols = scratch[:g.m * ks * pin * g.itemsize].view(dtype)
        cols_g = cols.reshape(g.group, mg * ks, pin)
        cols_t = cols.reshape((g.m, ks) + g.in_sp)
        full = scratch[g.m * ks * pin * g.itemsize:(g.m * ks * pin + nfull) * g.itemsize].view(dtype)
        full = full.reshape((g.m,) + g.full_sp)
        for n in range(g.n):
            np.matmul(w, x[n].reshape(g.group, cg, pin), out=cols_g)
            full.fill(0)
            for t, sl in enumerate(tap_slices):
                dst = full[sl]
                np.add(dst, cols_t[:, t], out=dst)
            np.copyto(y[n], full[crop])
            if bias is not None:
                np.add(y[n], bias.reshape(bshape), out=y[n])
        epi(y, res)
    return run
