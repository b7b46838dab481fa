"""Resize (opset 10..19) and Upsample (opset 7/9): separable nearest / linear / cubic interpolation.

Each resized axis becomes a small tap table (source index and weight per output position, one row
per tap) built once from the scales or sizes; a call is then a few `np.take` + multiply-add passes
per axis through planned scratch. Runtime scales/sizes/roi are read on each call and the tables are
rebuilt only when their values change.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from omrt.kernels.base import Kernel, OpSpec, check, register
from omrt.kernels.broadcast import cache_miss, carve, layout_bytes


@dataclass(frozen=True)
class _Taps:
    axis: int
    index: np.ndarray           # (taps, out_len) int64 source positions, clamped into range
    weight: np.ndarray | None   # (taps, out_len) float, None for nearest
    outside: np.ndarray | None  # (out_len,) bool, tf_crop_and_resize positions to extrapolate


def _source_coords(ctm: str, out_len: int, in_len: int, scale: float, roi: tuple[float, float]) -> np.ndarray:
    """Map output positions to input coordinates (float64) as the ONNX spec defines each mode."""
    x = np.arange(out_len, dtype=np.float64)
    out_width = scale * in_len
    if ctm == "align_corners":
        return np.zeros(out_len) if out_width == 1 else x * (in_len - 1) / (out_width - 1)
    if ctm == "asymmetric":
        return x / scale
    if ctm == "tf_crop_and_resize":
        start, end = roi
        if out_width == 1:
            return np.full(out_len, (end - start) * (in_len - 1) / 2 + start * (in_len - 1))
        return x * (end - start) * (in_len - 1) / (out_width - 1) + start * (in_len - 1)
    if ctm == "pytorch_half_pixel":
        return np.full(out_len, -0.5) if out_width == 1 else (x + 0.5) / scale - 0.5
    if ctm == "half_pixel":
        return (x + 0.5) / scale - 0.5
    if ctm == "half_pixel_symmetric":
        offset = in_len / 2 * (1 - out_len / out_width)
        return offset + (x + 0.5) / scale - 0.5
    if ctm == "tf_half_pixel_for_nn":
        return (x + 0.5) / scale
    check(False, f"Resize coordinate_transformation_mode {ctm} is not supported")
    raise AssertionError


def _cubic(r: np.ndarray, a: float) -> np.ndarray:
    s = 1 - r
    return np.stack([
        ((a * (r + 1) - 5 * a) * (r + 1) + 8 * a) * (r + 1) - 4 * a,
        ((a + 2) * r - (a + 3)) * r * r + 1,
        ((a + 2) * s - (a + 3)) * s * s + 1,
        ((a * (s + 1) - 5 * a) * (s + 1) + 8 * a) * (s + 1) - 4 * a,
    ])


def _axis_taps(axis: int, in_len: int, out_len: int, scale: float, roi: tuple[float, float], p: dict) -> _Taps | None:
    """Tap table of one axis, or None when the axis maps onto itself."""
    x = _source_coords(p["ctm"], out_len, in_len, scale, roi)
    base = np.floor(x)
    r = x - base
    base = base.astype(np.int64)
    outside = None
    if p["ctm"] == "tf_crop_and_resize":
        outside = (x < 0) | (x > in_len - 1)
        outside = outside if outside.any() else None
    if p["mode"] == "nearest":
        nm = p["nearest_mode"]
        up = {"round_prefer_floor": r > 0.5, "round_prefer_ceil": r >= 0.5,
              "floor": np.zeros_like(r, bool), "ceil": r > 0}[nm]
        index = np.clip(base + up, 0, in_len - 1)[None]
        weight = None
    elif p["mode"] == "linear":
        index = np.stack([base, base + 1])
        weight = np.stack([1 - r, r])
    else:
        index = np.stack([base - 1, base, base + 1, base + 2])
        weight = _cubic(r, p["cubic_a"])
        if p["exclude_outside"]:
            weight = np.where((index < 0) | (index >= in_len), 0.0, weight)
            weight = weight / weight.sum(axis=0, keepdims=True)
    if weight is not None:
        keep = (weight != 0).any(axis=1)
        index, weight = index[keep], weight[keep]
        index = np.clip(index, 0, in_len - 1)
        if index.shape[0] == 1 and (weight == 1).all():
            weight = None
    if out_len == in_len and outside is None and weight is None and (index[0] == np.arange(in_len)).all():
        return None
    return _Taps(axis, np.ascontiguousarray(index), weight, outside)


def _params(spec: OpSpec) -> dict:
    opset = int(spec.attr("_opset", 10 if spec.op_type == "Upsample" or len(spec.inputs) == 2 else 19))
    mode = str(spec.attr("mode", "nearest"))
    mode = "linear" if mode in ("bilinear", "trilinear") else mode
    check(mode in ("nearest", "linear", "cubic"), f"Resize mode {mode} is not supported")
    check(not spec.attr("antialias", 0), "Resize antialias is not supported")
    legacy = spec.op_type == "Upsample" or opset < 11
    return {
        "legacy": legacy,
        "mode": mode,
        "ctm": "asymmetric" if legacy else str(spec.attr("coordinate_transformation_mode", "half_pixel")),
        "nearest_mode": "floor" if legacy else str(spec.attr("nearest_mode", "round_prefer_floor")),
        "cubic_a": float(spec.attr("cubic_coeff_a", -0.75)),
        "exclude_outside": bool(spec.attr("exclude_outside", 0)),
        "extrapolation": float(spec.attr("extrapolation_value", 0.0)),
        "policy": str(spec.attr("keep_aspect_ratio_policy", "stretch")),
        "axes": spec.attr("axes"),
    }


def _build_taps(spec: OpSpec, p: dict, roi, scales, sizes) -> list[_Taps]:
    in_shape = spec.inputs[0].shape
    out_shape = spec.outputs[0].shape
    ndim = len(in_shape)
    axes = list(range(ndim)) if p["axes"] is None else [int(a) % ndim for a in p["axes"]]
    full_scale = [1.0] * ndim
    full_roi = [(0.0, 1.0)] * ndim
    if roi is not None and np.size(roi) == 2 * len(axes):
        roi = np.asarray(roi, dtype=np.float64).ravel()
        for j, a in enumerate(axes):
            full_roi[a] = (float(roi[j]), float(roi[len(axes) + j]))
    if scales is not None and np.size(scales) > 0:
        for j, a in enumerate(axes):
            full_scale[a] = float(np.asarray(scales).ravel()[j])
    else:
        check(sizes is not None, "Resize needs scales or sizes")
        wanted = np.asarray(sizes, dtype=np.int64).ravel()
        ratio = [int(wanted[j]) / in_shape[a] if in_shape[a] else 1.0 for j, a in enumerate(axes)]
        if p["policy"] == "not_larger":
            ratio = [min(ratio)] * len(axes)
        elif p["policy"] == "not_smaller":
            ratio = [max(ratio)] * len(axes)
        for j, a in enumerate(axes):
            full_scale[a] = ratio[j]
    taps = []
    for a in range(ndim):
        t = _axis_taps(a, in_shape[a], out_shape[a], full_scale[a], full_roi[a], p)
        if t is not None:
            taps.append(t)
    return taps


def _work_dtype(spec: OpSpec) -> np.dtype:
    return np.dtype(np.float64) if spec.inputs[0].dtype == np.float64 else np.dtype(np.float32)


def _layout(spec: OpSpec) -> list:
    """Input copy (non-work dtype), two ping-pong buffers and one tap buffer, each as big as the
    largest intermediate of the axis-by-axis passes in axis order."""
    in_shape, out_shape = spec.inputs[0].shape, spec.outputs[0].shape
    wdt = _work_dtype(spec)
    shape = list(in_shape)
    biggest = int(np.prod(out_shape, dtype=np.int64))
    for a, n in enumerate(out_shape):
        shape[a] = n
        biggest = max(biggest, int(np.prod(shape, dtype=np.int64)))
    lay = [((biggest,), wdt)] * 3
    if spec.inputs[0].dtype != wdt:
        lay.append((in_shape, wdt))
    return lay


def _run(taps: list[_Taps], x: np.ndarray, o: np.ndarray, bufs: list[np.ndarray], extrapolation: float) -> None:
    a_buf, b_buf, t_buf = bufs[:3]
    if x.dtype != a_buf.dtype:
        np.copyto(bufs[3], x, casting="unsafe")
        x = bufs[3]
    if not taps:
        np.copyto(o, x, casting="unsafe")
        return
    shape = list(x.shape)
    src = x
    for i, t in enumerate(taps):
        shape[t.axis] = t.index.shape[1]
        n = int(np.prod(shape, dtype=np.int64))
        last = i == len(taps) - 1
        direct = last and o.dtype == a_buf.dtype
        dst = o if direct else (a_buf if i % 2 == 0 else b_buf)[:n].reshape(shape)
        wshape = [1] * len(shape)
        wshape[t.axis] = -1
        np.take(src, t.index[0], axis=t.axis, out=dst, mode="clip")
        if t.weight is not None:
            np.multiply(dst, t.weight[0].reshape(wshape), out=dst)
            tmp = t_buf[:n].reshape(shape)
            for k in range(1, t.index.shape[0]):
                np.take(src, t.index[k], axis=t.axis, out=tmp, mode="clip")
                np.multiply(tmp, t.weight[k].reshape(wshape), out=tmp)
                np.add(dst, tmp, out=dst)
        if t.outside is not None:
            np.copyto(dst, extrapolation, where=t.outside.reshape(wshape))
        src = dst
    if src is not o:
        if o.dtype.kind in "iub":
            np.rint(src, out=src)
            info = np.iinfo(o.dtype) if o.dtype.kind != "b" else None
            if info is not None:
                np.clip(src, info.min, info.max, out=src)
        np.copyto(o, src, casting="unsafe")


def _inputs_of(spec: OpSpec, p: dict):
    """Input positions of (roi, scales, sizes) in this op's form; None where the form has none."""
    if spec.op_type == "Upsample" or p["legacy"]:
        return None, (1 if len(spec.inputs) > 1 else None), None
    n = len(spec.inputs)
    pos = [i if i < n and spec.inputs[i] is not None else None for i in (1, 2, 3)]
    return tuple(pos)


@register("Resize", "Upsample", workspace=lambda spec: layout_bytes(_layout(spec)))
def _resize(spec: OpSpec) -> Kernel:
    p = _params(spec)
    lay = _layout(spec)
    ev = p["extrapolation"]
    where = _inputs_of(spec, p)
    cache: list = [cache_miss, []]

    def views(s):
        if cache[0] is not s:
            cache[0], cache[1] = s, carve(s, lay)
        return cache[1]

    attr_scales = spec.attr("scales")
    if attr_scales is not None and where[1] is None:
        taps = _build_taps(spec, p, None, attr_scales, None)
        return lambda ins, outs, s: _run(taps, ins[0], outs[0], views(s), ev)
    if all(i is None or i in spec.consts for i in where):
        vals = [None if i is None else spec.consts[i] for i in where]
        taps = _build_taps(spec, p, *vals)
        return lambda ins, outs, s: _run(taps, ins[0], outs[0], views(s), ev)

    memo: dict = {}

    def k(ins, outs, s):
        vals = [None if i is None or i >= len(ins) or ins[i] is None else ins[i] for i in where]
        key = tuple(None if v is None else (v.dtype.str, v.tobytes()) for v in vals)
        taps = memo.get(key)
        if taps is None:
            memo.clear()
            taps = memo[key] = _build_taps(spec, p, *vals)
        _run(taps, ins[0], outs[0], views(s), ev)

    return k
