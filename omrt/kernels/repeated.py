"""Repeated filters: find output features whose weights are bit-for-bit equal.

A Conv or Gemm whose filters repeat computes each distinct filter once and copies the result to
every channel that uses it. Besides the saved work, identical filters then give bit-identical
channels whatever a BLAS does at tile edges, which models with placeholder weights (the onnx
package's light models fill every filter with one value) depend on: a softmax over huge equal
logits is uniform only if every logit rounds the same way.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from omrt.kernels.base import Kernel, OpSpec, TensorSpec, build_kernel, workspace_bytes
from omrt.kernels.conv_common import compute_itemsize, finish, split_inputs
from omrt.kernels.epilogue import Epilogue

# Elements sampled from each row for the grouping key; rows that share a key are compared whole.
_KEY_SAMPLES = 16


@dataclass(frozen=True)
class Repeats:
    """`first[j]` is the row of the j-th distinct filter; output feature i uses distinct filter `index[i]`."""

    first: np.ndarray
    index: np.ndarray

    @property
    def count(self) -> int:
        return len(self.first)


def _row_keys(rows: np.ndarray) -> np.ndarray:
    """One bytes key per row: evenly spaced elements plus the row's float64 sum."""
    k = rows.shape[1]
    picks = np.unique(np.linspace(0, k - 1, min(k, _KEY_SAMPLES)).astype(np.intp))
    sums = rows.sum(axis=1, dtype=np.float64).reshape(-1, 1)
    key = np.concatenate([np.ascontiguousarray(rows[:, picks]).view(np.uint8).reshape(len(rows), -1),
                          sums.view(np.uint8).reshape(len(rows), -1)], axis=1)
    return np.ascontiguousarray(key).view(np.dtype((np.void, key.shape[1]))).ravel()


def find_repeats(rows: np.ndarray) -> Repeats | None:
    """Distinct rows of a 2-D weight matrix (one row per output feature), or None if all differ."""
    m = rows.shape[0]
    if m < 2 or rows.size == 0:
        return None
    rows = np.ascontiguousarray(rows.reshape(m, -1))
    raw = rows.view(np.uint8).reshape(m, -1)
    keys, key_of = np.unique(_row_keys(rows), return_inverse=True)
    if len(keys) == m:
        return None
    key_of = key_of.ravel()
    first: list[int] = []
    index = np.empty(m, np.intp)
    by_key: dict[int, list[int]] = {}
    for i in range(m):
        group = by_key.setdefault(int(key_of[i]), [])
        for j in group:
            if np.array_equal(raw[first[j]], raw[i]):
                index[i] = j
                break
        else:
            group.append(len(first))
            index[i] = len(first)
            first.append(i)
    if len(first) == m:
        return None
    return Repeats(np.asarray(first, np.intp), index)


_EPILOGUE_ATTRS = ("_activation", "_activation_params", "_residual")
_ALIGN = 64


def _conv_weight(spec: OpSpec) -> np.ndarray | None:
    w = spec.consts.get(1)
    if w is None or spec.attr("_winograd") or spec.attr("_packed") or int(spec.attr("group", 1)) != 1 or w.ndim < 3:
        return None
    return w


def conv_repeats(spec: OpSpec) -> tuple[OpSpec, Repeats] | None:
    """A group-1 Conv with constant, repeating filters: (Conv over the distinct filters, repeats)."""
    w = _conv_weight(spec)
    reps = find_repeats(w.reshape(w.shape[0], -1)) if w is not None else None
    if reps is None:
        return None
    distinct = np.ascontiguousarray(w[reps.first])
    out = spec.outputs[0]
    attrs = {k: v for k, v in spec.attrs.items() if k not in _EPILOGUE_ATTRS}
    inner = OpSpec(spec.op_type, attrs, [spec.inputs[0], TensorSpec(distinct.shape, distinct.dtype)],
                   [TensorSpec((out.shape[0], reps.count) + tuple(out.shape[2:]), out.dtype)],
                   {1: distinct}, spec.name)
    return inner, reps


def _inner_bytes(inner: OpSpec) -> int:
    out = inner.outputs[0]
    size = int(np.prod(out.shape)) * compute_itemsize(out.dtype)
    return -(-size // _ALIGN) * _ALIGN


def repeated_conv_workspace(inner: OpSpec) -> int:
    """The distinct channels, then the inner Conv's own scratch."""
    return _inner_bytes(inner) + workspace_bytes(inner)


def repeated_conv_build(spec: OpSpec, inner: OpSpec, reps: Repeats) -> Kernel:
    """Convolve the distinct filters into scratch, copy each to its channels, then bias and epilogue."""
    epi = Epilogue(spec.attrs)
    kernel = build_kernel(inner)
    head = _inner_bytes(inner)
    inner_shape = inner.outputs[0].shape
    n, m = spec.outputs[0].shape[:2]
    b_const = spec.consts.get(2)
    w_distinct = inner.consts[1]

    def run(inputs, outputs, scratch):
        x, y = inputs[0], outputs[0]
        bias, res = split_inputs(inputs, epi.residual)
        if b_const is not None:
            bias = b_const
        part = scratch[:head].view(y.dtype)[:int(np.prod(inner_shape))].reshape(inner_shape)
        kernel([x, w_distinct], [part], scratch[head:])
        y3 = y.reshape(n, m, -1)
        np.take(part.reshape(n, reps.count, -1), reps.index, axis=1, out=y3)
        finish(epi, y3, None if bias is None else bias.reshape(m, 1),
               None if res is None else res.reshape(y3.shape))
    return run
