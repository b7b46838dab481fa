"""Per-channel affine ops folded into weights: BatchNormalization, and constant Mul/Add.

y = (x - mean) / sqrt(var + eps) * scale + bias is a per-output-channel scale and shift, so after
a Conv/ConvTranspose/Gemm it goes into the weights and bias, and after anything else a chain of
them collapses into one BatchNormalization.
"""
from __future__ import annotations

import numpy as np

from omrt.compiler.ir import Graph, Node

PRODUCERS = ("Conv", "ConvTranspose", "Gemm")


def _channels(graph: Graph, node: Node) -> int:
    """Output channels of a weight-carrying producer."""
    return graph.shape(node.outputs[0])[1]


def _weights_ok(graph: Graph, node: Node) -> bool:
    if node.attrs.get("_activation") or node.attrs.get("_residual") or len(node.outputs) != 1:
        return False
    if node.inputs[1] not in graph.constants:
        return False
    if len(node.inputs) > 2 and node.inputs[2] and node.inputs[2] not in graph.constants:
        return False
    return np.issubdtype(graph.dtype(node.outputs[0]), np.floating)


def _scale_shift(graph: Graph, node: Node, scale: np.ndarray | None, shift: np.ndarray | None) -> None:
    """producer(x) -> producer(x) * scale + shift, per output channel, into new constants."""
    w = graph.constants[node.inputs[1]]
    dtype = graph.dtype(node.outputs[0])
    channels = _channels(graph, node)
    s = np.ones(channels, np.float64) if scale is None else scale.astype(np.float64)
    t = np.zeros(channels, np.float64) if shift is None else shift.astype(np.float64)
    op = node.op_type
    if op == "Conv":
        w = w * s.reshape((-1,) + (1,) * (w.ndim - 1))
    elif op == "ConvTranspose":
        group = int(node.attrs.get("group", 1))
        ws = w.reshape((group, w.shape[0] // group, w.shape[1]) + w.shape[2:])
        ws = ws * s.reshape((group, 1, w.shape[1]) + (1,) * (w.ndim - 2))
        w = ws.reshape(w.shape)
    else:  # Gemm: Y = alpha * A' B' + beta * C
        w = w * (s.reshape(-1, 1) if node.attrs.get("transB", 0) else s.reshape(1, -1))
    if op == "Gemm":
        beta = float(node.attrs.get("beta", 1.0))
        has_c = len(node.inputs) > 2 and node.inputs[2]
        c = beta * graph.constants[node.inputs[2]].astype(np.float64) if has_c else np.zeros(channels)
        bias = c * s + t
        node.attrs["beta"] = 1.0
    else:
        has_b = len(node.inputs) > 2 and node.inputs[2]
        b = graph.constants[node.inputs[2]].astype(np.float64) if has_b else np.zeros(channels)
        bias = b * s + t
    node.inputs[1] = graph.add_constant(node.inputs[1], w.astype(dtype))
    new_bias = graph.add_constant(f"{node.name}_bias", bias.astype(dtype))
    if len(node.inputs) > 2:
        node.inputs[2] = new_bias
    else:
        node.inputs.append(new_bias)


def _bn_affine(graph: Graph, bn: Node) -> tuple[np.ndarray, np.ndarray] | None:
    """The BN as (scale, shift), or None when it is not a pure affine map (it carries a fused
    activation, or its statistics are not constants)."""
    return None if bn.attrs.get("_activation") else bn_scale_shift(graph, bn)


def bn_scale_shift(graph: Graph, bn: Node) -> tuple[np.ndarray, np.ndarray] | None:
    """The BN's own (scale, shift) per channel, before any fused activation; None when its
    statistics are not constants or it also returns running statistics."""
    if not all(i in graph.constants for i in bn.inputs[1:5]) or any(o for o in bn.outputs[1:]):
        return None
    scale, bias, mean, var = (graph.constants[i].astype(np.float64) for i in bn.inputs[1:5])
    s = scale / np.sqrt(var + float(bn.attrs.get("epsilon", 1e-5)))
    return s, bias - mean * s


def per_channel(graph: Graph, const: str, out: str) -> np.ndarray | None:
    """The constant as a length-C vector if it broadcasts over `out` along axis 1 only."""
    value = graph.constants[const]
    shape = graph.shape(out)
    if len(shape) < 2 or value.ndim > len(shape):
        return None
    full = (1,) * (len(shape) - value.ndim) + tuple(value.shape)
    if any(d != 1 for k, d in enumerate(full) if k != 1) or full[1] not in (1, shape[1]):
        return None
    return np.broadcast_to(value.reshape(-1), (shape[1],)).astype(np.float64)


def _const_operand(graph: Graph, node: Node) -> tuple[str, str] | None:
    """(variable input, constant input) of a binary Mul/Add, either order."""
    if len(node.inputs) != 2:
        return None
    a, b = node.inputs
    if b in graph.constants and a not in graph.constants:
        return a, b
    if a in graph.constants and b not in graph.constants:
        return b, a
    return None


def _single_use(graph: Graph, name: str, consumers: dict[str, list[Node]]) -> bool:
    return graph.uses(name, consumers) == 1 and name not in graph.outputs


def _absorb(graph: Graph, producer: Node, node: Node) -> None:
    """`node` disappears; its output is now written by `producer`."""
    producer.outputs[0] = node.outputs[0]
    graph.nodes.remove(node)


def fuse_affine(graph: Graph, stats: dict[str, int]) -> int:
    """One sweep of every per-channel fusion; returns how many were made."""
    made = 0
    for node in list(graph.nodes):
        if node not in graph.nodes:
            continue
        producers, consumers = graph.producers(), graph.consumers()
        if node.op_type == "BatchNormalization":
            affine = _bn_affine(graph, node)
            if affine is None or graph.dtype(node.outputs[0]).kind != "f":
                continue
            src = node.inputs[0]
            p = producers.get(src)
            if p is not None and p.op_type in PRODUCERS and _weights_ok(graph, p) \
                    and _single_use(graph, src, consumers) and len(graph.shape(src)) >= 2:
                _scale_shift(graph, p, *affine)
                _absorb(graph, p, node)
                stats["bn_into_" + p.op_type.lower()] = stats.get("bn_into_" + p.op_type.lower(), 0) + 1
                made += 1
        elif node.op_type in ("Mul", "Add"):
            pair = _const_operand(graph, node)
            if pair is None or graph.dtype(node.outputs[0]).kind != "f":
                continue
            src, const = pair
            if graph.shape(src) != graph.shape(node.outputs[0]):
                continue
            vec = per_channel(graph, const, node.outputs[0])
            if vec is None:
                continue
            p = producers.get(src)
            if p is not None and not _single_use(graph, src, consumers):
                p = None
            is_mul = node.op_type == "Mul"
            if p is not None and p.op_type == "Conv" and _weights_ok(graph, p):
                _scale_shift(graph, p, vec if is_mul else None, None if is_mul else vec)
                _absorb(graph, p, node)
                key = f"{node.op_type.lower()}_into_conv"
            elif p is not None and p.op_type == "BatchNormalization" and _bn_affine(graph, p) is not None:
                scale, shift = _bn_affine(graph, p)  # type: ignore[misc]
                set_bn(graph, p, scale * vec if is_mul else scale, shift * vec if is_mul else shift + vec)
                _absorb(graph, p, node)
                key = f"{node.op_type.lower()}_into_bn"
            elif is_mul:
                nxt = consumers.get(node.outputs[0], [])
                if len(nxt) != 1 or nxt[0].op_type != "Add" or not _single_use(graph, node.outputs[0], consumers):
                    continue
                add_pair = _const_operand(graph, nxt[0])
                if add_pair is None or add_pair[0] != node.outputs[0]:
                    continue
                add_vec = per_channel(graph, add_pair[1], nxt[0].outputs[0])
                if add_vec is None or graph.shape(nxt[0].outputs[0]) != graph.shape(src):
                    continue
                node.op_type, node.inputs, node.attrs = "BatchNormalization", [src], {}
                set_bn(graph, node, vec, add_vec)
                node.outputs = [nxt[0].outputs[0]]
                graph.nodes.remove(nxt[0])
                key = "mul_add_to_bn"
            else:
                continue
            stats[key] = stats.get(key, 0) + 1
            made += 1
    if made:
        graph.prune_constants()
    return made


def set_bn(graph: Graph, bn: Node, scale: np.ndarray, shift: np.ndarray) -> None:
    """Make `bn` compute x * scale + shift (mean 0, var 1, epsilon 0)."""
    dtype = graph.dtype(bn.outputs[0])
    c = len(scale)
    bn.attrs = {"epsilon": 0.0}
    bn.inputs = [bn.inputs[0],
                 graph.add_constant(f"{bn.name}_scale", scale.astype(dtype)),
                 graph.add_constant(f"{bn.name}_bias", shift.astype(dtype)),
                 graph.add_constant(f"{bn.name}_mean", np.zeros(c, dtype)),
                 graph.add_constant(f"{bn.name}_var", np.ones(c, dtype))]
    bn.outputs = bn.outputs[:1]
