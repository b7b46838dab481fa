"""Separable window reductions (max and sum pooling): one axis at a time, long contiguous passes.

A k x k window reduced tap by tap reads k*k strided views whose innermost rows are only Wo
elements, and numpy's max/add loops fall back to scalar code on strided operands. Max and sum
separate over axes, so the window is reduced axis by axis instead: every axis but the last reads
whole input rows (row-strided views with contiguous rows), and the last axis is reduced over the
flattened block with plain shifted slices, `h[i] = op(src[i], src[i + d], ...)`, which are
contiguous SIMD passes; one strided copy then keeps every s-th column. Elements past a row's end
mix neighbouring rows but only land in columns the copy skips. Cost: (k - 1) passes per axis
instead of k**nd - 1, all vectorised.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

Ufunc = Callable[..., np.ndarray]


@dataclass(frozen=True)
class Separable:
    """Axis-by-axis plan over `rows` independent planes of spatial extent `ext` (already padded)."""

    ext: tuple[int, ...]
    out_sp: tuple[int, ...]
    kernel: tuple[int, ...]
    strides: tuple[int, ...]
    dilations: tuple[int, ...]

    def stage_shape(self, axis: int) -> tuple[int, ...]:
        """Spatial shape after the axes before `axis` have been reduced."""
        return self.out_sp[:axis] + self.ext[axis:]

    def stage_elems(self) -> int:
        """Elements per plane of the largest intermediate (ping-pong buffers hold this much)."""
        nd = len(self.ext)
        return max(int(np.prod(self.stage_shape(a))) for a in range(1, nd)) if nd > 1 else 0

    def flat_elems(self) -> int:
        """Elements per plane of the last axis's flat pass."""
        return int(np.prod(self.stage_shape(len(self.ext) - 1)))

    def run(self, src: np.ndarray, out: np.ndarray, bufs: tuple[np.ndarray, np.ndarray], op: Ufunc) -> None:
        """Reduce src (rows, *ext) into out (rows, *out_sp); bufs are flat scratch of the plan's sizes."""
        rows = src.shape[0]
        nd = len(self.ext)
        cur = src
        for ax in range(nd - 1):
            shape = (rows,) + self.stage_shape(ax + 1)
            dst = bufs[ax % 2][:int(np.prod(shape))].reshape(shape)
            k, s, d, o = self.kernel[ax], self.strides[ax], self.dilations[ax], self.out_sp[ax]
            lead = (slice(None),) * (ax + 1)
            views = [cur[lead + (slice(t * d, t * d + (o - 1) * s + 1, s),)] for t in range(k)]
            _fold(views, dst, op)
            cur = dst
        k, s, d, o = self.kernel[-1], self.strides[-1], self.dilations[-1], self.out_sp[-1]
        if k == 1:
            np.copyto(out, cur[..., 0:(o - 1) * s + 1:s])
            return
        flat = cur.reshape(-1)
        n = flat.size - (k - 1) * d
        h = bufs[(nd - 1) % 2][:flat.size]
        _fold([flat[t * d:t * d + n] for t in range(k)], h[:n], op)
        np.copyto(out, h.reshape(cur.shape)[..., 0:(o - 1) * s + 1:s])


def _fold(views: list[np.ndarray], dst: np.ndarray, op: Ufunc) -> None:
    if len(views) == 1:
        np.copyto(dst, views[0])
        return
    op(views[0], views[1], out=dst)
    for v in views[2:]:
        op(dst, v, out=dst)
