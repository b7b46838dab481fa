"""Which tensors share bytes: zero-copy views, Concats written in place, ops written over an input.

Tensors that share bytes are merged into one group (union-find with byte offsets); the group
becomes one block for the planner, each tensor at its offset inside it. Model inputs are never
written, so nothing is done in place on them; a view of a model input is itself a view into the
caller's input buffer.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from omrt.compiler.ir import Graph
from omrt.kernels.base import OVERWRITES

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
    """Groups of tensors that share bytes, each tensor's byte offset in its group, and view ops."""

    parent: dict[str, str] = field(default_factory=dict)
    rel: dict[str, int] = field(default_factory=dict)         # byte offset of a tensor in its parent
    input_of: dict[str, int] = field(default_factory=dict)   # tensor -> model input index it views
    views: set[int] = field(default_factory=set)              # indices of view (alias) ops
    inplace: int = 0
    concats: int = 0

    def find(self, name: str) -> str:
        path = []
        root = name
        while self.parent.get(root, root) != root:
            path.append(root)
            root = self.parent[root]
        # path compression: offsets become relative to the root, deepest first
        for node in reversed(path):
            parent = self.parent[node]
            if parent != root:
                self.rel[node] = self.rel.get(node, 0) + self.rel.get(parent, 0)
            self.parent[node] = root
        return root

    def offset(self, name: str) -> int:
        """Byte offset of `name` from the start of its group."""
        return 0 if self.find(name) == name else self.rel.get(name, 0)

    def union(self, keep: str, other: str, delta: int = 0) -> None:
        """Put `other` at byte `delta` of `keep` (0: the same bytes), merging their groups."""
        a, b = self.find(keep), self.find(other)
        if a == b:
            return
        shift = self.offset(keep) + delta - self.offset(other)  # where b's group starts in a's
        if shift >= 0:
            self.parent[b], self.rel[b] = a, shift
        else:
            self.parent[a], self.rel[a] = b, -shift


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


def find_inplace(graph: Graph, share: Sharing, work: set[str], last: dict[str, int],
                 overwritable: list[tuple[int, ...]] | None = None) -> None:
    """Let an op's output take over a work input whose group is read for the last time: any input
    of an elementwise op, the inputs `overwritable[k]` of op k (a fused Conv's residual), which
    is then told which one it took (attribute OVERWRITES).

    `last` maps group root -> last step that reads it; it is updated as groups merge.
    """
    for k, node in enumerate(graph.nodes):
        chosen = overwritable[k] if overwritable else ()
        if (node.op_type not in INPLACE_OPS and not chosen) or k in share.views:
            continue
        out = node.outputs[0] if node.outputs else ""
        if out not in work:
            continue
        info = graph.tensors[out]
        if chosen:
            slots = [node.inputs[i] if i < len(node.inputs) else "" for i in chosen]
        else:
            slots = node.inputs[:2] if node.op_type in ("Sum", "Max", "Min", "Mean") else node.inputs
        for index, name in enumerate(slots):
            if name not in work or graph.tensors[name].shape != info.shape or graph.tensors[name].dtype != info.dtype:
                continue
            root, out_root = share.find(name), share.find(out)
            if root == out_root or last.get(root, -1) != k:
                continue
            if chosen and any(other in work and share.find(other) == root
                              for i, other in enumerate(node.inputs) if i != chosen[index]):
                continue  # read elsewhere by the op (a conv of the tensor it adds): not element for element
            merged_last = max(last.get(root, k), last.get(out_root, k))
            share.union(name, out)  # the output takes exactly the input's bytes
            last[share.find(root)] = merged_last
            share.inplace += 1
            if chosen:
                node.attrs[OVERWRITES] = chosen[index]
            break


def find_concats(graph: Graph, share: Sharing, work: set[str], nbytes: Callable[[str], int],
                  align: int) -> None:
    """Let each input of a Concat be written straight into its slice of the output.

    Applies where every slice is one contiguous run of bytes (all dims before the axis are 1, as
    for channel Concats at batch 1), starts on an `align` boundary, and every input is a work
    tensor that makes up its whole group (so chained Concats, DenseNet's growing feature maps,
    nest). The Concat becomes a view op.
    """
    outputs = set(graph.outputs)
    extent: dict[str, int] = {}

    def group_extent(root: str) -> int:
        return extent.get(root, nbytes(root))

    for k, node in enumerate(graph.nodes):
        if node.op_type != "Concat" or k in share.views or not node.outputs:
            continue
        out = node.outputs[0]
        if out not in work or out in outputs:
            continue
        shape = graph.tensors[out].shape
        axis = int(node.attrs.get("axis", 0)) % len(shape)
        if any(d != 1 for d in shape[:axis]):
            continue
        names = [i for i in node.inputs if i]
        roots = [share.find(i) for i in names]
        starts = [sum(nbytes(i) for i in names[:j]) for j in range(len(names))]
        if (len(set(roots)) != len(roots) or share.find(out) in roots
                or any(start % align for start in starts)
                or any(i not in work or share.offset(i) != 0 or group_extent(r) != nbytes(i)
                       for i, r in zip(names, roots))):
            continue
        for i, start in zip(names, starts):
            share.union(out, i, start)
        extent[share.find(out)] = max(group_extent(share.find(out)), nbytes(out))
        share.views.add(k)
        share.concats += 1
