"""The kernel's view of an IR node: an OpSpec with types, shapes and constant inputs."""
from __future__ import annotations

from omrt.compiler.ir import Graph, Node
from omrt.kernels import OpSpec, TensorSpec


def present_outputs(node: Node) -> list[str]:
    """Outputs up to the last one that exists (absent trailing optionals dropped)."""
    outs = list(node.outputs)
    while outs and not outs[-1]:
        outs.pop()
    return outs


def op_spec(graph: Graph, node: Node) -> OpSpec:
    def tspec(name: str) -> TensorSpec | None:
        if not name:
            return None
        info = graph.tensors[name]
        return TensorSpec(tuple(info.shape), info.dtype)  # type: ignore[arg-type]

    consts = {i: graph.constants[name] for i, name in enumerate(node.inputs) if name in graph.constants}
    outputs = [tspec(o) for o in present_outputs(node)]
    return OpSpec(node.op_type, dict(node.attrs), [tspec(i) for i in node.inputs],
                  outputs, consts, node.name)  # type: ignore[arg-type]
