"""IR + placement -> GraphPlan: every tensor a TensorRef with its region and offset."""
from __future__ import annotations

import numpy as np

from omrt.compiler.ir import Graph
from omrt.compiler.lifetimes import Placement
from omrt.compiler.spec import present_outputs
from omrt.compiler.weights import WeightBlob
from omrt.om.model import GraphPlan, Location, OpPlan, Region, TensorDesc, TensorRef


def layout_for(shape: tuple[int, ...], is_input: bool, input_format: str) -> str:
    if len(shape) == 4:
        return input_format if is_input else "NCHW"
    return "ND"


def emit(graph: Graph, placement: Placement, blob: WeightBlob, output_names: list[str],
         input_format: str, batch: int | None) -> GraphPlan:
    refs: dict[str, TensorRef] = {}
    input_index = {name: k for k, name in enumerate(graph.inputs)}
    output_index = {name: k for k, name in enumerate(graph.outputs)}
    display = dict(zip(graph.outputs, output_names))

    def desc(name: str) -> TensorDesc:
        info = graph.tensors[name]
        shape = tuple(int(d) for d in info.shape)  # type: ignore[union-attr]
        return TensorDesc(display.get(name, name), np.dtype(info.dtype), shape,
                          layout_for(shape, name in input_index, input_format))

    def ref(name: str) -> TensorRef:
        found = refs.get(name)
        if found is not None:
            return found
        if name in graph.constants:
            loc = Location(Region.WEIGHT, blob.add(graph.constants[name]))
        elif name in output_index:
            loc = Location(Region.OUTPUT, 0, output_index[name])
        elif name in placement.share.input_of:
            loc = Location(Region.INPUT, 0, placement.share.input_of[name])
        else:
            loc = Location(Region.WORK, placement.offsets[name])
        refs[name] = TensorRef(desc(name), loc)
        return refs[name]

    inputs = [ref(name) for name in graph.inputs]
    ops: list[OpPlan] = []
    constants: dict[str, TensorRef] = {}
    for k, node in enumerate(graph.nodes):
        op_inputs = [ref(i) if i else None for i in node.inputs]
        for i in node.inputs:
            if i in graph.constants:
                constants[i] = refs[i]
        outs = [ref(o) for o in present_outputs(node) if o]
        workspace = [placement.workspace[k]] if k in placement.workspace else []
        ops.append(OpPlan(node.name, node.op_type, dict(node.attrs), op_inputs, outs, workspace,
                          alias=k in placement.share.views))
    outputs = [ref(name) for name in graph.outputs]
    return GraphPlan(graph.name if batch is None else f"{graph.name}_batch_{batch}", inputs, outputs,
                     list(constants.values()), ops, placement.size, batch)
