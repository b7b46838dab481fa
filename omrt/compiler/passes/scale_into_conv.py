"""A BatchNormalization + Relu feeding only Convs hands its scale to their weights.

Pre-activation blocks (DenseNet: BN -> Relu -> Conv) cannot fold the BN into the Conv because of
the Relu between them, and at run time the BN costs three passes (multiply, add, Relu). Relu is
positively homogeneous: for a > 0, relu(a*x + b) = a * relu(x + b/a), and zero padding commutes
with a per-channel factor. So when every channel's scale is positive, each consuming Conv takes
the factor into its weights (per input channel) and the BN keeps only the shift: two passes.
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


def scale_into_convs(graph: Graph, stats: dict[str, int]) -> int:
    """Move positive BN scales into the consuming Convs; returns how many BNs were rewritten."""
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
        if affine is None or not (affine[0] > 0).all() or (affine[0] == 1.0).all():
            continue
        scale, shift = affine
        for conv in users:
            w = graph.constants[conv.inputs[1]]
            factor = scale.reshape((1, -1) + (1,) * (w.ndim - 2))
            conv.inputs[1] = graph.add_constant(conv.inputs[1], (w.astype(np.float64) * factor).astype(w.dtype))
        activation = {k: bn.attrs[k] for k in ("_activation", "_activation_params") if k in bn.attrs}
        set_bn(graph, bn, np.ones_like(scale), shift / scale)
        bn.attrs.update(activation)
        made += 1
    if made:
        stats["bn_scale_into_conv"] = stats.get("bn_scale_into_conv", 0) + made
        graph.prune_constants()
    return made
