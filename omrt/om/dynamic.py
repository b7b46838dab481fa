"""Dynamic batch as GE lays it out: a root graph whose Case op picks one gear graph per batch."""
from __future__ import annotations

import numpy as np

from omrt.constants import ACL_DYNAMIC_TENSOR_NAME, ACL_ERROR_GE_EXEC_LOAD_MODEL_PARTITION_FAILED, ACL_ERROR_GE_PARAM_INVALID
from omrt.errors import OmrtError
from omrt.om.graph_reader import bool_attr
from omrt.om.model import GraphPlan, Location, OfflineModel, OpPlan, Region, TensorDesc, TensorRef
from omrt.om.proto import ge_ir_pb2 as ge

CASE_NAME = "ascend_mbatch_shape_case"
CASE_TYPE = "Case"
SHAPE_DATA_ATTR = "_is_multi_batch_shape_data"
DYNAMIC_BATCH = 1   # DynamicInputType.DYNAMIC_BATCH
SHAPE_DATA_DESC = TensorDesc(ACL_DYNAMIC_TENSOR_NAME, np.dtype(np.int32), (1,), "ND")


def gear_suffix(i: int) -> str:
    return f"_ascend_mbatch_batch_{i}"


def gear_graph_name(plan: GraphPlan, i: int) -> str:
    """The GraphDef name of gear i: the plan's name plus GE's gear suffix (always appended)."""
    return plan.name + gear_suffix(i)


def check_dynamic(model: OfflineModel) -> None:
    """What the writer needs of a dynamic-batch model before it can lay it out."""
    if len(model.graphs) != len(model.gears):
        raise OmrtError(ACL_ERROR_GE_PARAM_INVALID, f"{len(model.gears)} gears but {len(model.graphs)} plans")
    if not model.inputs or model.inputs[-1] != SHAPE_DATA_DESC:
        raise OmrtError(ACL_ERROR_GE_PARAM_INVALID,
                        f"a dynamic-batch model's last input must be {ACL_DYNAMIC_TENSOR_NAME} (int32 [1], ND)")
    for plan in model.graphs:
        if len(plan.inputs) != len(model.inputs) - 1 or len(plan.outputs) != len(model.outputs):
            raise OmrtError(ACL_ERROR_GE_PARAM_INVALID, f"plan {plan.name!r} has a different number of inputs/outputs")


def root_plan(model: OfflineModel) -> GraphPlan:
    """The root graph as a plan: Data ops for the model inputs, the Case op, NetOutput."""
    ins = [TensorRef(d, Location(Region.INPUT, 0, i)) for i, d in enumerate(model.inputs)]
    outs = [TensorRef(d, Location(Region.OUTPUT, 0, j)) for j, d in enumerate(model.outputs)]
    attrs = {"_batch_num": len(model.gears), "mbatch_dynamic_type": DYNAMIC_BATCH}
    attrs.update({f"_pred_value_{i}": [int(g)] for i, g in enumerate(model.gears)})
    case = OpPlan(CASE_NAME, CASE_TYPE, attrs, [ins[-1], *ins[:-1]], outs)
    return GraphPlan(model.name, ins, outs, [], [case], 0)


def finish_root(root: ge.GraphDef, gear_names: list[str]) -> None:
    """Mark the shape-data input and name the Case op's branch graphs."""
    for op in root.op:
        if op.type == "Data" and op.output_desc[0].name == ACL_DYNAMIC_TENSOR_NAME:
            op.attr[SHAPE_DATA_ATTR].b = True
        elif op.name == CASE_NAME:
            op.subgraph_name.extend(gear_names)


def _bad(msg: str) -> OmrtError:
    return OmrtError(ACL_ERROR_GE_EXEC_LOAD_MODEL_PARTITION_FAILED, msg)


def read_root(root_def: ge.GraphDef, root: GraphPlan, gear_defs: list[ge.GraphDef]) -> list[int]:
    """The gears a decoded root graph selects between, checked against the gear graphs."""
    if len(root.ops) != 1 or root.ops[0].op_type != CASE_TYPE or root.ops[0].name != CASE_NAME:
        raise _bad(f"dynamic-batch root graph must hold exactly one Case op named {CASE_NAME}")
    case = root.ops[0]
    if not root.inputs or root.inputs[-1].desc != SHAPE_DATA_DESC:
        raise _bad(f"dynamic-batch root graph's last input must be {ACL_DYNAMIC_TENSOR_NAME} (int32 [1], ND)")
    data = [op for op in root_def.op if op.type == "Data" and op.output_desc[0].name == ACL_DYNAMIC_TENSOR_NAME]
    if len(data) != 1 or not bool_attr(data[0].attr, SHAPE_DATA_ATTR):
        raise _bad(f"{ACL_DYNAMIC_TENSOR_NAME} must be one Data op marked {SHAPE_DATA_ATTR}")
    n = len(gear_defs)
    if case.attrs.get("_batch_num") != n or case.attrs.get("mbatch_dynamic_type") != DYNAMIC_BATCH:
        raise _bad(f"Case op: _batch_num must be {n} and mbatch_dynamic_type {DYNAMIC_BATCH}")
    case_def = next(op for op in root_def.op if op.name == CASE_NAME)
    if list(case_def.subgraph_name) != [g.name for g in gear_defs]:
        raise _bad("Case op subgraph_name does not list the gear graphs in order")
    gears = []
    for i in range(n):
        value = case.attrs.get(f"_pred_value_{i}")
        if not (isinstance(value, list) and len(value) == 1 and isinstance(value[0], int) and value[0] > 0):
            raise _bad(f"Case op: _pred_value_{i} must be a list holding one positive batch size")
        if not gear_defs[i].name.endswith(gear_suffix(i)):
            raise _bad(f"gear graph {gear_defs[i].name!r} lacks the suffix {gear_suffix(i)}")
        gears.append(value[0])
    if len(set(gears)) != n:
        raise _bad(f"duplicate gears {gears}")
    return gears
