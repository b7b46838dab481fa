"""The 256-byte ModelFileHeader that opens every .om file (new GE layout, little-endian)."""
from __future__ import annotations

import struct
from dataclasses import dataclass

from omrt.constants import ACL_ERROR_GE_EXEC_MODEL_DATA_SIZE_INVALID, ACL_ERROR_GE_PARAM_INVALID
from omrt.errors import OmrtError

MAGIC = 0x444F4D49          # b"IMOD" on disk
HEADER_SIZE = 256
MODEL_VERSION = 0x20000000
IR_VERSION = 1
NAME_LEN = 32               # 31 characters + NUL
PLATFORM_VERSION_LEN = 20   # 19 characters + NUL

# magic, headsize, version, checksum[64], length, is_encrypt, is_checksum, modeltype, genmode,
# name[32], ops, userdefineinfo[32], om_ir_version, model_num, platform_version[20],
# platform_type, padd[3], model_length, need_check_os_cpu_info, is_unknow_model, reserved[62]
_FORMAT = struct.Struct("<III64sIBBBB32sI32sII20sB3sQBB62s")
assert _FORMAT.size == HEADER_SIZE


@dataclass(frozen=True)
class ModelFileHeader:
    """The header fields omrt reads and writes; the rest are written as zeros."""

    magic: int = MAGIC
    headsize: int = HEADER_SIZE
    version: int = MODEL_VERSION
    length: int = 0
    is_encrypt: int = 0
    is_checksum: int = 0
    modeltype: int = 0
    genmode: int = 0
    name: bytes = b""
    om_ir_version: int = IR_VERSION
    model_num: int = 1
    platform_version: bytes = b""
    platform_type: int = 0
    model_length: int = 0
    is_unknow_model: int = 0

    @property
    def payload_length(self) -> int:
        """Bytes after the header as GE counts them: model_length, or length for old files."""
        return self.model_length if self.model_length != 0 else self.length


def _fixed(text: str, size: int) -> bytes:
    """UTF-8 text cut to size-1 bytes and NUL-padded, as GE copies names into char arrays."""
    raw = text.encode("utf-8")[: size - 1]
    return raw + b"\0" * (size - len(raw))


def pack_header(name: str, platform_version: str, model_length: int) -> bytes:
    """The header omrt writes: new layout, length 0, model_length = bytes after the header."""
    return _FORMAT.pack(
        MAGIC, HEADER_SIZE, MODEL_VERSION, b"", 0, 0, 0, 0, 0, _fixed(name, NAME_LEN), 0, b"",
        IR_VERSION, 1, _fixed(platform_version, PLATFORM_VERSION_LEN), 0, b"", model_length, 0, 0, b"",
    )


def parse_header(data: bytes | memoryview) -> ModelFileHeader:
    """Read and check the header against the file size (GE ParseModelContent rules)."""
    size = len(data)
    if size < HEADER_SIZE:
        raise OmrtError(ACL_ERROR_GE_EXEC_MODEL_DATA_SIZE_INVALID,
                        f"om file is {size} bytes, shorter than its {HEADER_SIZE}-byte header")
    f = _FORMAT.unpack_from(data, 0)
    hdr = ModelFileHeader(
        magic=f[0], headsize=f[1], version=f[2], length=f[4], is_encrypt=f[5], is_checksum=f[6],
        modeltype=f[7], genmode=f[8], name=f[9].split(b"\0", 1)[0], om_ir_version=f[12],
        model_num=f[13], platform_version=f[14].split(b"\0", 1)[0], platform_type=f[15],
        model_length=f[17], is_unknow_model=f[19],
    )
    if hdr.magic != MAGIC:
        raise OmrtError(ACL_ERROR_GE_EXEC_MODEL_DATA_SIZE_INVALID,
                        f"bad magic 0x{hdr.magic:08X}, expected 0x{MAGIC:08X} (IMOD)")
    if hdr.headsize != HEADER_SIZE:
        raise OmrtError(ACL_ERROR_GE_EXEC_MODEL_DATA_SIZE_INVALID,
                        f"header size {hdr.headsize}, expected {HEADER_SIZE}")
    if hdr.payload_length != size - HEADER_SIZE:
        raise OmrtError(ACL_ERROR_GE_EXEC_MODEL_DATA_SIZE_INVALID,
                        f"header claims {hdr.payload_length} model bytes, file has {size - HEADER_SIZE}")
    if hdr.is_encrypt != 0:
        raise OmrtError(ACL_ERROR_GE_PARAM_INVALID, "encrypted om files are not supported")
    if hdr.model_num > 1:
        raise OmrtError(ACL_ERROR_GE_PARAM_INVALID,
                        f"model_num {hdr.model_num}: multi-model om files are not supported")
    return hdr
