"""Batch lanes: a batch-N model compiled as L copies of its batch-N/L graph, run side by side.

Splitting every op of a batch over the kernel threads costs a thread wake-up and a join per op;
on models of many small ops that is most of the second thread's gain. When no op mixes images
(every activation is batch-leading and no op reduces, moves or indexes along axis 0), lane i can
run the whole graph on images [i*b, (i+1)*b) in a work region of its own, one pool task per lane
and no synchronisation in between (omrt.runtime.executor). At batch 8 on two threads, two lanes
against one batch-8 graph split op by op (`benchmarks/bench_models.py --batches 8 --lanes 1,2,4`):
SqueezeNet 29.2 -> 25.5 ms, ShuffleNet 29.9 -> 26.4, DenseNet-121 210 -> 167, ResNet-50
211 -> 182, VGG-19 617 -> 536, Inception-v1 99 -> 81.

The compiler tries the lane graph first and falls back to the whole batch when check_lanes finds
an op that is not batch-local, so a lane plan is always an exact split of the batch-N model.
"""
from __future__ import annotations

import numpy as np
import onnx

from omrt.compiler.ir import Graph, Node, TensorInfo
from omrt.constants import ACL_ERROR_INVALID_PARAM
from omrt.errors import OmrtError

# Lanes when the compiler chooses. Every lane reads all the weights, so more lanes cost weight
# traffic: at batch 8 on two threads, 2 lanes against 4 (same command as above): VGG-19 536
# against 588 ms, ResNet-50 182 against 188, DenseNet-121 167 against 171, Inception-v1 81
# against 84; SqueezeNet and ShuffleNet tie.
DEFAULT_LANES = 2
# Share of the activation bytes that Concat outputs make up from which each image gets a lane of
# its own. At batch 1 every input of a channel Concat is a contiguous block of its output, so the
# ops before it write there and nothing is copied (omrt.compiler.alias); with two or more images
# a lane copies them. Batch 8, two threads, 2 lanes against 8 (`bench_models.py --batches 8
# --lanes 2,8`): SqueezeNet (concats 21 % of the activation bytes) 20.48 -> 18.46 ms, DenseNet-121
# (13 %) 143.4 -> 123.0, Inception-v1 (11 %) 71.0 -> 69.4; ShuffleNet (1.3 %, 203 small ops each
# lane pays for) 10.63 -> 12.50, ResNet-50 (none) 154.0 -> 160.5, VGG-19 (none) 441 -> 466.
IMAGE_LANES_CONCAT_SHARE = 0.05

# Each output element depends only on the same position of its (broadcast) inputs.
ELEMENTWISE = frozenset({
    "Abs", "Add", "And", "Cast", "CastLike", "Ceil", "Clip", "Div", "Dropout", "Elu", "Equal", "Erf",
    "Exp", "Floor", "Gelu", "Greater", "GreaterOrEqual", "HardSigmoid", "HardSwish", "Identity",
    "LeakyRelu", "Less", "LessOrEqual", "Log", "Max", "Mean", "Min", "Mul", "Neg", "Not", "Or", "PRelu",
    "Pow", "Reciprocal", "Relu", "Round", "Selu", "Sigmoid", "Sign", "Softplus", "Softsign", "Sqrt",
    "Sub", "Sum", "Tanh", "Where", "Xor",
})
# Image by image, given constant parameters (weights, pads, scales, shapes): the first input is
# the only activation. Reshape and Flatten keep row-major order, so lane i's rows are rows i*b...
PER_IMAGE = frozenset({
    "AveragePool", "BatchNormalization", "Conv", "ConvTranspose", "Expand", "Flatten",
    "GlobalAveragePool", "GlobalMaxPool", "LRN", "MaxPool", "Pad", "Reshape", "Resize", "Tile",
    "Upsample",
})
# Per image as long as their axis is not 0.
AXIS_ATTR = frozenset({"ArgMax", "ArgMin", "Concat", "Gather", "LogSoftmax", "Softmax", "Split"})
AXES = frozenset({
    "ReduceL1", "ReduceL2", "ReduceLogSumExp", "ReduceMax", "ReduceMean", "ReduceMin", "ReduceProd",
    "ReduceSum", "ReduceSumSquare", "Slice", "Squeeze", "Unsqueeze",
})
# Where an op takes its axes from a constant input rather than an attribute (opset 13+ forms).
AXES_INPUT = {"Slice": 3, "Squeeze": 1, "Unsqueeze": 1}
REDUCE_AXES_INPUT = 1


class NotLaneSafe(Exception):
    """The graph mixes images (or cannot be shown not to): compile the whole batch instead."""


def data_batch(proto: onnx.ModelProto, input_shape: dict[str, list[int]]) -> int | None:
    """The leading dim every data input shares, from --input_shape or the model; None if they differ."""
    constants = {t.name for t in proto.graph.initializer}
    dims = []
    for vi in proto.graph.input:
        if vi.name in constants:
            continue
        if vi.name in input_shape:
            shape = [int(d) for d in input_shape[vi.name]]
        else:
            shape = [d.dim_value if d.HasField("dim_value") else -1 for d in vi.type.tensor_type.shape.dim]
        dims.append(shape[0] if shape else -1)
    if not dims or any(d != dims[0] for d in dims) or dims[0] < 1:
        return None
    return dims[0]


def choose_lanes(batch: int | None, requested: int | None, concat_share: float = 0.0) -> int:
    """How many lanes a batch is compiled as: `requested` (CompileOptions.lanes) or, by default,
    one per image where Concat outputs make up IMAGE_LANES_CONCAT_SHARE of the activations or
    more (`concat_share`, see concat_share()), else DEFAULT_LANES for an even batch and 1 (no
    lanes) for an odd one."""
    if requested is not None:
        if requested < 1:
            raise OmrtError(ACL_ERROR_INVALID_PARAM, f"lanes must be at least 1, got {requested}")
        if requested > 1 and (batch is None or batch % requested):
            raise OmrtError(ACL_ERROR_INVALID_PARAM,
                            f"lanes {requested} must divide the batch size of every input ({batch})")
        return requested
    if batch is not None and batch > 1 and concat_share >= IMAGE_LANES_CONCAT_SHARE:
        return batch
    if batch is None or batch % DEFAULT_LANES:
        return 1
    return DEFAULT_LANES


def concat_share(proto: onnx.ModelProto) -> float:
    """Bytes of floating-point Concat outputs over those of all op outputs, per image, from the
    model's inferred shapes (tensors of unknown shape left out, as is integer shape arithmetic):
    how much a batch-1 lane saves by writing concatenated tensors in place."""
    try:
        inferred = onnx.shape_inference.infer_shapes(proto)
    except Exception:  # a model shape inference cannot take: keep the default lanes
        return 0.0
    sizes = {}
    for info in list(inferred.graph.value_info) + list(inferred.graph.output):
        dims = info.type.tensor_type.shape.dim
        dtype = onnx.helper.tensor_dtype_to_np_dtype(info.type.tensor_type.elem_type)
        if dtype.kind == "f" and dims and all(d.HasField("dim_value") for d in dims[1:]):
            # a symbolic batch (a dynamic-batch model) counts as 1: the share does not depend on it
            sizes[info.name] = dtype.itemsize * int(np.prod([d.dim_value for d in dims[1:]]))
    total = concat = 0
    for node in inferred.graph.node:
        for name in node.output:
            total += sizes.get(name, 0)
            if node.op_type == "Concat":
                concat += sizes.get(name, 0)
    return concat / total if total else 0.0


def split_inputs(graph: Graph, lanes: int) -> int:
    """Give every graph input its lane's shape (the batch divided by `lanes`); the lane's batch."""
    lane_batch = 0
    for name in graph.inputs:
        info = graph.tensors[name]
        lane_batch = info.shape[0] // lanes
        graph.tensors[name] = TensorInfo((lane_batch,) + tuple(info.shape[1:]), info.dtype)
    return lane_batch


def retarget_reshapes(graph: Graph, batch: int, lane_batch: int) -> None:
    """Constant Reshape targets that spell out the batch ([N, ...]) get the lane's batch instead.

    When input and output both lead with N, output row i holds exactly input row i's elements, so
    the lane's reshape to [N/L, ...] computes rows i*b... of the whole one. check_lanes verifies
    afterwards that the input does lead with the batch."""
    for node in graph.nodes:
        if node.op_type != "Reshape" or len(node.inputs) < 2 or node.inputs[1] not in graph.constants:
            continue
        target = graph.constants[node.inputs[1]]
        if target.ndim == 1 and target.size and int(target[0]) == batch:
            lane_target = target.copy()
            lane_target[0] = lane_batch
            node.inputs[1] = graph.add_constant(node.inputs[1], lane_target)


def _axis(node: Node, default: int, rank: int) -> int:
    axis = int(node.attrs.get("axis", default))
    return axis + rank if axis < 0 else axis


def _const_axes(graph: Graph, node: Node, position: int) -> list[int] | None:
    """Axes from the attribute or (newer opsets) a constant input; None when neither is given."""
    if "axes" in node.attrs:
        return [int(a) for a in node.attrs["axes"]]
    if len(node.inputs) > position and node.inputs[position]:
        value = graph.constants.get(node.inputs[position])
        if value is None:
            raise NotLaneSafe(f"{node.op_type} {node.name}: axes are computed at run time")
        return [int(a) for a in np.asarray(value).reshape(-1)]
    return None


def _touches_batch_axis(graph: Graph, node: Node) -> bool:
    rank = len(graph.shape(node.inputs[0]))
    op = node.op_type
    if op in AXIS_ATTR:
        default = 0
        if op in ("Softmax", "LogSoftmax"):
            default = 1 if node.attrs.get("_opset", 13) < 13 else -1
        return _axis(node, default, rank) == 0
    if op == "Transpose":
        perm = node.attrs.get("perm")
        return perm is None or int(perm[0]) != 0
    if op in AXES:
        position = AXES_INPUT.get(op, REDUCE_AXES_INPUT)
        axes = _const_axes(graph, node, position)
        if axes is None:
            return not (op.startswith("Reduce") and node.attrs.get("noop_with_empty_axes", 0))
        out_rank = len(graph.shape(node.outputs[0])) if op == "Unsqueeze" else rank
        return any((a + out_rank if a < 0 else a) == 0 for a in axes)
    if op == "Gemm":
        return bool(node.attrs.get("transA", 0))
    if op == "Flatten":
        return _axis(node, 1, rank) == 0
    return False


def _check_node(graph: Graph, node: Node) -> None:
    op = node.op_type
    inputs = [i for i in node.inputs if i]
    activations = [i for i in inputs if i not in graph.constants]
    if not activations:
        raise NotLaneSafe(f"{op} {node.name}: no activation input")
    if op in ELEMENTWISE:
        out_rank = len(graph.shape(node.outputs[0]))
        for name in inputs:
            shape = graph.shape(name)
            if name in graph.constants and len(shape) == out_rank and shape[0] != 1:
                raise NotLaneSafe(f"{op} {node.name}: constant {name} varies along the batch")
        return
    if op == "MatMul":
        a, b = node.inputs[0], node.inputs[1]
        if a in graph.constants:
            raise NotLaneSafe(f"MatMul {node.name}: constant left operand")
        if b not in graph.constants and not (len(graph.shape(a)) == len(graph.shape(b)) >= 3):
            raise NotLaneSafe(f"MatMul {node.name}: right operand is an activation without a batch dim")
        return
    known = PER_IMAGE | AXIS_ATTR | AXES | {"Transpose", "Gemm"}
    if op not in known:
        raise NotLaneSafe(f"{op} {node.name}: not known to be batch-local")
    if op != "Concat" and activations != [node.inputs[0]]:
        raise NotLaneSafe(f"{op} {node.name}: an input other than the first is computed at run time")
    if _touches_batch_axis(graph, node):
        raise NotLaneSafe(f"{op} {node.name}: works along the batch axis")


def check_lanes(graph: Graph, lane_batch: int) -> None:
    """Raise NotLaneSafe unless every op of the (folded, statically shaped) lane graph is batch-local
    and every activation, graph inputs and outputs included, leads with the lane's batch."""
    for name in graph.outputs:
        if name in graph.constants:
            raise NotLaneSafe(f"output {name} is a constant")
    for node in graph.nodes:
        _check_node(graph, node)
        for name in node.inputs + node.outputs:
            if not name or name in graph.constants:
                continue
            shape = graph.shape(name)
            if not shape or shape[0] != lane_batch:
                raise NotLaneSafe(f"{node.op_type} {node.name}: {name} {list(shape)} does not lead with the batch")
