"""Conv and ConvTranspose: convolution as GEMM over planned scratch.

Paths, chosen once at build time:
  * 1x1, stride 1, no padding, group 1: one GEMM straight on the NCHW view (no copy).
  * depthwise (one input channel per group, one output per group): shifted multiply-accumulate.
  * everything else: pad into scratch, im2col as one strided copy, one (batched) GEMM into Y.
  * 3x3 stride-1 group-1 with `_winograd`: Winograd F(4x4,3x3) on pre-transformed weights.
Bias, residual and activation are applied in place on the output (omrt.kernels.epilogue).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from numpy.lib.stride_tricks import as_strided

from omrt.kernels.base import OpSpec, check, register
from omrt.kernels.epilogue import Epilogue, float16_via_float32


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


def _conv_workspace(spec: OpSpec) -> int:
    g = conv_geom(spec)
    if spec.attr("_winograd"):
        return _wino_workspace(g)
    if g.pointwise:
        return 0
    pad = g.c * int(np.prod(g.pad_sp)) if g.padded else 0
    if g.depthwise:
        return (pad + g.c * g.p_size) * g.itemsize
    return (pad + g.c * g.k_size * g.p_size) * g.itemsize


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


def _wino_eligible(g: ConvGeom, dtype: Any) -> bool:
    return (np.dtype(dtype) == np.float32 and len(g.kernel) == 2 and g.kernel == (3, 3)
            and g.strides == (1, 1) and g.dilations == (1, 1) and g.group == 1
            and min(g.c, g.m) >= WINOGRAD_MIN_CHANNELS)


def _wino_weight(w: np.ndarray) -> np.ndarray:
    """(M, C, 3, 3) -> (36, M, C): the 36 weight matrices of the batched GEMM."""
    m, c = w.shape[:2]
    u = _WINO_W @ w.astype(np.float64).reshape(m * c, 9).T
    return np.ascontiguousarray(u.reshape(36, m, c).astype(np.float32))


def _wino_tiles(g: ConvGeom) -> tuple[int, int]:
    return -(-g.out_sp[0] // 4), -(-g.out_sp[1] // 4)


def _wino_workspace(g: ConvGeom) -> int:
    th, tw = _wino_tiles(g)
    t = th * tw
    pad = g.c * (4 * th + 2) * (4 * tw + 2)
    return (pad + max(36 * g.c * t, 36 * g.m * t) + max(36 * g.c * t, 16 * g.m * t)) * g.itemsize


def _wino_build(g: ConvGeom, u_const: np.ndarray | None, b_const: np.ndarray | None, epi: Epilogue,
                dtype: np.dtype):
    th, tw = _wino_tiles(g)
    t = th * tw
    hp, wp = 4 * th + 2, 4 * tw + 2
    ho, wo = g.out_sp
    exact = (ho, wo) == (4 * th, 4 * tw)
    pad_n = g.c * hp * wp
    a_n = max(36 * g.c * t, 36 * g.m * t)
    b_n = max(36 * g.c * t, 16 * g.m * t)
    k_in = _WINO_IN.astype(dtype)
    k_out = _WINO_OUT.astype(dtype)
    isz = g.itemsize

    def run(inputs, outputs, scratch):
        x, y = inputs[0], outputs[0]
        bias, res = _split_inputs(inputs, epi.residual)
        u = u_const if u_const is not None else inputs[1]
        buf = scratch[:pad_n * isz].view(dtype).reshape(g.c, hp, wp)
        a = scratch[pad_n * isz:(pad_n + a_n) * isz].view(dtype)
        b = scratch[(pad_n + a_n) * isz:(pad_n + a_n + b_n) * isz].view(dtype)
        s0, s1, s2 = buf.strides
        tiles = as_strided(buf, (6, 6, g.c, th, tw), (s1, s2, s0, 4 * s1, 4 * s2), writeable=False)
        for n in range(g.n):
            pad_into(x[n], buf, g.pb)
            d = a[:36 * g.c * t]
            np.copyto(d.reshape(6, 6, g.c, th, tw), tiles)
            v = b[:36 * g.c * t].reshape(36, g.c * t)
            np.matmul(k_in, d.reshape(36, g.c * t), out=v)
            mo = a[:36 * g.m * t].reshape(36, g.m, t)
            np.matmul(u, v.reshape(36, g.c, t), out=mo)
            o = b[:16 * g.m * t].reshape(16, g.m * t)
            np.matmul(k_out, mo.reshape(36, g.m * t), out=o)
            blocks = o.reshape(4, 4, g.m, th, tw).transpose(2, 3, 0, 4, 1)
            if exact:
                np.copyto(y[n].reshape(g.m, th, 4, tw, 4), blocks)
            else:
                stage = a[:16 * g.m * t].reshape(g.m, th, 4, tw, 4)
                np.copyto(stage, blocks)
                np.copyto(y[n], stage.reshape(g.m, 4 * th, 4 * tw)[:, :ho, :wo])
        if bias is not None:
            y3 = y.reshape(g.n, g.m, ho * wo)
            np.add(y3, (b_const if b_const is not None else bias).reshape(g.m, 1), out=y3)
        epi(y, res)
    return run


def _conv_prepack(spec: OpSpec) -> tuple[dict[str, Any], dict[int, np.ndarray]] | None:
    if spec.attr("_winograd") or 1 not in spec.consts:
        return None
    g = conv_geom(spec)
    if not _wino_eligible(g, spec.outputs[0].dtype):
        return None
    return {"_winograd": 1}, {1: _wino_weight(spec.consts[1])}


@register("Conv", workspace=_conv_workspace, prepack=_conv_prepack)
@float16_via_float32
def conv(spec: OpSpec):
    g = conv_geom(spec)
    epi = Epilogue(spec.attrs)
    dtype = np.dtype(spec.outputs[0].dtype)
    if spec.attr("_winograd"):
        return _wino_build(g, spec.consts.get(1), spec.consts.get(2), epi, dtype)
    check(g.c % g.group == 0 and g.m % g.group == 0, f"Conv {spec.name}: channels not divisible by group")
    w_const = spec.consts.get(1)
    b_const = spec.consts.get(2)
    cg, mg, ks, p = g.c // g.group, g.m // g.group, g.k_size, g.p_size
    pad_elems = g.c * int(np.prod(g.pad_sp)) if g.padded else 0
    sp_nd = len(g.kernel)

    def weights(w: np.ndarray) -> np.ndarray:
        if g.depthwise:
            return w.reshape(g.c, ks)
        return w.reshape(g.group, mg, cg * ks)

    wmat = weights(w_const) if w_const is not None else None
    bcol = b_const.reshape(g.m, 1) if b_const is not None else None

    def finish(y3: np.ndarray, bias: np.ndarray | None, res: np.ndarray | None, y: np.ndarray) -> None:
        if bias is not None:
            np.add(y3, bcol if bcol is not None else bias.reshape(g.m, 1), out=y3)
        epi(y, res)

    if g.pointwise:
        def run_pointwise(inputs, outputs, scratch):
            x, y = inputs[0], outputs[0]
            bias, res = _split_inputs(inputs, epi.residual)
            w = wmat if wmat is not None else weights(inputs[1])
            y3 = y.reshape(g.n, g.m, p)
            np.matmul(w[0], x.reshape(g.n, g.c, p), out=y3)
            finish(y3, bias, res, y)
        return run_pointwise

    def padded_input(x_n: np.ndarray, scratch: np.ndarray) -> np.ndarray:
        if not g.padded:
            return x_n
        buf = scratch[:pad_elems * g.itemsize].view(dtype).reshape((g.c,) + g.pad_sp)
        pad_into(x_n, buf, g.pb)
        return buf

    if g.depthwise:
        taps = list(np.ndindex(*g.kernel))

        def run_depthwise(inputs, outputs, scratch):
            x, y = inputs[0], outputs[0]
            bias, res = _split_inputs(inputs, epi.residual)
            w = wmat if wmat is not None else weights(inputs[1])
            wb = w.reshape((g.c, ks) + (1,) * sp_nd)
            tmp = scratch[pad_elems * g.itemsize:(pad_elems + g.c * p) * g.itemsize].view(dtype)
            tmp = tmp.reshape((g.c,) + g.out_sp)
            for n in range(g.n):
                win = windows(padded_input(x[n], scratch), g.kernel, g.out_sp, g.strides, g.dilations)
                y_n = y[n]
                for t, tap in enumerate(taps):
                    if t == 0:
                        np.multiply(win[(slice(None),) + tap], wb[:, t], out=y_n)
                    else:
                        np.multiply(win[(slice(None),) + tap], wb[:, t], out=tmp)
                        np.add(y_n, tmp, out=y_n)
            finish(y.reshape(g.n, g.m, p), bias, res, y)
        return run_depthwise

    def run_im2col(inputs, outputs, scratch):
        x, y = inputs[0], outputs[0]
        bias, res = _split_inputs(inputs, epi.residual)
        w = wmat if wmat is not None else weights(inputs[1])
        cols = scratch[pad_elems * g.itemsize:(pad_elems + g.c * ks * p) * g.itemsize].view(dtype)
        cols_nd = cols.reshape((g.c,) + g.kernel + g.out_sp)
        cols_g = cols.reshape(g.group, cg * ks, p)
        y4 = y.reshape(g.n, g.group, mg, p)
        for n in range(g.n):
            np.copyto(cols_nd, windows(padded_input(x[n], scratch), g.kernel, g.out_sp, g.strides, g.dilations))
            if g.group == 1:
                np.matmul(w[0], cols_g[0], out=y4[n, 0])
            else:
                np.matmul(w, cols_g, out=y4[n])
        finish(y.reshape(g.n, g.m, p), bias, res, y)
    return run_im2col


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
