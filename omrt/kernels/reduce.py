"""Reductions (Reduce*, ArgMax/ArgMin) and Softmax/LogSoftmax.

Axes come from the `axes` attribute (older opsets) or the second input (newer ones); a constant
input is resolved at build time, a runtime one is read on each call. Intermediates (squares, the
running max of LogSumExp and Softmax) live in planned scratch; float16 runs them in float32.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from omrt.kernels import softmax_jit
from omrt.kernels.base import Kernel, OpSpec, register
from omrt.kernels.broadcast import cache_miss, carve, layout_bytes, normalize_axes

_F16 = np.dtype(np.float16)
_F32 = np.dtype(np.float32)
_NEEDS_TMP = {"ReduceL1", "ReduceL2", "ReduceSumSquare", "ReduceLogSumExp"}


def _work_dtype(dt: np.dtype) -> np.dtype:
    return _F32 if dt == _F16 else dt


def _initial(op: str, dt: np.dtype):
    """Identity of max/min so an empty reduction gives -inf/+inf (or the integer limits)."""
    if dt.kind == "b":
        return op == "ReduceMin"
    if dt.kind == "f":
        return -np.inf if op == "ReduceMax" else np.inf
    info = np.iinfo(dt)
    return info.min if op == "ReduceMax" else info.max


def _reduce_layout(spec: OpSpec):
    x = spec.inputs[0]
    if spec.op_type not in _NEEDS_TMP:
        return []
    wdt = _work_dtype(x.dtype)
    lay = [(x.shape, wdt)]
    if spec.op_type == "ReduceLogSumExp":
        lay.append(((int(np.prod([max(1, n) for n in x.shape], dtype=np.int64)),), wdt))
    return lay


def _reduce_workspace(spec: OpSpec) -> int:
    return layout_bytes(_reduce_layout(spec))


def _reducer(op: str, dt: np.dtype) -> Callable:
    """fn(x, axes, keepdims, o, views) writing the reduction of x over `axes` into o."""
    if op == "ReduceSum":
        return lambda x, ax, kd, o, v: np.sum(x, axis=ax, keepdims=kd, out=o)
    if op == "ReduceMean":
        return lambda x, ax, kd, o, v: np.mean(x, axis=ax, keepdims=kd, out=o)
    if op == "ReduceProd":
        return lambda x, ax, kd, o, v: np.prod(x, axis=ax, keepdims=kd, out=o)
    if op in ("ReduceMax", "ReduceMin"):
        fn, init = (np.max if op == "ReduceMax" else np.min), _initial(op, dt)
        return lambda x, ax, kd, o, v: fn(x, axis=ax, keepdims=kd, out=o, initial=init)
    if op in ("ReduceL1", "ReduceL2", "ReduceSumSquare"):
        pre = np.absolute if op == "ReduceL1" else np.square

        def f(x, ax, kd, o, v):
            t = v[0]
            pre(x, out=t)
            np.sum(t, axis=ax, keepdims=kd, out=o, dtype=t.dtype)
            if op == "ReduceL2":
                np.sqrt(o, out=o, casting="unsafe")

        return f
    if op == "ReduceLogSumExp":

        def lse(x, ax, kd, o, v):
            t, flat = v
            kshape = tuple(1 if i in ax else n for i, n in enumerate(x.shape))
            m = flat[: int(np.prod(kshape, dtype=np.int64))].reshape(kshape)
            np.max(x, axis=ax, keepdims=True, out=m, initial=-np.inf)
            np.copyto(m, 0, where=~np.isfinite(m))
            np.subtract(x, m, out=t)
            np.exp(t, out=t)
            np.sum(t, axis=ax, keepdims=kd, out=o, dtype=t.dtype)
            with np.errstate(divide="ignore"):  # an empty reduction is log(0) = -inf, as ONNX says
                np.log(o, out=o)
            np.add(o, m.reshape(o.shape), out=o, casting="unsafe")

        return lse
    raise KeyError(op)


@register("ReduceSum", "ReduceMean", "ReduceProd", "ReduceMax", "ReduceMin", "ReduceL1", "ReduceL2",
          "ReduceSumSquare", "ReduceLogSumExp", workspace=_reduce_workspace)
def _reduce(spec: OpSpec) -> Kernel:
    x = spec.inputs[0]
    ndim = len(x.shape)
    keep = bool(spec.attr("keepdims", 1))
    noop = bool(spec.attr("noop_with_empty_axes", 0))
    fn = _reducer(spec.op_type, x.dtype)
    lay = _reduce_layout(spec)
    cache: list = [cache_miss, []]

    def views(s):
        if lay and cache[0] is not s:
            cache[0], cache[1] = s, carve(s, lay)
        return cache[1]

    def resolve(raw) -> tuple[int, ...] | None:
        if raw is None or np.size(raw) == 0:
            return None if noop else tuple(range(ndim))
        return normalize_axes(raw, ndim)

    def run(x_, axes, o, s):
        if axes is None:
            np.copyto(o, x_)
        else:
            fn(x_, axes, keep, o, views(s))

    has_input = len(spec.inputs) > 1 and spec.inputs[1] is not None
    if "axes" in spec.attrs or not has_input or 1 in spec.consts:
        axes = resolve(spec.attrs.get("axes", spec.consts.get(1)))
        return lambda ins, outs, s: run(ins[0], axes, outs[0], s)

    return lambda ins, outs, s: run(ins[0], resolve(ins[1]), outs[0], s)


@register("ArgMax", "ArgMin")
def _arg(spec: OpSpec) -> Kernel:
    ndim = len(spec.inputs[0].shape)
    axis = int(spec.attr("axis", 0)) % max(ndim, 1)
    keep = bool(spec.attr("keepdims", 1))
    fn = np.argmax if spec.op_type == "ArgMax" else np.argmin
    if not spec.attr("select_last_index", 0):
        return lambda ins, outs, s: fn(ins[0], axis=axis, keepdims=keep, out=outs[0])
    last = spec.inputs[0].shape[axis] - 1

    def k(ins, outs, s):
        fn(np.flip(ins[0], axis), axis=axis, keepdims=keep, out=outs[0])
        np.subtract(last, outs[0], out=outs[0])

    return k


def _softmax_axes(spec: OpSpec) -> tuple[int, ...]:
    """opset < 13 flattens to 2-D at `axis` (default 1); later opsets reduce `axis` (default -1)."""
    ndim = len(spec.inputs[0].shape)
    opset = int(spec.attr("_opset", 13))
    if opset < 13:
        axis = int(spec.attr("axis", 1)) % max(ndim, 1)
        return tuple(range(axis, ndim))
    return (int(spec.attr("axis", -1)) % max(ndim, 1),)


def _softmax_layout(spec: OpSpec):
    x = spec.inputs[0]
    axes = _softmax_axes(spec)
    wdt = _work_dtype(x.dtype)
    kshape = tuple(1 if i in axes else n for i, n in enumerate(x.shape))
    lay = [(kshape, wdt)]
    if spec.op_type == "LogSoftmax":
        lay.append((x.shape, wdt))
    if x.dtype == _F16:
        lay.append((x.shape, wdt))
    return lay


@register("Softmax", "LogSoftmax", workspace=lambda spec: layout_bytes(_softmax_layout(spec)))
def _softmax(spec: OpSpec) -> Kernel:
    x = spec.inputs[0]
    axes = _softmax_axes(spec)
    lay = _softmax_layout(spec)
    log = spec.op_type == "LogSoftmax"
    f16 = x.dtype == _F16
    empty = int(np.prod(x.shape, dtype=np.int64)) == 0
    cache: list = [cache_miss, []]

    def views(s):
        if cache[0] is not s:
            cache[0], cache[1] = s, carve(s, lay)
        return cache[1]

    def body(xv, o, m, t):
        np.max(xv, axis=axes, keepdims=True, out=m)
        np.subtract(xv, m, out=o)
        if log:
            np.exp(o, out=t)
            np.sum(t, axis=axes, keepdims=True, out=m)
            np.log(m, out=m)
            np.subtract(o, m, out=o)
        else:
            np.exp(o, out=o)
            np.sum(o, axis=axes, keepdims=True, out=m)
            np.divide(o, m, out=o)

    if softmax_jit.fits(x.shape, axes, x.dtype):
        softmax_jit.warm_up()
        rows = int(np.prod(x.shape[:len(x.shape) - len(axes)], dtype=np.int64))

        def compiled(ins, outs, s):
            softmax_jit.softmax_rows(ins[0], outs[0], rows, log)

        return compiled

    def k(ins, outs, s):
        if empty:
            return
        v = views(s)
        m, t = v[0], (v[1] if log else None)
        if f16:
            w = v[-1]
            np.copyto(w, ins[0])
            body(w, w, m, t)
            np.copyto(outs[0], w, casting="same_kind")
        else:
            body(ins[0], outs[0], m, t)

    return k
