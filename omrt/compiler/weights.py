"""The weight blob, laid out by GE's rules so sizes and offsets match what ATC would report.

First weight at 512, every offset a multiple of 512, identical constants (dtype and bytes) stored
once, total = align512(last offset + last size + 32), zeros below 512. All gears of a dynamic
model add to one blob, so a constant they share sits at one offset.
"""
from __future__ import annotations

import hashlib

import numpy as np

from omrt.constants import ACL_ERROR_UNSUPPORTED_DATA_TYPE
from omrt.errors import OmrtError

WEIGHT_ALIGN = 512
WEIGHT_START = 512
WEIGHT_PAD = 32


def align512(n: int) -> int:
    return -(-n // WEIGHT_ALIGN) * WEIGHT_ALIGN


class WeightBlob:
    def __init__(self) -> None:
        self._chunks: list[tuple[int, bytes]] = []
        self._index: dict[tuple[str, int, bytes], int] = {}
        self._end = WEIGHT_START
        self._last: tuple[int, int] | None = None

    @staticmethod
    def to_bytes(value: np.ndarray) -> tuple[str, bytes]:
        if value.dtype.kind in "OUSV":
            raise OmrtError(ACL_ERROR_UNSUPPORTED_DATA_TYPE, f"constants of dtype {value.dtype} are not supported")
        little = value.dtype.newbyteorder("<")
        data = np.require(value, dtype=little, requirements="C").tobytes()
        return little.str, data

    def add(self, value: np.ndarray) -> int:
        """Offset of `value` in the blob, storing it unless identical bytes are already there."""
        dtype, data = self.to_bytes(value)
        key = (dtype, len(data), hashlib.blake2b(data, digest_size=20).digest())
        found = self._index.get(key)
        if found is not None:
            return found
        offset = align512(self._end) if self._chunks else WEIGHT_START
        self._chunks.append((offset, data))
        self._index[key] = offset
        self._end = offset + len(data)
        self._last = (offset, len(data))
        return offset

    @property
    def size(self) -> int:
        if self._last is None:
            return 0
        offset, size = self._last
        return align512(offset + size + WEIGHT_PAD)

    def tobytes(self) -> bytes:
        out = bytearray(self.size)
        for offset, data in self._chunks:
            out[offset:offset + len(data)] = data
        return bytes(out)
