"""Identity and inference-mode Dropout pass data through unchanged: rewire their readers instead.

A graph output keeps its name: then the producer of the input is renamed to the output, or, when
that is impossible (the input is a model input, a constant or another output), the node stays
and becomes a copy.
"""
from __future__ import annotations

import numpy as np

from omrt.compiler.ir import Graph


def remove_identities(graph: Graph) -> int:
    removed = 0
    for node in list(graph.nodes):
        if node.op_type not in ("Identity", "Dropout") or not node.inputs or not node.inputs[0]:
            continue
        if node.op_type == "Dropout" and len(node.outputs) > 1 and node.outputs[1]:
            mask = node.outputs[1]
            consumers = graph.consumers()
            if graph.uses(mask, consumers):
                info = graph.tensors[mask]
                if not info.static:
                    continue
                graph.set_constant(mask, np.ones(info.shape, dtype=np.bool_))
            node.outputs = node.outputs[:1]
        src, dst = node.inputs[0], node.outputs[0]
        if dst not in graph.outputs:
            graph.nodes.remove(node)
            graph.rename(dst, src)
        else:
            producer = graph.producers().get(src)
            if producer is None or src in graph.outputs or src in graph.inputs:
                continue
            graph.nodes.remove(node)
            producer.outputs = [dst if o == src else o for o in producer.outputs]
            graph.rename(src, dst)
        removed += 1
    return removed
