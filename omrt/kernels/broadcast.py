"""Shape and workspace helpers shared by the elementwise, reduce, shape and resize kernels."""
from __future__ import annotations

from typing import Sequence

import numpy as np

_ALIGN = 64

cache_miss = object()
"""Initial key of a kernel's carved-scratch cache: never the scratch a kernel is handed."""


def _aligned(nbytes: int) -> int:
    return (nbytes + _ALIGN - 1) // _ALIGN * _ALIGN


def layout_bytes(layout: Sequence[tuple[tuple[int, ...], np.dtype]]) -> int:
    """Bytes of scratch that `carve` needs for `layout` (each piece 64-byte aligned)."""
    return sum(_aligned(int(np.prod(shape, dtype=np.int64)) * np.dtype(dt).itemsize) for shape, dt in layout)


def carve(scratch: np.ndarray, layout: Sequence[tuple[tuple[int, ...], np.dtype]]) -> list[np.ndarray]:
    """Typed views into the op's planned uint8 workspace, one per (shape, dtype) in `layout`."""
    views = []
    off = 0
    for shape, dt in layout:
        dt = np.dtype(dt)
        n = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
        if n == 0:
            views.append(np.empty(shape, dt))
            continue
        views.append(scratch[off:off + n].view(dt).reshape(shape))
        off += _aligned(n)
    return views


def as_shape(arr: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
    """A view of `arr` with `shape`, or None when that needs a copy (writes would be lost)."""
    try:
        return np.reshape(arr, shape, copy=False)
    except ValueError:
        return None


def normalize_axes(axes, ndim: int) -> tuple[int, ...]:
    """ONNX axes (may be negative) as sorted non-negative ints."""
    return tuple(sorted(int(a) % ndim if ndim else 0 for a in np.asarray(axes, dtype=np.int64).ravel()))
