"""Work-memory placement: blocks with lifetimes in execution steps, handed to the planner.

A block is a group of tensors sharing bytes (see alias.py), each at its offset inside the block;
it lives from the first step that writes any of them to the last step that reads any of them. Op
scratch lives only during its op.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from omrt.compiler.alias import Sharing, find_concats, find_inplace, find_views
from omrt.compiler.ir import Graph
from omrt.compiler.planner import Block, plan_memory

ALIGNMENT = 64


@dataclass
class Placement:
    share: Sharing
    work: set[str]
    offsets: dict[str, int]                         # work tensor -> offset
    workspace: dict[int, tuple[int, int]] = field(default_factory=dict)  # op index -> (offset, nbytes)
    size: int = 0
    lower_bound: int = 0
    naive: int = 0


def _nbytes(graph: Graph, name: str) -> int:
    info = graph.tensors[name]
    count = 1
    for d in info.shape:  # type: ignore[union-attr]
        count *= d
    return count * info.dtype.itemsize  # type: ignore[union-attr]


def place(graph: Graph, scratch: list[int], overwritable: list[tuple[int, ...]] | None = None) -> Placement:
    """Offsets for every work tensor and every op's scratch; `scratch[k]` is op k's bytes, and
    `overwritable[k]` the inputs whose bytes op k's kernel lets its output take (base.register)."""
    outputs, inputs = set(graph.outputs), set(graph.inputs)
    work = {o for n in graph.nodes for o in n.outputs if o and o not in outputs and o not in inputs}
    share = find_views(graph, work)
    work -= set(share.input_of)
    find_concats(graph, share, work, lambda name: _nbytes(graph, name), ALIGNMENT)

    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for k, node in enumerate(graph.nodes):
        for o in node.outputs:
            if o in work:
                first.setdefault(o, k)
                last.setdefault(o, k)
        for i in node.inputs:
            if i in work:
                last[i] = k
    group_last: dict[str, int] = {}
    for name in work:
        root = share.find(name)
        group_last[root] = max(group_last.get(root, -1), last[name])
    find_inplace(graph, share, work, group_last, overwritable)

    groups: dict[str, list[str]] = {}
    for name in work:
        groups.setdefault(share.find(name), []).append(name)
    blocks = []
    for root, members in groups.items():
        size = max(share.offset(m) + _nbytes(graph, m) for m in members)
        blocks.append(Block(("t", root), max(1, size),
                            min(first[m] for m in members), max(last[m] for m in members)))
    for k, nbytes in enumerate(scratch):
        if nbytes > 0:
            blocks.append(Block(("ws", str(k)), nbytes, k, k))
    plan = plan_memory(blocks, alignment=ALIGNMENT)
    offsets = {name: plan.offsets[("t", share.find(name))] + share.offset(name) for name in work}
    workspace = {k: (plan.offsets[("ws", str(k))], n) for k, n in enumerate(scratch) if n > 0}
    return Placement(share, work, offsets, workspace, plan.size, plan.lower_bound, plan.naive)
