"""Shapes and dtypes of every tensor, from ONNX's own shape inference run on the current IR.

The IR is exported back to a ModelProto for it: after constant folding, Reshape/Expand/
ConstantOfShape see constant shape inputs and their outputs become static. Small constants go in
as initializers (data propagation needs their values); large ones only as typed inputs.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from omrt.compiler.ir import Graph, TensorInfo
from omrt.compiler.onnx_import import type_info
from omrt.constants import ACL_ERROR_GE_SHAPE_INVALID
from omrt.errors import OmrtError

SMALL_CONSTANT = 4096   # elements: enough for any shape or index tensor


def _value_info(name: str, info: TensorInfo) -> onnx.ValueInfoProto:
    elem = helper.np_dtype_to_tensor_dtype(info.dtype) if info.dtype is not None else 0
    return helper.make_tensor_value_info(name, elem, None if info.shape is None else list(info.shape))


def _attr(value: object) -> object:
    if isinstance(value, np.ndarray):
        return numpy_helper.from_array(value)
    if isinstance(value, list) and value and isinstance(value[0], np.ndarray):
        return [numpy_helper.from_array(v) for v in value]
    return value


def export(graph: Graph, opset_imports: list[onnx.OperatorSetIdProto]) -> onnx.ModelProto:
    """The IR as a ModelProto fit for shape inference (omrt's private attrs left out)."""
    initializers, const_inputs = [], []
    for name, value in graph.constants.items():
        if value.size <= SMALL_CONSTANT:
            initializers.append(numpy_helper.from_array(value, name))
        else:
            const_inputs.append(_value_info(name, graph.tensors[name]))
    nodes = []
    for n in graph.nodes:
        attrs = {k: _attr(v) for k, v in n.attrs.items()
                 if not k.startswith("_") and not (isinstance(v, list) and not v)}
        nodes.append(helper.make_node(n.op_type, n.inputs, n.outputs, name=n.name, **attrs))
    inputs = [_value_info(i, graph.tensors[i]) for i in graph.inputs] + const_inputs
    outputs = [_value_info(o, graph.tensors[o]) if o in graph.tensors else onnx.ValueInfoProto(name=o)
               for o in dict.fromkeys(graph.outputs)]
    g = helper.make_graph(nodes, graph.name, inputs, outputs, initializers)
    return helper.make_model(g, opset_imports=list(opset_imports), ir_version=max(8, onnx.IR_VERSION - 2))


def infer(graph: Graph, opset_imports: list[onnx.OperatorSetIdProto]) -> None:
    """Fill `graph.tensors` for every node output from ONNX shape inference."""
    model = export(graph, opset_imports)
    try:
        inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)
    except Exception as e:  # InferenceError, ValidationError: both mean the model is inconsistent
        lines = str(e).strip().splitlines()
        shown = "\n".join(lines[:5]) + (f"\n... ({len(lines) - 5} more)" if len(lines) > 5 else "")
        raise OmrtError(ACL_ERROR_GE_SHAPE_INVALID, f"shape inference failed: {shown}") from None
    for vi in list(inferred.graph.value_info) + list(inferred.graph.output):
        info = type_info(vi.type)
        old = graph.tensors.get(vi.name)
        if old is not None and old.static:
            continue
        if old is not None and info.dtype is None:
            info = TensorInfo(info.shape, old.dtype)
        graph.tensors[vi.name] = _with_declared(info, graph.declared.get(vi.name))


def _with_declared(inferred: TensorInfo, declared: TensorInfo | None) -> TensorInfo:
    """A graph output's declared static shape fills what inference could not know (a shape that
    depends on the values of runtime inputs), as long as the two do not contradict each other."""
    if inferred.static or declared is None:
        return inferred
    if inferred.dtype is not None and declared.dtype != inferred.dtype:
        return inferred
    if inferred.shape is not None:
        if len(inferred.shape) != len(declared.shape):
            return inferred
        if any(d is not None and d != e for d, e in zip(inferred.shape, declared.shape)):
            return inferred
    return declared


def require_static(graph: Graph) -> None:
    """Every tensor a node touches must have a static shape and a known dtype."""
    for n in graph.nodes:
        for name in n.inputs + n.outputs:
            if not name:
                continue
            info = graph.tensors.get(name)
            if info is None or not info.static:
                what = "unknown" if info is None or info.shape is None else \
                    "[" + ",".join("?" if d is None else str(d) for d in info.shape) + "]"
                dtype = "unknown dtype" if info is None or info.dtype is None else str(info.dtype)
                raise OmrtError(ACL_ERROR_GE_SHAPE_INVALID,
                                f"tensor {name!r} (node {n.name}, {n.op_type}) has no static shape: "
                                f"shape {what}, {dtype}")


def all_static(graph: Graph) -> bool:
    return all(
        graph.tensors.get(name) is not None and graph.tensors[name].static
        for n in graph.nodes for name in n.inputs + n.outputs if name)
