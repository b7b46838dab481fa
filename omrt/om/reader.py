""".om bytes -> OfflineModel; the exact inverse of write_om, and a gate for hostile files."""
from __future__ import annotations

import os

from omrt.constants import (
    ACL_ERROR_GE_EXEC_LOAD_MODEL_PARTITION_FAILED,
    ACL_ERROR_GE_EXEC_LOAD_TASK_PARTITION_FAILED,
    ACL_ERROR_GE_EXEC_LOAD_WEIGHT_PARTITION_FAILED,
    ACL_ERROR_GE_PARAM_INVALID,
    ACL_ERROR_INVALID_FILE,
)
from omrt.errors import OmrtError
from omrt.om import dynamic
from omrt.om.attrs import attrs_from_map
from omrt.om.container import model_def, open_container, task_def
from omrt.om.graph_reader import decode_graph, int_attr
from omrt.om.layout import DERIVED_ATTRS, EMPTY_WEIGHTS
from omrt.om.model import OfflineModel
from omrt.om.partition import PartitionType


def _weights(md, raw: bytes | None) -> bytes:
    raw = raw or b""
    if int_attr(md.attr, "weight_size", "model") != len(raw):
        raise OmrtError(ACL_ERROR_GE_EXEC_LOAD_WEIGHT_PARTITION_FAILED,
                        f"weight_size attr {md.attr['weight_size'].i} != WEIGHTS_DATA length {len(raw)}")
    info = md.attr["om_info_list"] if "om_info_list" in md.attr else None
    if info is None or len(info.list.i) < 4:
        raise OmrtError(ACL_ERROR_GE_EXEC_LOAD_MODEL_PARTITION_FAILED, "model attr om_info_list is missing")
    declared = info.list.i[0]
    if declared == 0 and raw == EMPTY_WEIGHTS:
        return b""
    if declared != len(raw):
        raise OmrtError(ACL_ERROR_GE_EXEC_LOAD_WEIGHT_PARTITION_FAILED,
                        f"om_info_list weight_data_size {declared} != WEIGHTS_DATA length {len(raw)}")
    return raw


def read_om(data: bytes | memoryview) -> OfflineModel:
    """Parse and check a whole .om; anything wrong is an OmrtError with a GE/ACL code."""
    c = open_container(data)
    md, _ = model_def(c)
    td = task_def(c)
    raw_weights = c.bytes_of(PartitionType.WEIGHTS_DATA)
    weights = _weights(md, raw_weights)
    weight_limit = len(weights)
    memory_size = int_attr(md.attr, "memory_size", "model")
    if td.memory_size != memory_size:
        raise OmrtError(ACL_ERROR_GE_EXEC_LOAD_TASK_PARTITION_FAILED,
                        f"TASK_INFO memory_size {td.memory_size} != model attr memory_size {memory_size}")
    if not md.graph:
        raise OmrtError(ACL_ERROR_GE_EXEC_LOAD_MODEL_PARTITION_FAILED, "MODEL_DEF holds no graph")

    gears: list[int] = []
    if len(md.graph) == 1:
        plans = [decode_graph(md.graph[0], weight_limit)]
        inputs, outputs = plans[0].input_descs, plans[0].output_descs
    else:
        root = decode_graph(md.graph[0], weight_limit)
        gear_defs = list(md.graph[1:])
        gears = dynamic.read_root(md.graph[0], root, gear_defs)
        plans = []
        for i, g in enumerate(gear_defs):
            plan = decode_graph(g, weight_limit)
            plan.name = g.name[: len(g.name) - len(dynamic.gear_suffix(i))]
            if len(plan.inputs) != len(root.inputs) - 1 or len(plan.outputs) != len(root.outputs):
                raise OmrtError(ACL_ERROR_GE_EXEC_LOAD_MODEL_PARTITION_FAILED,
                                f"gear graph {g.name!r} has a different number of inputs/outputs")
            plans.append(plan)
        inputs = [r.desc for r in root.inputs]
        outputs = [r.desc for r in root.outputs]
    if memory_size != max(p.memory_size for p in plans):
        raise OmrtError(ACL_ERROR_GE_EXEC_LOAD_MODEL_PARTITION_FAILED,
                        f"model memory_size {memory_size} is not the largest plan's")
    attrs = {k: v for k, v in attrs_from_map(md.attr).items() if k not in DERIVED_ATTRS}
    return OfflineModel(md.name, inputs, outputs, plans, weights, gears, attrs, md.custom_version)


def load_om(path: str | os.PathLike) -> OfflineModel:
    """read_om on a file's bytes; an unreadable path is ACL_ERROR_INVALID_FILE."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise OmrtError(ACL_ERROR_INVALID_FILE, f"cannot read om file {os.fspath(path)!r}: {exc}") from None
    return read_om(data)


def query_sizes(data: bytes | memoryview) -> tuple[int, int]:
    """(work_size, weight_size) as aclmdlQuerySize reports them, reading only header, table, TASK_INFO."""
    c = open_container(data)
    if len(c.partitions) == 1:
        raise OmrtError(ACL_ERROR_GE_PARAM_INVALID, "a static model must have more than one partition")
    td = task_def(c)
    weights = c.partitions.get(PartitionType.WEIGHTS_DATA)
    return int(td.memory_size), 0 if weights is None else weights.size
