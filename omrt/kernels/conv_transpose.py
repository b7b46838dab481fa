"""ConvTranspose: Y = col2im(W^T X), one GEMM per image and group, then one strided add per tap."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from omrt.kernels.base import OpSpec, register
from omrt.kernels.conv_common import compute_itemsize, split_inputs
from omrt.kernels.epilogue import Epilogue, float16_via_float32


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
        bias, res = split_inputs(inputs, epi.residual)
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
