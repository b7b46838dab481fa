"""OfflineModel -> .om bytes: header, wide partition table, MODEL_DEF, WEIGHTS_DATA, TASK_INFO."""
from __future__ import annotations

import os
import tempfile

from omrt.constants import ACL_ERROR_GE_PARAM_INVALID, ACL_ERROR_WRITE_FILE
from omrt.errors import OmrtError
from omrt.om import dynamic
from omrt.om.attrs import attrs_to_map
from omrt.om.graph_writer import encode_graph, lanes_problem
from omrt.om.header import IR_VERSION, pack_header
from omrt.om.layout import DERIVED_ATTRS, EMPTY_WEIGHTS, EVENT_NUM, STREAM_NUM, STRING_ATTR_DEFAULTS
from omrt.om.model import OfflineModel
from omrt.om.partition import PartitionType, pack_table
from omrt.om.proto import ge_ir_pb2 as ge
from omrt.om.proto import task_pb2 as task


def _check(model: OfflineModel) -> None:
    if not model.graphs:
        raise OmrtError(ACL_ERROR_GE_PARAM_INVALID, "a model needs at least one plan")
    clash = DERIVED_ATTRS & set(model.attrs)
    if clash:
        raise OmrtError(ACL_ERROR_GE_PARAM_INVALID, f"model attrs {sorted(clash)} are derived by the writer")
    if any(p.memory_size < 0 for p in model.graphs):
        raise OmrtError(ACL_ERROR_GE_PARAM_INVALID, "memory_size must not be negative")
    for p in model.graphs:
        problem = lanes_problem(p.lanes, p.memory_size, [r.desc for r in p.inputs + p.outputs])
        if problem is not None:
            raise OmrtError(ACL_ERROR_GE_PARAM_INVALID, f"plan {p.name!r}: {problem}")
    if model.gears:
        dynamic.check_dynamic(model)
        return
    plan = model.graphs[0]
    if len(model.graphs) != 1:
        raise OmrtError(ACL_ERROR_GE_PARAM_INVALID, "a static model has exactly one plan")
    if model.inputs != plan.input_descs or model.outputs != plan.output_descs:
        raise OmrtError(ACL_ERROR_GE_PARAM_INVALID, "a static model's inputs/outputs must be its plan's")


def _graphs(model: OfflineModel) -> tuple[list[ge.GraphDef], int]:
    """All GraphDefs in file order and the zero-copy region size (largest over the graphs)."""
    weight_size = len(model.weights)
    if not model.gears:
        g, addr = encode_graph(model.graphs[0], weight_size)
        return [g], addr.zero_copy_size
    gear_defs, zc = [], 0
    for i, plan in enumerate(model.graphs):
        g, addr = encode_graph(plan, weight_size)
        g.name = dynamic.gear_graph_name(plan, i)
        gear_defs.append(g)
        zc = max(zc, addr.zero_copy_size)
    root, addr = encode_graph(dynamic.root_plan(model), weight_size)
    dynamic.finish_root(root, [g.name for g in gear_defs])
    return [root, *gear_defs], max(zc, addr.zero_copy_size)


def write_om(model: OfflineModel) -> bytes:
    """Serialise model; an inconsistent model is an OmrtError, never a half-written file."""
    _check(model)
    try:
        return _write(model)
    except (ValueError, TypeError, OverflowError) as exc:  # protobuf's range and type errors
        raise OmrtError(ACL_ERROR_GE_PARAM_INVALID, f"model cannot be serialised: {exc}") from None


def _write(model: OfflineModel) -> bytes:
    graphs, zero_copy = _graphs(model)
    weights = bytes(model.weights) if model.weights else EMPTY_WEIGHTS
    memory_size = model.memory_size

    task_def = task.ModelTaskDef(memory_size=memory_size, weight_size=len(weights),
                                 stream_num=STREAM_NUM, event_num=EVENT_NUM)
    task_bytes = task_def.SerializeToString()

    md = ge.ModelDef(name=model.name, version=IR_VERSION, custom_version=model.platform_version)
    md.graph.extend(graphs)
    attrs = {**STRING_ATTR_DEFAULTS, **model.attrs}
    attrs_to_map(attrs, md.attr)
    for key, value in (("memory_size", memory_size), ("zero_copy_memory_size", zero_copy),
                       ("weight_size", len(weights)), ("stream_num", STREAM_NUM), ("event_num", EVENT_NUM)):
        md.attr[key].i = value
    md.attr["om_info_list"].list.i.extend([len(model.weights), 0, 0, len(task_bytes), 0])
    md.attr["om_info_list"].list.val_type = ge.AttrDef.ListValue.VT_LIST_INT
    model_def = md.SerializeToString()

    parts = [(PartitionType.MODEL_DEF, model_def), (PartitionType.WEIGHTS_DATA, weights),
             (PartitionType.TASK_INFO, task_bytes)]
    table = pack_table([(int(t), len(b)) for t, b in parts])
    body_len = len(table) + sum(len(b) for _, b in parts)
    return b"".join([pack_header(model.name, model.platform_version, body_len), table, *(b for _, b in parts)])


def save_om(model: OfflineModel, path: str | os.PathLike) -> None:
    """Write atomically: a temp file in the same folder, fsync, rename; on failure nothing is left."""
    data = write_om(model)
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=".omrt-", suffix=".om.tmp", dir=folder)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise OmrtError(ACL_ERROR_WRITE_FILE, f"cannot write {path}: {exc}") from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
