"""The partition table after the header: where MODEL_DEF, WEIGHTS_DATA, TASK_INFO, ... lie."""
from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from omrt.constants import ACL_ERROR_GE_EXEC_MODEL_DATA_SIZE_INVALID, ACL_ERROR_GE_PARAM_INVALID
from omrt.errors import OmrtError
from omrt.om.header import HEADER_SIZE, ModelFileHeader


class PartitionType(enum.IntEnum):
    MODEL_DEF = 0
    WEIGHTS_DATA = 1
    TASK_INFO = 2
    TBE_KERNELS = 3
    CUST_AICPU_KERNELS = 4
    SO_BINS = 5


# GE IsPartitionTableNumValid: 5, 4, 3 or 1 plus up to 2 extra partitions.
VALID_COUNTS = frozenset(range(1, 8))

_WIDE_HEAD = struct.Struct("<I4x")
_WIDE_ENTRY = struct.Struct("<iIQQ")      # type, pad, mem_offset, mem_size
_TINY_HEAD = struct.Struct("<I")
_TINY_ENTRY = struct.Struct("<iII")       # type, mem_offset, mem_size


@dataclass(frozen=True)
class Partition:
    type: int
    offset: int          # from the start of the file
    size: int


def table_size(num: int) -> int:
    """Bytes of a wide table with num entries."""
    return _WIDE_HEAD.size + num * _WIDE_ENTRY.size


def pack_table(entries: list[tuple[int, int]]) -> bytes:
    """Wide table for (type, size) entries laid back to back, offsets cumulative from 0."""
    out = [_WIDE_HEAD.pack(len(entries))]
    offset = 0
    for ptype, size in entries:
        out.append(_WIDE_ENTRY.pack(ptype, 0, offset, size))
        offset += size
    return b"".join(out)


def parse_table(data: bytes | memoryview, hdr: ModelFileHeader) -> dict[int, Partition]:
    """Partitions by type, checked to sit back to back from the table's end to the end of file.

    The header decides the width, as in GE: model_length != 0 means the wide table, otherwise the
    old 12-byte ("tiny") entries.
    """
    wide = hdr.model_length != 0
    head, entry = (_WIDE_HEAD, _WIDE_ENTRY) if wide else (_TINY_HEAD, _TINY_ENTRY)
    end = len(data)
    if end - HEADER_SIZE < head.size:
        raise OmrtError(ACL_ERROR_GE_EXEC_MODEL_DATA_SIZE_INVALID, "file ends inside the partition table")
    (num,) = head.unpack_from(data, HEADER_SIZE)
    if num not in VALID_COUNTS:
        raise OmrtError(ACL_ERROR_GE_PARAM_INVALID, f"invalid partition count {num}")
    base = HEADER_SIZE + head.size + num * entry.size
    if base > end:
        raise OmrtError(ACL_ERROR_GE_EXEC_MODEL_DATA_SIZE_INVALID,
                        f"partition table of {num} entries runs past the end of the file")
    parts: dict[int, Partition] = {}
    expected = 0
    for k in range(num):
        fields = entry.unpack_from(data, HEADER_SIZE + head.size + k * entry.size)
        ptype, offset, size = fields[0], fields[-2], fields[-1]
        if ptype < 0:
            raise OmrtError(ACL_ERROR_GE_PARAM_INVALID, f"invalid partition type {ptype}")
        if ptype in parts:
            raise OmrtError(ACL_ERROR_GE_PARAM_INVALID, f"duplicate partition type {ptype}")
        if offset != expected:
            raise OmrtError(ACL_ERROR_GE_EXEC_MODEL_DATA_SIZE_INVALID,
                            f"partition {k} (type {ptype}) at offset {offset}, expected {expected}: "
                            "partitions must sit back to back")
        if base + offset + size > end:
            raise OmrtError(ACL_ERROR_GE_EXEC_MODEL_DATA_SIZE_INVALID,
                            f"partition {k} (type {ptype}, {size} bytes at {offset}) runs past the end of the file")
        parts[ptype] = Partition(ptype, base + offset, size)
        expected = offset + size
    if base + expected != end:
        raise OmrtError(ACL_ERROR_GE_EXEC_MODEL_DATA_SIZE_INVALID,
                        f"partitions cover {expected} bytes but {end - base} follow the table")
    return parts
