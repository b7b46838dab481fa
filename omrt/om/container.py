"""The checked pieces of a .om file: header, partitions, and the two protobufs GE needs."""
from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import DecodeError

from omrt.constants import (
    ACL_ERROR_GE_EXEC_LOAD_MODEL_PARTITION_FAILED,
    ACL_ERROR_GE_EXEC_LOAD_TASK_PARTITION_FAILED,
)
from omrt.errors import OmrtError
from omrt.om.header import ModelFileHeader, parse_header
from omrt.om.partition import Partition, PartitionType, parse_table
from omrt.om.proto import ge_ir_pb2 as ge
from omrt.om.proto import task_pb2 as task


@dataclass(frozen=True)
class Container:
    data: memoryview
    header: ModelFileHeader
    partitions: dict[int, Partition]

    def bytes_of(self, ptype: int) -> bytes | None:
        p = self.partitions.get(ptype)
        return None if p is None else bytes(self.data[p.offset:p.offset + p.size])


def open_container(data: bytes | memoryview) -> Container:
    """Header and partition table, both checked against the file size."""
    view = memoryview(data).cast("B")
    hdr = parse_header(view)
    return Container(view, hdr, parse_table(view, hdr))


def _parse(msg, raw: bytes, code: int, what: str):
    try:
        msg.ParseFromString(raw)
    except (DecodeError, RecursionError, ValueError, TypeError) as exc:
        raise OmrtError(code, f"{what} partition does not decode: {exc}") from None
    return msg


def model_def(c: Container) -> tuple[ge.ModelDef, int]:
    """The MODEL_DEF protobuf and its size in bytes."""
    raw = c.bytes_of(PartitionType.MODEL_DEF)
    if raw is None:
        raise OmrtError(ACL_ERROR_GE_EXEC_LOAD_MODEL_PARTITION_FAILED, "om file has no MODEL_DEF partition")
    return _parse(ge.ModelDef(), raw, ACL_ERROR_GE_EXEC_LOAD_MODEL_PARTITION_FAILED, "MODEL_DEF"), len(raw)


def task_def(c: Container) -> task.ModelTaskDef:
    raw = c.bytes_of(PartitionType.TASK_INFO)
    if raw is None:
        raise OmrtError(ACL_ERROR_GE_EXEC_LOAD_TASK_PARTITION_FAILED, "om file has no TASK_INFO partition")
    return _parse(task.ModelTaskDef(), raw, ACL_ERROR_GE_EXEC_LOAD_TASK_PARTITION_FAILED, "TASK_INFO")
