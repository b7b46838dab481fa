"""3x3 pooling windows (stride 1 or 2 per axis) reduced straight from the unpadded planes.

The general pooling path (omrt.kernels.separable) copies every plane into a padded buffer and
ends with a strided copy into the output; for the 3x3 windows CNNs use (Inception's stride-1
'same' pools, the stride-2 pools after a stem) both copies cost as much as the reduction.

Per axis, one flat pass over the whole block makes pairs p[i] = op(v[i], v[i + pitch]); a window
of three inputs starting at r is then op(p[r], v[r + 2]), a window the padding cuts to two inputs
is a pair, and one cut to a single input is that input. Consecutive outputs of one kind are one
strided numpy call, so a plane costs two passes per axis plus a few edge copies. Padding never
enters: max ignores it and sum counts only real inputs (the average's divisor comes from the
caller's count map). Pair positions that straddle two rows or planes are never read.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

Ufunc = Callable[..., np.ndarray]


@dataclass(frozen=True)
class Run:
    """Outputs o0..o1-1 along one axis, all of one kind, reading from input index `start` on by the stride."""

    o0: int
    o1: int
    kind: str      # "full" (three inputs), "pair" (two) or "one"
    start: int


def axis_runs(n: int, out: int, stride: int, pad: int) -> list[Run] | None:
    """The runs of one axis of extent n, or None if some window holds no input at all."""
    runs: list[Run] = []
    for o in range(out):
        r = o * stride - pad
        taps = [t for t in range(3) if 0 <= r + t < n]
        if not taps:
            return None
        kind = "full" if len(taps) == 3 else "pair" if len(taps) == 2 else "one"
        start = r + taps[0]
        last = runs[-1] if runs else None
        if last is not None and last.kind == kind and last.start + (o - last.o0) * stride == start:
            runs[-1] = Run(last.o0, o + 1, kind, last.start)
        else:
            runs.append(Run(o, o + 1, kind, start))
    return runs


@dataclass(frozen=True)
class Window3:
    """Plan for (rows, H, W) -> (rows, Ho, Wo): the runs of each axis."""

    in_sp: tuple[int, int]
    out_sp: tuple[int, int]
    strides: tuple[int, int]
    runs: tuple[list[Run], list[Run]]

    @classmethod
    def plan(cls, in_sp, out_sp, kernel, strides, dilations, pb) -> "Window3 | None":
        """The plan for a 2-D 3x3 window with strides 1 or 2, or None where it does not apply."""
        if not (len(in_sp) == 2 and tuple(kernel) == (3, 3) and tuple(dilations) == (1, 1)
                and all(s in (1, 2) for s in strides) and min(in_sp) >= 2):
            return None
        runs = tuple(axis_runs(n, o, s, p) for n, o, s, p in zip(in_sp, out_sp, strides, pb))
        if any(r is None for r in runs):
            return None
        return cls(tuple(in_sp), tuple(out_sp), tuple(strides), runs)  # type: ignore[arg-type]

    def buffer_elems(self) -> int:
        """Elements per plane each of the two scratch buffers needs (pairs, row-reduced planes)."""
        return max(self.in_sp[0], self.out_sp[0]) * self.in_sp[1]

    def run(self, x: np.ndarray, out: np.ndarray, bufs: tuple[np.ndarray, np.ndarray], op: Ufunc) -> None:
        """x: contiguous (rows, H, W); bufs: flat scratch of rows * buffer_elems() elements each."""
        rows, h, w = x.shape
        ho = self.out_sp[0]
        mid = bufs[1][:rows * ho * w].reshape(rows, ho, w)
        _axis(x, mid, w, self.runs[0], self.strides[0], bufs[0][:rows * h * w], op)
        _axis(mid.reshape(rows * ho, w, 1), out.reshape(rows * ho, -1, 1), 1, self.runs[1],
              self.strides[1], bufs[0][:rows * ho * w], op)


def _axis(src: np.ndarray, dst: np.ndarray, pitch: int, runs: list[Run], stride: int,
          pairs: np.ndarray, op: Ufunc) -> None:
    """Reduce axis 1 of contiguous src (lead, n, trail) into dst (lead, out, trail)."""
    flat = src.reshape(-1)
    size = flat.size
    op(flat[:size - pitch], flat[pitch:], out=pairs[:size - pitch])
    p3 = pairs.reshape(src.shape)
    n, out = src.shape[1], dst.shape[1]
    if stride == 1 and out == n and any(r.kind == "full" and (r.o0, r.o1, r.start) == (1, n - 1, 0) for r in runs):
        # 'same' window: the interior of every plane in one flat pass (rows that mix two planes
        # are the first and last, which the edge runs below overwrite).
        op(pairs[:size - 2 * pitch], flat[2 * pitch:], out=dst.reshape(-1)[pitch:size - pitch])
        runs = [r for r in runs if r.kind != "full"]
    for r in runs:
        cnt = r.o1 - r.o0
        span = slice(r.start, r.start + (cnt - 1) * stride + 1, stride)
        target = dst[:, r.o0:r.o1]
        if r.kind == "full":
            op(p3[:, span], src[:, r.start + 2:r.start + 2 + (cnt - 1) * stride + 1:stride], out=target)
        elif r.kind == "pair":
            np.copyto(target, p3[:, span])
        else:
            np.copyto(target, src[:, span])
