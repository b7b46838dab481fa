"""A light graph IR the passes rewrite: plain Python objects, no protobuf in the hot loops.

Tensors are named; `tensors` holds every known (shape, dtype), `constants` the values of the ones
that are known at compile time. An absent optional input is the empty name "".
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np


@dataclass(eq=False)
class Node:
    name: str
    op_type: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class TensorInfo:
    shape: tuple[int, ...] | None          # None: not known yet; dims may be None while unknown
    dtype: np.dtype | None

    @property
    def static(self) -> bool:
        return self.shape is not None and self.dtype is not None and all(
            isinstance(d, int) and d >= 0 for d in self.shape)


@dataclass
class Graph:
    name: str
    nodes: list[Node]
    inputs: list[str]
    outputs: list[str]
    tensors: dict[str, TensorInfo]
    constants: dict[str, np.ndarray]
    opset: int
    declared: dict[str, TensorInfo] = field(default_factory=dict)  # graph outputs' declared types
    _counter: itertools.count = field(default_factory=itertools.count, repr=False)

    def fresh(self, base: str) -> str:
        """A tensor or node name not used anywhere in the graph yet."""
        used = self.tensors.keys() | self.constants.keys() | {n.name for n in self.nodes}
        while True:
            name = f"{base}__omrt{next(self._counter)}"
            if name not in used:
                return name

    def add_constant(self, base: str, value: np.ndarray) -> str:
        name = self.fresh(base)
        self.set_constant(name, value)
        return name

    def set_constant(self, name: str, value: np.ndarray) -> None:
        value = np.require(value, requirements="C")
        self.constants[name] = value
        self.tensors[name] = TensorInfo(tuple(int(d) for d in value.shape), value.dtype)

    def producers(self) -> dict[str, Node]:
        return {o: n for n in self.nodes for o in n.outputs if o}

    def consumers(self) -> dict[str, list[Node]]:
        out: dict[str, list[Node]] = {}
        for n in self.nodes:
            for i in n.inputs:
                if i:
                    out.setdefault(i, []).append(n)
        return out

    def uses(self, name: str, consumers: dict[str, list[Node]]) -> int:
        """How many times `name` is read: by nodes (each slot) and as a graph output."""
        return sum(n.inputs.count(name) for n in consumers.get(name, [])) + self.outputs.count(name)

    def shape(self, name: str) -> tuple[int, ...]:
        return self.tensors[name].shape  # type: ignore[return-value]

    def dtype(self, name: str) -> np.dtype:
        return self.tensors[name].dtype  # type: ignore[return-value]

    def rename(self, old: str, new: str) -> None:
        """Every reader of `old` reads `new` instead (graph outputs included)."""
        for n in self.nodes:
            n.inputs = [new if i == old else i for i in n.inputs]
        self.outputs = [new if o == old else o for o in self.outputs]

    def prune_constants(self) -> None:
        """Forget constants no node or output reads any more."""
        used = {i for n in self.nodes for i in n.inputs} | set(self.outputs)
        for name in [c for c in self.constants if c not in used]:
            del self.constants[name]
            self.tensors.pop(name, None)

    def toposort(self) -> None:
        """Order nodes so each runs after its producers; stable for an already sorted list."""
        producer = self.producers()
        done: set[int] = set()
        order: list[Node] = []
        index = {id(n): k for k, n in enumerate(self.nodes)}

        def visit(start: Node) -> None:
            stack: list[tuple[Node, Iterable[str]]] = [(start, iter(start.inputs))]
            onstack = {id(start)}
            while stack:
                node, it = stack[-1]
                for name in it:
                    p = producer.get(name)
                    if p is not None and id(p) not in done:
                        if id(p) in onstack:
                            raise ValueError(f"cycle in graph at node {p.name}")
                        stack.append((p, iter(p.inputs)))
                        onstack.add(id(p))
                        break
                else:
                    stack.pop()
                    onstack.discard(id(node))
                    done.add(id(node))
                    order.append(node)

        for n in sorted(self.nodes, key=lambda n: index[id(n)]):
            if id(n) not in done:
                visit(n)
        self.nodes = order
