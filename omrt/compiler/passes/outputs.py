"""Every model output gets its own producer, which writes straight into the caller's buffer.

An output that is a model input, a constant, or an earlier output again has no producer of its
own, so a copy (Identity) is inserted for it. Returns the user-visible output names, in order.
"""
from __future__ import annotations

from omrt.compiler.ir import Graph, Node, TensorInfo


def separate_outputs(graph: Graph) -> list[str]:
    names = list(graph.outputs)
    seen: set[str] = set()
    for k, out in enumerate(graph.outputs):
        if out in graph.constants and out not in seen:
            # The constant takes a private name so the copy can carry the output's own.
            hidden = graph.fresh(out)
            graph.set_constant(hidden, graph.constants.pop(out))
            for n in graph.nodes:
                n.inputs = [hidden if i == out else i for i in n.inputs]
            graph.nodes.append(Node(graph.fresh(f"{out}_copy"), "Identity", [hidden], [out]))
            seen.add(out)
            continue
        if out in graph.inputs or out in graph.constants or out in seen:
            copy = graph.fresh(out)
            info = graph.tensors[out]
            graph.tensors[copy] = TensorInfo(info.shape, info.dtype)
            graph.nodes.append(Node(graph.fresh(f"{out}_copy"), "Identity", [out], [copy]))
            graph.outputs[k] = copy
        seen.add(graph.outputs[k])
    return names
