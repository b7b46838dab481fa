"""Sliding-window taps as long contiguous slices (depthwise conv).

numpy's elementwise loops pay a fixed cost per innermost row, so a tap read as a (C, Ho, Wo)
view of a padded image spends more time on rows of Wo elements than on arithmetic. Here the padded
input is stored per channel as `s0 * s1 * ...` stride phases (phase (a, b) holds padded rows
a, a+s0, ... and columns b, b+s1, ...), each phase flattened. Every tap of a strided, dilated
window is then one contiguous slice `phase[off:off + length]` of every channel: a whole-plane
stream per channel. Outputs land in an accumulator whose rows are phase rows (a few columns wider
than the output); `out_view` is the sliced view of the valid columns. Each phase carries a little
slack after its grid, filled like the border, so the last tap's slice stays inside it.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Sequence

import numpy as np


@dataclass(frozen=True)
class FlatTaps:
    """Phase layout of one padded input and where each tap reads in it."""

    in_sp: tuple[int, ...]
    out_sp: tuple[int, ...]
    strides: tuple[int, ...]
    pb: tuple[int, ...]
    phase_sp: tuple[int, ...]     # extent of one phase per axis
    taps: tuple[tuple[int, int], ...]   # (phase index, flat offset) per kernel tap, row-major
    length: int                   # accumulator elements per channel: whole phase rows
    phase_size: int               # elements per phase, including the slack the last taps read past

    @property
    def n_phases(self) -> int:
        return int(np.prod(self.strides))

    def out_view(self, acc: np.ndarray) -> np.ndarray:
        """(rows, *out_sp) view of the valid outputs in a contiguous (rows, length) accumulator."""
        full = acc.reshape((acc.shape[0], self.out_sp[0]) + self.phase_sp[1:])
        return full[(slice(None), slice(None)) + tuple(slice(0, o) for o in self.out_sp[1:])]

    @cached_property
    def phase_copies(self) -> list[tuple[int, tuple[slice, ...] | None, tuple[slice, ...]]]:
        """Per phase: (index, spatial slice of the phase grid the input fills or None when it
        fills none of it, the matching strided spatial slice of the input)."""
        out = []
        for ph, phase in enumerate(np.ndindex(*self.strides)):
            src_idx: list[slice] = []
            dst_idx: list[slice] = []
            empty = False
            for a, s, p, n, q in zip(phase, self.strides, self.pb, self.in_sp, self.phase_sp):
                i0 = max(0, -(-(p - a) // s))
                i1 = min(q, -(-(n + p - a) // s))
                if i1 <= i0:
                    empty = True
                    break
                start = s * i0 + a - p
                src_idx.append(slice(start, start + (i1 - i0 - 1) * s + 1, s))
                dst_idx.append(slice(i0, i1))
            out.append((ph, None if empty else tuple(dst_idx), tuple(src_idx)))
        return out

    def fill(self, x: np.ndarray, buf: np.ndarray, value: Any = 0) -> None:
        """Scatter x (rows, *in_sp) into its phases buf (rows, n_phases, phase_size), border = value:
        the channels-last fill with one channel per row."""
        self.fill_channels_last(x[:, None], buf[..., None], value)

    def fill_channels_last(self, x: np.ndarray, buf: np.ndarray, value: Any = 0) -> None:
        """Scatter x (images, C, *in_sp) into channels-last phases buf (images, n_phases,
        phase_size, C), border = value: every copy covers all the images at once."""
        images, c = x.shape[:2]
        grid = int(np.prod(self.phase_sp))
        if self.phase_size > grid:
            buf[:, :, grid:] = value
        order = (0,) + tuple(range(2, x.ndim)) + (1,)
        for ph, dst_idx, src_idx in self.phase_copies:
            dst = buf[:, ph, :grid].reshape((images,) + self.phase_sp + (c,))
            if dst_idx is None:
                dst[...] = value
                continue
            np.copyto(dst[(slice(None),) + dst_idx], x[(slice(None), slice(None)) + src_idx].transpose(order))
            _fill_border(dst, dst_idx, self.phase_sp, value)


def _fill_border(dst: np.ndarray, inner: tuple[slice, ...], extent: tuple[int, ...], value: Any) -> None:
    """Set everything of dst (images, *extent, C) outside `inner` (one slice per spatial axis) to value."""
    for d in range(len(extent)):
        idx: list[slice] = [slice(None)] * dst.ndim
        lo, hi = inner[d].start, inner[d].stop
        if lo > 0:
            idx[1 + d] = slice(0, lo)
            dst[tuple(idx)] = value
        if hi < extent[d]:
            idx[1 + d] = slice(hi, None)
            dst[tuple(idx)] = value


def flat_taps(in_sp: Sequence[int], out_sp: Sequence[int], kernel: Sequence[int], strides: Sequence[int],
              dilations: Sequence[int], pb: Sequence[int], pad_sp: Sequence[int]) -> FlatTaps:
    """Layout for a window op; pad_sp is the padded extent every window fits in."""
    phase_sp = tuple(-(-e // s) for e, s in zip(pad_sp, strides))
    row_strides = [int(np.prod(phase_sp[ax + 1:])) for ax in range(len(phase_sp))]
    taps = []
    for tap in np.ndindex(*kernel):
        pos = [k * d for k, d in zip(tap, dilations)]
        phase = int(np.ravel_multi_index([p % s for p, s in zip(pos, strides)], strides))
        off = sum((p // s) * r for p, s, r in zip(pos, strides, row_strides))
        taps.append((phase, off))
    length = out_sp[0] * row_strides[0]
    size = max(int(np.prod(phase_sp)), length + max(off for _, off in taps))
    return FlatTaps(tuple(in_sp), tuple(out_sp), tuple(strides), tuple(pb), phase_sp, tuple(taps), length, size)
