"""ONNX model in, light IR out: loading, validation, input shapes and attribute conversion.

Everything that can be wrong with a model or with the options is reported here, before any pass
runs, so a user sees one clear error instead of a failure deep in a pass.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np
import onnx
from onnx import external_data_helper, helper, numpy_helper

from omrt.compiler.ir import Graph, Node, TensorInfo
from omrt.constants import ACL_ERROR_INVALID_FILE, ACL_ERROR_INVALID_PARAM, ACL_ERROR_OP_NOT_FOUND, ACL_ERROR_PARSE_MODEL
from omrt.errors import OmrtError, UnsupportedOpError
from omrt.kernels import is_supported

MIN_OPSET = 7
SUBGRAPH_OPS = {"If", "Loop", "Scan", "SequenceMap"}
OPSET_SENSITIVE = {"Softmax", "LogSoftmax", "Hardmax", "Resize", "Upsample"}  # semantics differ by opset


def load(model: str | os.PathLike | bytes | onnx.ModelProto) -> onnx.ModelProto:
    """Read the model, resolve external data safely inside the model's folder, run the checker."""
    if isinstance(model, onnx.ModelProto):
        proto, base, path = model, os.getcwd(), None
    elif isinstance(model, (bytes, bytearray, memoryview)):
        proto, base, path = _parse(bytes(model), "<bytes>"), os.getcwd(), None
    else:
        path = os.fspath(model)
        if not os.path.isfile(path):
            raise OmrtError(ACL_ERROR_INVALID_FILE, f"model file not found: {path}")
        with open(path, "rb") as f:
            proto = _parse(f.read(), path)
        base = os.path.dirname(os.path.abspath(path))
    external = _external_tensors(proto)
    if external:
        _check_external_locations(external, base)
        proto = onnx.ModelProto.FromString(proto.SerializeToString()) if proto is model else proto
    try:
        if path is not None and external:
            onnx.checker.check_model(path)
        else:
            onnx.checker.check_model(proto)
    except (onnx.checker.ValidationError, ValueError) as e:
        raise OmrtError(ACL_ERROR_PARSE_MODEL, f"invalid ONNX model: {e}") from None
    if external:
        external_data_helper.load_external_data_for_model(proto, base)
    _check_opset(proto)
    return proto


def _parse(data: bytes, where: str) -> onnx.ModelProto:
    try:
        proto = onnx.ModelProto.FromString(data)
    except Exception as e:  # protobuf raises its own DecodeError
        raise OmrtError(ACL_ERROR_PARSE_MODEL, f"cannot parse ONNX model {where}: {e}") from None
    if not proto.HasField("graph"):
        raise OmrtError(ACL_ERROR_PARSE_MODEL, f"{where} is not an ONNX model (no graph)")
    return proto


def _external_tensors(proto: onnx.ModelProto) -> list[onnx.TensorProto]:
    return [t for t in external_data_helper._get_all_tensors(proto)
            if external_data_helper.uses_external_data(t)]


def _check_external_locations(tensors: list[onnx.TensorProto], base: str) -> None:
    """External data must be a relative path that stays inside the model's folder."""
    root = os.path.realpath(base)
    for t in tensors:
        location = {e.key: e.value for e in t.external_data}.get("location", "")
        where = f"external data of tensor {t.name!r} at {location!r}"
        if not location or os.path.isabs(location) or os.path.splitdrive(location)[0]:
            raise OmrtError(ACL_ERROR_INVALID_FILE,
                            f"{where}: the location must be a path relative to the model's folder")
        real = os.path.realpath(os.path.join(root, location))
        if os.path.commonpath([real, root]) != root:
            raise OmrtError(ACL_ERROR_INVALID_FILE,
                            f"{where}: the location leaves the model's folder {root}")
        if not os.path.isfile(real):
            raise OmrtError(ACL_ERROR_INVALID_FILE, f"{where}: file not found")


def default_opset(proto: onnx.ModelProto) -> int:
    for o in proto.opset_import:
        if o.domain in ("", "ai.onnx"):
            return int(o.version)
    return 1


def _check_opset(proto: onnx.ModelProto) -> None:
    version, newest = default_opset(proto), onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= version <= newest:
        raise OmrtError(ACL_ERROR_PARSE_MODEL,
                        f"ONNX opset {version} is not supported (supported: {MIN_OPSET}..{newest})")


def attr_value(attr: onnx.AttributeProto) -> Any:
    """An ONNX attribute as a plain Python value (str for bytes, numpy for tensors)."""
    value = helper.get_attribute_value(attr)
    if isinstance(value, onnx.TensorProto):
        return numpy_helper.to_array(value).copy()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, list) and value and isinstance(value[0], bytes):
        return [v.decode("utf-8", errors="replace") for v in value]
    if isinstance(value, list) and value and isinstance(value[0], onnx.TensorProto):
        return [numpy_helper.to_array(v).copy() for v in value]
    return value


def np_dtype(elem_type: int) -> np.dtype | None:
    if elem_type == onnx.TensorProto.UNDEFINED:
        return None
    try:
        return np.dtype(helper.tensor_dtype_to_np_dtype(elem_type))
    except (KeyError, TypeError, ValueError):
        return None


def type_info(vi_type: onnx.TypeProto) -> TensorInfo:
    if not vi_type.HasField("tensor_type"):
        return TensorInfo(None, None)
    tt = vi_type.tensor_type
    dtype = np_dtype(tt.elem_type)
    if not tt.HasField("shape"):
        return TensorInfo(None, dtype)
    dims = tuple(int(d.dim_value) if d.HasField("dim_value") else None for d in tt.shape.dim)
    return TensorInfo(dims, dtype)  # type: ignore[arg-type]


def check_supported(proto: onnx.ModelProto) -> None:
    """One error listing every op omrt cannot run, each with the nodes that use it."""
    missing: dict[str, list[str]] = {}
    for k, n in enumerate(proto.graph.node):
        domain_ok = n.domain in ("", "ai.onnx")
        if n.op_type == "Constant" and domain_ok:
            continue
        if not domain_ok or n.op_type in SUBGRAPH_OPS or not is_supported(n.op_type):
            label = n.op_type if domain_ok else f"{n.domain}.{n.op_type}"
            missing.setdefault(label, []).append(n.name or f"#{k}")
    if missing:
        parts = [f"{op} (node{'s' if len(names) > 1 else ''} {', '.join(names)})"
                 for op, names in missing.items()]
        raise UnsupportedOpError(ACL_ERROR_OP_NOT_FOUND, "unsupported operators: " + ", ".join(parts))


def to_ir(proto: onnx.ModelProto, input_shape: dict[str, list[int]]) -> Graph:
    """The graph as IR, with initializers (also those listed as IR-3 inputs) as constants."""
    g = proto.graph
    opset = default_opset(proto)
    constants = {t.name: np.require(numpy_helper.to_array(t), requirements="C") for t in g.initializer}
    real_inputs = [i for i in g.input if i.name not in constants]
    tensors: dict[str, TensorInfo] = {}
    for name, value in constants.items():
        tensors[name] = TensorInfo(tuple(int(d) for d in value.shape), value.dtype)
    _apply_input_shapes(real_inputs, input_shape, tensors)

    nodes: list[Node] = []
    used: set[str] = {n.name for n in g.node if n.name}
    for k, n in enumerate(g.node):
        attrs = {a.name: attr_value(a) for a in n.attribute}
        if n.op_type == "Constant":
            constants[n.output[0]] = _constant_node_value(n, attrs)
            value = constants[n.output[0]]
            tensors[n.output[0]] = TensorInfo(tuple(int(d) for d in value.shape), value.dtype)
            continue
        if n.op_type in OPSET_SENSITIVE:
            attrs["_opset"] = opset
        name = n.name
        if not name:
            name = f"{n.op_type}_{k}"
            while name in used:
                name += "_"
            used.add(name)
        nodes.append(Node(name, n.op_type, list(n.input), list(n.output), attrs))
    outputs = [o.name for o in g.output]
    declared = {}
    for o in g.output:
        info = type_info(o.type)
        if o.name not in tensors and info.dtype is not None:
            tensors[o.name] = TensorInfo(None, info.dtype)
        if info.static:
            declared[o.name] = info
    return Graph(g.name or "graph", nodes, [i.name for i in real_inputs], outputs, tensors, constants, opset,
                 declared)


def _constant_node_value(n: onnx.NodeProto, attrs: dict[str, Any]) -> np.ndarray:
    for key, cast in (("value", None), ("value_float", np.float32), ("value_int", np.int64),
                      ("value_floats", np.float32), ("value_ints", np.int64)):
        if key in attrs:
            return np.require(attrs[key] if cast is None else np.array(attrs[key], dtype=cast), requirements="C")
    raise UnsupportedOpError(ACL_ERROR_OP_NOT_FOUND,
                             f"unsupported operators: Constant (node {n.name or n.output[0]}) "
                             f"with attribute {', '.join(attrs) or '(none)'}")


def _apply_input_shapes(inputs: list[onnx.ValueInfoProto], input_shape: dict[str, list[int]],
                        tensors: dict[str, TensorInfo]) -> None:
    by_name = {i.name: i for i in inputs}
    unknown = [n for n in input_shape if n not in by_name]
    if unknown:
        raise OmrtError(ACL_ERROR_INVALID_PARAM,
                        f"--input_shape names {', '.join(map(repr, unknown))}, which "
                        f"{'is not an input' if len(unknown) == 1 else 'are not inputs'} of the model "
                        f"(inputs: {', '.join(by_name) or 'none'})")
    for vi in inputs:
        info = type_info(vi.type)
        if info.dtype is None:
            raise OmrtError(ACL_ERROR_PARSE_MODEL, f"model input {vi.name!r} has no tensor type")
        if vi.name in input_shape:
            dims = [int(d) for d in input_shape[vi.name]]
            if info.shape is not None and len(info.shape) != len(dims):
                raise OmrtError(ACL_ERROR_INVALID_PARAM,
                                f"--input_shape {vi.name}: {len(dims)} dims given, the model input has "
                                f"rank {len(info.shape)}")
            for pos, (want, have) in enumerate(zip(dims, info.shape or dims)):
                if want < 0:
                    raise OmrtError(ACL_ERROR_INVALID_PARAM,
                                    f"--input_shape {vi.name}: dim {pos} is {want}; dynamic dims need "
                                    f"--dynamic_batch_size (first dim only)")
                if have is not None and have != want:
                    raise OmrtError(ACL_ERROR_INVALID_PARAM,
                                    f"--input_shape {vi.name}: dim {pos} is {want}, the model fixes it to {have}")
            info = TensorInfo(tuple(dims), info.dtype)
        if not info.static:
            shown = "?" if info.shape is None else ",".join("?" if d is None else str(d) for d in info.shape)
            raise OmrtError(ACL_ERROR_INVALID_PARAM,
                            f"model input {vi.name!r} has a non-static shape [{shown}]; "
                            f"fix it with --input_shape \"{vi.name}:...\"")
        tensors[vi.name] = info
