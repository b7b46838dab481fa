"""A BatchNormalization + Relu feeding only Convs hands its scale (and shift) to them.

Pre-activation blocks (DenseNet: BN -> Relu -> Conv) cannot fold the BN into the Conv because of
the Relu between them, and at run time the BN costs three passes (multiply, add, Relu). Relu is
positively homogeneous: for a > 0, relu(a*x + b) = a * relu(x + b/a), and zero padding commutes
with a per-channel factor. So when every channel's scale is positive, each consuming Conv takes
the factor into its weights (per input channel) and the BN keeps only the shift: two passes.

When no consuming Conv pads its input, any scale s and the shift t move:
relu(s*x + t) = |s| * (max(sign(s)*x, -b) + b) with b = t/|s|. The Conv takes |s| into its weights
and the constant |s|*b = t into its bias (a constant added to an unpadded Conv's input adds
sum(W * t) to every output; a zero scale leaves the constant relu(t)). The BN keeps
max(sign(s)*x, -b) (`_bias_to_consumers`): one pass when every scale is positive, two otherwise.
With padding the border pixels would see zeros instead of the constant, so padded consumers
only take positive scales.
"""
from __future__ import annotations

import numpy as np

from omrt.compiler.ir import Graph, Node
from omrt.compiler.passes.fuse_bn import bn_scale_shift, set_bn


def _takes_scale(graph: Graph, conv: Node, name: str) -> bool:
    """A group-1 Conv reading `name` only as its input, with constant float weights."""
    return (conv.op_type == "Conv" and int(conv.attrs.get("group", 1)) == 1 and conv.inputs[0] == name
            and name not in conv.inputs[1:] and conv.inputs[1] in graph.constants
            and np.issubdtype(graph.constants[conv.inputs[1]].dtype, np.floating))


def unpadded(conv: Node) -> bool:
    """The Conv reads no padding (auto_pad NOTSET or VALID, every pad 0)."""
    auto_pad = conv.attrs.get("auto_pad", "NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    return auto_pad in ("NOTSET", "VALID") and not any(int(p) for p in conv.attrs.get("pads", []))


def _add_to_bias(graph: Graph, conv: Node, extra: np.ndarray) -> None:
    """Conv bias += extra (one value per output channel), creating the bias when there is none."""
    dtype = graph.constants[conv.inputs[1]].dtype
    has_bias = len(conv.inputs) > 2 and conv.inputs[2]
    bias = graph.constants[conv.inputs[2]].astype(np.float64) if has_bias else np.zeros(len(extra))
    name = graph.add_constant(conv.inputs[2] if has_bias else f"{conv.name}_bias", (bias + extra).astype(dtype))
    if len(conv.inputs) > 2:
        conv.inputs[2] = name
    else:
        conv.inputs.append(name)


def _move(graph: Graph, users: list[Node], weight_factor: np.ndarray, bias_shift: np.ndarray | None) -> None:
    """Scale every consumer's weights per input channel; add `bias_shift`, seen through the
    scaled-back weights, to its bias."""
    for conv in users:
        w = graph.constants[conv.inputs[1]].astype(np.float64)
        per_input = (1, -1) + (1,) * (w.ndim - 2)
        conv.inputs[1] = graph.add_constant(conv.inputs[1], (w * weight_factor.reshape(per_input)).astype(
            graph.constants[conv.inputs[1]].dtype))
        if bias_shift is not None:
            _add_to_bias(graph, conv, w.reshape(w.shape[0], w.shape[1], -1).sum(axis=2) @ bias_shift)


def scale_into_convs(graph: Graph, stats: dict[str, int]) -> int:
    """Move BN scales (and shifts, see the module docstring) into the consuming Convs; returns
    how many BNs were rewritten."""
    made = 0
    consumers = graph.consumers()
    for bn in list(graph.nodes):
        if bn.op_type != "BatchNormalization" or bn.attrs.get("_activation") != "Relu":
            continue
        if bn.attrs.get("training_mode") or graph.dtype(bn.outputs[0]).kind != "f":
            continue
        out = bn.outputs[0]
        users = consumers.get(out, [])
        if not users or out in graph.outputs or not all(_takes_scale(graph, c, out) for c in users):
            continue
        affine = bn_scale_shift(graph, bn)
        if affine is None:
            continue
        scale, shift = affine
        activation = {k: bn.attrs[k] for k in ("_activation", "_activation_params") if k in bn.attrs}
        if all(unpadded(conv) for conv in users):
            # relu(s*x + t) = |s| * (max(sign(s)*x, -t/|s|) + t/|s|); a zero scale leaves relu(t)
            size = np.abs(scale)
            live = size > 0
            ratio = np.divide(shift, size, out=np.zeros_like(shift), where=live)
            _move(graph, users, size, np.where(live, shift, np.maximum(shift, 0)))
            set_bn(graph, bn, np.sign(scale), ratio)
            bn.attrs["_bias_to_consumers"] = 1
            key = "bn_shift_into_conv"
        elif (scale > 0).all() and not (scale == 1.0).all():
            _move(graph, users, scale, None)
            set_bn(graph, bn, np.ones_like(scale), shift / scale)
            key = "bn_scale_into_conv"
        else:
            continue
        bn.attrs.update(activation)
        stats[key] = stats.get(key, 0) + 1
        made += 1
    if made:
        graph.prune_constants()
    return made
