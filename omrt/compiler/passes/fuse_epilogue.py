"""Epilogue fusion: bias, residual add and activation done by the producer as it writes its output.

Each fused op's output is written once instead of being re-read and re-written by a separate
elementwise op. Attribute conventions (read by the kernels, see omrt/kernels/epilogue.py):
  * `_bias`=1 on MatMul: input 2 is a 1-D bias of length N.
  * `_residual`=1: the residual tensor is input 3 (Conv X,W,B / Gemm A,B,C / MatMul A,B,bias;
    absent optional inputs before it are "").
  * `_activation`, `_activation_params`: applied last, after bias and residual.
"""
from __future__ import annotations

import numpy as np

from omrt.compiler.ir import Graph, Node

ACT_PRODUCERS = ("Conv", "ConvTranspose", "Gemm", "MatMul", "BatchNormalization")
RESIDUAL_PRODUCERS = ("Conv", "Gemm", "MatMul")
RESIDUAL_INDEX = 3
SIMPLE_ACTIVATIONS = ("Relu", "Sigmoid", "HardSwish", "Tanh", "Softplus")


def _single_use(graph: Graph, name: str, consumers: dict[str, list[Node]]) -> bool:
    return graph.uses(name, consumers) == 1 and name not in graph.outputs


def _bump(stats: dict[str, int], key: str) -> None:
    stats[key] = stats.get(key, 0) + 1


def _free_epilogue(node: Node) -> bool:
    return not node.attrs.get("_activation") and not node.attrs.get("_residual")


def activation_params(graph: Graph, act: Node) -> list[float] | None:
    """The fused parameter list for an activation node, or None if it cannot be fused."""
    op, a = act.op_type, act.attrs
    if op in SIMPLE_ACTIVATIONS:
        return []
    if op == "Gelu":
        return [] if a.get("approximate", "none") == "none" else None
    if op == "LeakyRelu":
        return [float(a.get("alpha", 0.01))]
    if op == "HardSigmoid":
        return [float(a.get("alpha", 0.2)), float(a.get("beta", 0.5))]
    if op == "Elu":
        return [float(a.get("alpha", 1.0))]
    if op == "Selu":
        return [float(a.get("alpha", 1.67326319217681884765625)), float(a.get("gamma", 1.05070102214813232421875))]
    if op == "Clip":
        if "min" in a or "max" in a:
            return [float(a.get("min", -np.inf)), float(a.get("max", np.inf))]
        bounds = []
        for k, default in ((1, -np.inf), (2, np.inf)):
            name = act.inputs[k] if len(act.inputs) > k else ""
            if name and name not in graph.constants:
                return None
            bounds.append(float(graph.constants[name].reshape(-1)[0]) if name else default)
        return bounds
    return None


def fuse_epilogues(graph: Graph, stats: dict[str, int]) -> int:
    """One sweep of bias, residual and activation fusion; returns how many were made."""
    made = 0
    for node in list(graph.nodes):
        if node not in graph.nodes:
            continue
        producers, consumers = graph.producers(), graph.consumers()
        if node.op_type == "Add" and _fuse_bias(graph, node, producers, consumers):
            _bump(stats, "bias")
        elif node.op_type in ("Add", "Sum") and _fuse_residual(graph, node, producers, consumers):
            _bump(stats, "residual")
        elif _fuse_activation(graph, node, producers, consumers):
            _bump(stats, "activation_" + node.op_type.lower())
        else:
            continue
        made += 1
    if made:
        graph.prune_constants()
    return made


def _fuse_bias(graph: Graph, add: Node, producers: dict[str, Node], consumers: dict[str, list[Node]]) -> bool:
    if len(add.inputs) != 2:
        return False
    for src, const in (add.inputs, add.inputs[::-1]):
        p = producers.get(src)
        if p is None or p.op_type != "MatMul" or const not in graph.constants or src in graph.constants:
            continue
        if p.attrs.get("_bias") or not _free_epilogue(p) or not _single_use(graph, src, consumers):
            continue
        out_shape, value = graph.shape(src), graph.constants[const]
        if graph.shape(add.outputs[0]) != out_shape or not out_shape or value.dtype != graph.dtype(src):
            continue
        n = out_shape[-1]
        if value.size != n or value.ndim > len(out_shape) or (value.ndim and value.shape[-1] != n):
            continue
        p.inputs = p.inputs[:2] + [graph.add_constant(const, value.reshape(n))]
        p.attrs["_bias"] = 1
        p.outputs[0] = add.outputs[0]
        graph.nodes.remove(add)
        return True
    return False


def _fuse_residual(graph: Graph, add: Node, producers: dict[str, Node], consumers: dict[str, list[Node]]) -> bool:
    if len(add.inputs) != 2 or add.inputs[0] == add.inputs[1]:
        return False
    out = add.outputs[0]
    if any(i in graph.constants or graph.shape(i) != graph.shape(out) or graph.dtype(i) != graph.dtype(out)
           for i in add.inputs):
        return False
    order = {id(n): k for k, n in enumerate(graph.nodes)}
    candidates = []
    for k, src in enumerate(add.inputs):
        p = producers.get(src)
        if p is not None and p.op_type in RESIDUAL_PRODUCERS and _free_epilogue(p) \
                and _single_use(graph, src, consumers) and len(p.outputs) == 1:
            candidates.append((order[id(p)], p, add.inputs[1 - k]))
    if not candidates:
        return False
    _, p, other = max(candidates, key=lambda c: c[0])
    p.inputs = (p.inputs + [""] * RESIDUAL_INDEX)[:RESIDUAL_INDEX] + [other]
    p.attrs["_residual"] = 1
    p.outputs[0] = out
    graph.nodes.remove(add)
    graph.toposort()
    return True


def _fuse_activation(graph: Graph, act: Node, producers: dict[str, Node], consumers: dict[str, list[Node]]) -> bool:
    if not act.inputs or len([o for o in act.outputs if o]) != 1:
        return False
    p = producers.get(act.inputs[0])
    if p is None or p.op_type not in ACT_PRODUCERS or p.attrs.get("_activation") or len(p.outputs) != 1:
        return False
    if not _single_use(graph, act.inputs[0], consumers) or graph.dtype(act.inputs[0]).kind != "f":
        return False
    params = activation_params(graph, act)
    if params is None:
        return False
    p.attrs["_activation"] = act.op_type
    p.attrs["_activation_params"] = params
    p.outputs[0] = act.outputs[0]
    graph.nodes.remove(act)
    return True
