"""Which tensors share bytes: zero-copy views and in-place elementwise ops.

Tensors that share bytes are merged into one group (union-find); the group becomes one block for
the planner. Model inputs are never written, so nothing is done in place on them; a view of a
model input is itself a view into the caller's input buffer.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from omrt.compiler.ir import Graph

VIEW_OPS = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout"}

# Ops whose kernels read each input element before writing the output element at the same place,
# so the output may occupy an input's bytes. N-ary ops (Sum, Max, Min, Mean) only on inputs 0/1.
INPLACE_OPS = {
    "Relu", "Abs", "Neg", "Exp", "Log", "Sqrt", "Reciprocal", "Floor", "Ceil", "Round", "Sign",
    "Sin", "Cos", "Tanh", "Sigmoid", "Erf", "Not", "Clip",
    "Add", "Sub", "Mul", "Div", "Pow", "And", "Or", "Xor", "Sum", "Max", "Min", "Mean",
}


@dataclass
class Sharing:
    """Groups of tensors that share bytes, and which ops are views."""

    parent: dict[str, str] = field(default_factory=dict)
    input_of: dict[str, int] = field(default_factory=dict)   # tensor -> model input index it views
    views: set[int] = field(default_factory=set)              # indices of view (alias) ops
    inplace: int = 0

    def find(self, name: str) -> str:
        root = name
        while self.parent.get(root, root) != root:
            root = self.parent[root]
        while name != root:
            self.parent[name], name = root, self.parent.get(name, name)
        return root

    def union(self, keep: str, other: str) -> None:
        a, b = self.find(keep), self.find(other)
        if a != b:
            self.parent[b] = a


def find_views(graph: Graph, work: set[str]) -> Sharing:
    """Mark zero-copy views; `work` is the set of tensors that live in work memory."""
    share = Sharing()
    share.input_of = {name: k for k, name in enumerate(graph.inputs)}
    outputs = set(graph.outputs)
    for k, node in enumerate(graph.nodes):
        if node.op_type not in VIEW_OPS or not node.inputs or not node.inputs[0]:
            continue
        src, dst = node.inputs[0], node.outputs[0]
        if dst in outputs:
            continue
        if node.op_type == "Dropout" and len(node.outputs) > 1 and node.outputs[1]:
            continue
        if src in share.input_of:
            share.input_of[dst] = share.input_of[src]
        elif src in work:
            share.union(src, dst)
        else:
            continue
        share.views.add(k)
    return share


def find_inplace(graph: Graph, share: Sharing, work: set[str], last: dict[str, int]) -> None:
    """Let elementwise outputs take over a work input whose group is read for the last time.

    `last` maps group root -> last step that reads it; it is updated as groups merge.
    """
    for k, node in enumerate(graph.nodes):
        if node.op_type not in INPLACE_OPS or k in share.views:
            continue
        out = node.outputs[0] if node.outputs else ""
        if out not in work:
            continue
        info = graph.tensors[out]
        slots = node.inputs[:2] if node.op_type in ("Sum", "Max", "Min", "Mean") else node.inputs
        for name in slots:
            if name not in work or graph.tensors[name].shape != info.shape or graph.tensors[name].dtype != info.dtype:
                continue
            root, out_root = share.find(name), share.find(out)
            if root == out_root or last.get(root, -1) != k:
                continue
            merged_last = max(last.get(root, k), last.get(out_root, k))
            share.union(root, out_root)
            last[share.find(root)] = merged_last
            share.inplace += 1
            break
