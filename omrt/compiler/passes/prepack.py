"""Weights stored in the layout each kernel runs fastest on, decided by the kernel itself."""
from __future__ import annotations

import numpy as np

from omrt.compiler.ir import Graph
from omrt.compiler.spec import op_spec
from omrt.kernels import prepack


def prepack_weights(graph: Graph) -> int:
    """Apply every kernel's prepack hook; returns how many ops changed."""
    changed = 0
    for node in graph.nodes:
        result = prepack(op_spec(graph, node))
        if not result:
            continue
        attrs, values = result
        node.attrs.update(attrs)
        for idx, value in values.items():
            base = node.inputs[idx] if idx < len(node.inputs) and node.inputs[idx] else f"{node.name}_in{idx}"
            while len(node.inputs) <= idx:
                node.inputs.append("")
            node.inputs[idx] = graph.add_constant(f"{base}_packed", np.asarray(value))
        changed += 1
    graph.prune_constants()
    return changed
