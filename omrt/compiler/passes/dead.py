"""Dead-node removal: only nodes whose outputs reach a graph output are worth running."""
from __future__ import annotations

from omrt.compiler.ir import Graph


def remove_dead(graph: Graph) -> int:
    producer = graph.producers()
    live: set[int] = set()
    stack = [producer[o] for o in graph.outputs if o in producer]
    while stack:
        node = stack.pop()
        if id(node) in live:
            continue
        live.add(id(node))
        stack.extend(producer[i] for i in node.inputs if i in producer)
    removed = len(graph.nodes) - len(live)
    graph.nodes = [n for n in graph.nodes if id(n) in live]
    graph.prune_constants()
    return removed
