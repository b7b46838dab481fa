"""Numpy views of raw process addresses: how planned memory becomes arrays kernels can write."""
from __future__ import annotations

import ctypes

import numpy as np


def view_at(addr: int, nbytes: int, writable: bool = True) -> np.ndarray:
    """A uint8 array over `[addr, addr + nbytes)` that does not own or copy the memory."""
    if nbytes <= 0:
        return np.empty(0, dtype=np.uint8)
    buf = (ctypes.c_uint8 * nbytes).from_address(addr)
    arr = np.frombuffer(buf, dtype=np.uint8)
    if not writable:
        arr.flags.writeable = False
    return arr


def address_of(arr: np.ndarray) -> int:
    return int(arr.__array_interface__["data"][0])


def aligned_empty(nbytes: int, alignment: int = 64) -> np.ndarray:
    """A zeroed uint8 buffer whose first byte is `alignment`-aligned (numpy only promises 16)."""
    raw = np.zeros(nbytes + alignment, dtype=np.uint8)
    start = (-address_of(raw)) % alignment
    return raw[start:start + nbytes]
