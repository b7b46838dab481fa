"""Constant folding: a node whose inputs are all known runs once, now, on omrt's own kernels.

The values a folded model gives are then the values the runtime would have computed. Shape (and
Size) of a static tensor fold without running anything.
"""
from __future__ import annotations

import numpy as np

from omrt.compiler.ir import Graph, Node
from omrt.compiler.spec import op_spec, present_outputs
from omrt.kernels import run_op

NONDETERMINISTIC = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial",
                    "Bernoulli"}


def _shape_value(graph: Graph, node: Node) -> np.ndarray | None:
    info = graph.tensors.get(node.inputs[0])
    if info is None or not info.static:
        return None
    shape = np.array(info.shape, dtype=np.int64)
    if node.op_type == "Size":
        return np.array(shape.prod(), dtype=np.int64)
    rank = len(shape)
    start = node.attrs.get("start", 0)
    end = node.attrs.get("end", rank)
    start = max(0, min(rank, start + rank if start < 0 else start))
    end = max(0, min(rank, end + rank if end < 0 else end))
    return shape[start:end]


def _foldable(graph: Graph, node: Node) -> bool:
    if node.op_type in NONDETERMINISTIC:
        return False
    if not all(i in graph.constants for i in node.inputs if i):
        return False
    outs = present_outputs(node)
    return bool(outs) and all(o and o in graph.tensors and graph.tensors[o].static for o in outs)


def fold_constants(graph: Graph) -> int:
    """Fold every node that can be folded now; returns how many were."""
    folded = 0
    kept: list[Node] = []
    for node in graph.nodes:
        if node.op_type in ("Shape", "Size") and node.inputs[0] not in graph.constants:
            value = _shape_value(graph, node)
            if value is None:
                kept.append(node)
                continue
            graph.set_constant(node.outputs[0], value)
            folded += 1
            continue
        if not _foldable(graph, node):
            kept.append(node)
            continue
        spec = op_spec(graph, node)
        values = run_op(spec, [graph.constants[i] if i else None for i in node.inputs])
        for name, value in zip(present_outputs(node), values):
            if name:
                graph.set_constant(name, np.asarray(value, dtype=graph.tensors[name].dtype))
        folded += 1
    graph.nodes = kept
    return folded
