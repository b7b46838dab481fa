"""Data-movement kernels: Concat, Split, Slice, Gather, Transpose, reshapes, Expand, Tile, Pad,
Shape, Size, ConstantOfShape, Range.

Output shapes are fixed by the compiler, so reshape-like ops ignore their shape input and copy into
the planned output. Parameter inputs given as constants are resolved at build time; runtime ones
are read (they are a few integers) on each call.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from omrt.constants import ACL_ERROR_INVALID_PARAM
from omrt.errors import OmrtError
from omrt.kernels.base import Kernel, OpSpec, check, register
from omrt.kernels.broadcast import as_shape, normalize_axes


def _param(spec: OpSpec, i: int):
    """Constant value of parameter input i, or None when it is absent or known only at run time."""
    if i < len(spec.inputs) and spec.inputs[i] is not None:
        return spec.consts.get(i)
    return None


def _has_input(spec: OpSpec, i: int) -> bool:
    return i < len(spec.inputs) and spec.inputs[i] is not None


@register("Reshape", "Flatten", "Squeeze", "Unsqueeze")
def _reshape(spec: OpSpec) -> Kernel:
    shape = spec.outputs[0].shape
    return lambda ins, outs, s: np.copyto(outs[0], np.reshape(ins[0], shape))


@register("Expand")
def _expand(spec: OpSpec) -> Kernel:
    return lambda ins, outs, s: np.copyto(outs[0], ins[0])


@register("Concat")
def _concat(spec: OpSpec) -> Kernel:
    axis = int(spec.attr("axis", 0)) % len(spec.outputs[0].shape)
    return lambda ins, outs, s: np.concatenate(ins, axis=axis, out=outs[0])


@register("Split")
def _split(spec: OpSpec) -> Kernel:
    """Piece sizes are the planned output shapes along `axis`, whatever form `split` took."""
    ndim = len(spec.inputs[0].shape)
    axis = int(spec.attr("axis", 0)) % ndim
    regions = []
    start = 0
    for o in spec.outputs:
        n = o.shape[axis]
        regions.append((slice(None),) * axis + (slice(start, start + n),))
        start += n

    def k(ins, outs, s):
        x = ins[0]
        for o, r in zip(outs, regions):
            np.copyto(o, x[r])

    return k


def _slice_index(shape: Sequence[int], starts, ends, axes, steps) -> tuple[slice, ...]:
    """ONNX Slice parameters (clamped as the spec says) as a tuple of Python slices."""
    ndim = len(shape)
    index = [slice(None)] * ndim
    starts = np.asarray(starts, dtype=np.int64).ravel()
    ends = np.asarray(ends, dtype=np.int64).ravel()
    axes = range(len(starts)) if axes is None else np.asarray(axes, dtype=np.int64).ravel()
    steps = [1] * len(starts) if steps is None else np.asarray(steps, dtype=np.int64).ravel()
    for st, en, ax, sp in zip(starts, ends, axes, steps):
        ax, dim, st, en, sp = int(ax) % ndim, shape[int(ax) % ndim], int(st), int(en), int(sp)
        check(sp != 0, "Slice step must not be 0")
        st = st + dim if st < 0 else st
        en = en + dim if en < 0 else en
        if sp > 0:
            st, en = min(max(st, 0), dim), min(max(en, 0), dim)
        else:
            st, en = min(max(st, 0), dim - 1), min(max(en, -1), dim - 1)
        index[ax] = slice(st, None if en < 0 else en, sp)
    return tuple(index)


@register("Slice")
def _slice(spec: OpSpec) -> Kernel:
    shape = spec.inputs[0].shape
    if "starts" in spec.attrs:
        index = _slice_index(shape, spec.attrs["starts"], spec.attrs["ends"], spec.attr("axes"), None)
        return lambda ins, outs, s: np.copyto(outs[0], ins[0][index])
    runtime = [i for i in (1, 2, 3, 4) if _has_input(spec, i) and i not in spec.consts]
    if not runtime:
        index = _slice_index(shape, *(_param(spec, i) for i in (1, 2, 3, 4)))
        return lambda ins, outs, s: np.copyto(outs[0], ins[0][index])

    def k(ins, outs, s):
        params = [ins[i] if i < len(ins) else None for i in (1, 2, 3, 4)]
        np.copyto(outs[0], ins[0][_slice_index(shape, *params)])

    return k


@register("Gather")
def _gather(spec: OpSpec) -> Kernel:
    """np.take along `axis`; indices outside [-n, n) are an error, as ONNX says, never wrapped."""
    ndim = len(spec.inputs[0].shape)
    axis = int(spec.attr("axis", 0)) % ndim
    n = spec.inputs[0].shape[axis]
    idx = _param(spec, 1)
    if idx is not None:
        idx = np.asarray(idx, dtype=np.int64)
        check(idx.size == 0 or (int(idx.min()) >= -n and int(idx.max()) < n),
              f"Gather {spec.name}: constant index out of range [-{n}, {n})")
        fixed = np.require(idx % max(n, 1), requirements="C")  # keeps a 0-d index 0-d
        return lambda ins, outs, s: np.take(ins[0], fixed, axis=axis, out=outs[0], mode="clip")

    def run(ins, outs, s):
        indices = ins[1]
        if indices.size and (int(indices.min()) < -n or int(indices.max()) >= n):
            raise OmrtError(ACL_ERROR_INVALID_PARAM, f"Gather {spec.name}: index out of range [-{n}, {n})")
        # "wrap" maps negative indices the ONNX way and, unlike "raise", writes out= without a buffer.
        np.take(ins[0], indices, axis=axis, out=outs[0], mode="wrap")
    return run


@register("Transpose")
def _transpose(spec: OpSpec) -> Kernel:
    ndim = len(spec.inputs[0].shape)
    perm = tuple(spec.attr("perm") or range(ndim - 1, -1, -1))
    return lambda ins, outs, s: np.copyto(outs[0], np.transpose(ins[0], perm))


@register("Tile")
def _tile(spec: OpSpec) -> Kernel:
    """Write through a (repeat, dim) view of the output so the input is broadcast, not copied."""
    in_shape = spec.inputs[0].shape
    out_shape = spec.outputs[0].shape
    reps = [o // i if i else 0 for o, i in zip(out_shape, in_shape)]
    split = tuple(v for r, i in zip(reps, in_shape) for v in (r, i))
    src = tuple(v for i in in_shape for v in (1, i))

    def k(ins, outs, s):
        view = as_shape(outs[0], split)
        if view is None:
            np.copyto(outs[0], np.tile(ins[0], reps))
        else:
            np.copyto(view, np.reshape(ins[0], src))

    return k


def _pad_widths(spec: OpSpec, pads, axes) -> list[tuple[int, int]]:
    ndim = len(spec.inputs[0].shape)
    pads = [int(p) for p in np.asarray(pads, dtype=np.int64).ravel()]
    axes = list(range(ndim)) if axes is None else [int(a) % ndim for a in np.asarray(axes).ravel()]
    n = len(axes)
    widths = [(0, 0)] * ndim
    for j, a in enumerate(axes):
        widths[a] = (pads[j], pads[n + j])
    return widths


def _border_source(mode: str, pos: np.ndarray, n: int) -> np.ndarray:
    """Input index each out-of-range position `pos` takes its value from."""
    if mode == "edge":
        return np.clip(pos, 0, n - 1)
    if mode == "wrap":
        return pos % n
    if n == 1:
        return np.zeros_like(pos)
    period = 2 * (n - 1)
    p = np.abs(pos) % period
    return np.where(p >= n, period - p, p)


def _pad_into(x: np.ndarray, o: np.ndarray, widths, mode: str, value) -> None:
    """Crop negative pads, copy the interior, then fill borders axis by axis from o itself.

    Non-constant modes gather each border through fancy indexing: one border-sized temporary per
    padded axis and call.
    """
    crop = tuple(slice(max(-b, 0), n - max(-e, 0)) for (b, e), n in zip(widths, x.shape))
    x = x[crop]
    inner = tuple(slice(max(b, 0), max(b, 0) + n) for (b, _), n in zip(widths, x.shape))
    if mode == "constant":
        o.fill(value)
        np.copyto(o[inner], x)
        return
    np.copyto(o[inner], x)
    region = list(inner)
    for ax, ((b, e), n) in enumerate(zip(widths, x.shape)):
        b, e = max(b, 0), max(e, 0)
        if b or e:
            check(n > 0, "Pad cannot fill borders of an empty axis in this mode")
            pos = np.concatenate([np.arange(-b, 0), np.arange(n, n + e)])
            src = _border_source(mode, pos, n) + b
            dst = np.concatenate([np.arange(b), np.arange(b + n, b + n + e)])
            region[ax] = slice(None)
            lead = tuple(region[:ax])
            tail = tuple(region[ax + 1:])
            o[lead + (dst,) + tail] = o[lead + (src,) + tail]


@register("Pad")
def _pad(spec: OpSpec) -> Kernel:
    mode = str(spec.attr("mode", "constant"))
    check(mode in ("constant", "reflect", "edge", "wrap"), f"Pad mode {mode} is not supported")
    if "pads" in spec.attrs:
        widths = _pad_widths(spec, spec.attrs["pads"], None)
        value = float(spec.attr("value", 0.0))
        return lambda ins, outs, s: _pad_into(ins[0], outs[0], widths, mode, value)

    def value_of(v):
        return 0 if v is None or np.size(v) == 0 else np.asarray(v).ravel()[0]

    if all(not _has_input(spec, i) or i in spec.consts for i in (1, 2, 3)):
        widths = _pad_widths(spec, spec.consts[1], _param(spec, 3))
        value = value_of(_param(spec, 2))
        return lambda ins, outs, s: _pad_into(ins[0], outs[0], widths, mode, value)

    def k(ins, outs, s):
        pads, value, axes = (ins[i] if i < len(ins) else None for i in (1, 2, 3))
        _pad_into(ins[0], outs[0], _pad_widths(spec, pads, axes), mode, value_of(value))

    return k


@register("Shape")
def _shape(spec: OpSpec) -> Kernel:
    dims = np.array(spec.inputs[0].shape, dtype=np.int64)
    n = len(dims)
    start = int(spec.attr("start", 0))
    end = spec.attr("end")
    start = min(max(start + n if start < 0 else start, 0), n)
    end = n if end is None else min(max(int(end) + n if int(end) < 0 else int(end), 0), n)
    value = dims[start:end]
    return lambda ins, outs, s: np.copyto(outs[0], value)


@register("Size")
def _size(spec: OpSpec) -> Kernel:
    n = int(np.prod(spec.inputs[0].shape, dtype=np.int64))
    return lambda ins, outs, s: outs[0].fill(n)


@register("ConstantOfShape")
def _constant_of_shape(spec: OpSpec) -> Kernel:
    value = spec.attr("value")
    fill = 0 if value is None else np.asarray(value).ravel()[0]
    return lambda ins, outs, s: outs[0].fill(fill)


@register("Range")
def _range(spec: OpSpec) -> Kernel:
    """start + i * delta for the planned number of elements i."""
    out = spec.outputs[0]
    steps = np.arange(out.shape[0], dtype=out.dtype)

    def k(ins, outs, s):
        o = outs[0]
        np.multiply(steps, ins[2], out=o, casting="unsafe")
        np.add(o, ins[0], out=o, casting="unsafe")

    return k
