"""A channel shuffle right after a grouped 1x1 Conv is written by the Conv itself.

ShuffleNet's shuffle is Reshape (N, G, C/G, ...) -> Transpose (0, 2, 1, ...) -> Reshape (N, C, ...):
channel k*C/G + a moves to a*G + k, a full copy of the tensor. When the Conv in front has exactly
G groups, group k computes channels k*C/G .. (k+1)*C/G - 1, and in the shuffled tensor these are
the channels k, k + G, k + 2G, ...: a strided channel view that BLAS can write directly (row
stride G planes). The Conv then outputs the shuffled tensor (`_shuffle_out`) and the three nodes
go away.
"""
from __future__ import annotations

from omrt.compiler.ir import Graph, Node
from omrt.compiler.passes.scale_into_conv import unpadded


def _direct_conv(conv: Node, groups: int) -> bool:
    """A 1x1, stride-1, unpadded Conv with `groups` groups and no fused residual: the kernel's
    direct GEMM path, which can write a strided channel view."""
    a = conv.attrs
    return (conv.op_type == "Conv" and int(a.get("group", 1)) == groups and groups > 1
            and all(int(k) == 1 for k in a.get("kernel_shape", [])) and a.get("kernel_shape")
            and all(int(s) == 1 for s in a.get("strides", [1])) and unpadded(conv)
            and not a.get("_residual") and not a.get("_shuffle_out"))


def _only_consumer(graph: Graph, name: str, consumers: dict[str, list[Node]], op_type: str) -> Node | None:
    users = consumers.get(name, [])
    if len(users) != 1 or users[0].op_type != op_type or name in graph.outputs:
        return None
    return users[0]


def shuffle_into_convs(graph: Graph, stats: dict[str, int]) -> int:
    """Fold every Conv -> Reshape -> Transpose -> Reshape channel shuffle; returns how many."""
    made = 0
    # a fold only removes the three nodes of its own chain, so the map stays right for the rest
    consumers = graph.consumers()
    for conv in list(graph.nodes):
        if conv.op_type != "Conv" or len(conv.outputs) != 1:
            continue
        out = conv.outputs[0]
        split = _only_consumer(graph, out, consumers, "Reshape")
        if split is None:
            continue
        swap = _only_consumer(graph, split.outputs[0], consumers, "Transpose")
        if swap is None:
            continue
        merge = _only_consumer(graph, swap.outputs[0], consumers, "Reshape")
        if merge is None:
            continue
        shape = graph.shape(out)
        split_shape = graph.shape(split.outputs[0])
        rank = len(shape)
        if (rank < 3 or len(split_shape) != rank + 1 or split_shape[0] != shape[0]
                or split_shape[1] * split_shape[2] != shape[1] or split_shape[3:] != shape[2:]
                or graph.shape(merge.outputs[0]) != shape):
            continue
        perm = [int(p) for p in swap.attrs.get("perm", [])]
        if perm != [0, 2, 1] + list(range(3, rank + 1)) or not _direct_conv(conv, split_shape[1]):
            continue
        if graph.shape(conv.inputs[0])[1] == split_shape[1] == shape[1]:
            continue  # depthwise: its kernel keeps channels in place
        conv.outputs[0] = merge.outputs[0]
        conv.attrs["_shuffle_out"] = 1
        for node in (split, swap, merge):
            graph.nodes.remove(node)
        made += 1
    if made:
        stats["shuffle_into_conv"] = stats.get("shuffle_into_conv", 0) + made
    return made
