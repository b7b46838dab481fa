"""ge.proto.GraphDef -> GraphPlan, checking everything a hostile file could get wrong."""
from __future__ import annotations

from typing import Any

from omrt.constants import (
    ACL_ERROR_GE_EXEC_LOAD_MODEL_PARTITION_FAILED,
    ACL_ERROR_GE_EXEC_LOAD_WEIGHT_PARTITION_FAILED,
    ACL_ERROR_GE_EXEC_MODEL_ADDR_INVALID,
)
from omrt.errors import OmrtError
from omrt.om.address import AddressMap
from omrt.om.attrs import attrs_from_map, from_attr
from omrt.om.graph_writer import ALIAS_ATTR, CONST, DATA, NETOUTPUT, lanes_problem
from omrt.om.model import GraphPlan, Location, OpPlan, Region, TensorRef
from omrt.om.proto import ge_ir_pb2 as ge
from omrt.om.tensors import read_desc


def _bad(msg: str) -> OmrtError:
    return OmrtError(ACL_ERROR_GE_EXEC_LOAD_MODEL_PARTITION_FAILED, msg)


def int_attr(m, key: str, where: str, *, default: int | None = None) -> int:
    """A required (or defaulted) non-negative int attribute."""
    if key not in m:
        if default is not None:
            return default
        raise _bad(f"{where}: missing attribute {key!r}")
    if m[key].WhichOneof("value") != "i" or m[key].i < 0:
        raise _bad(f"{where}: attribute {key!r} must be a non-negative int")
    return int(m[key].i)


class GraphDecoder:
    def __init__(self, g: ge.GraphDef, weight_size: int) -> None:
        self.g = g
        self.weight_size = weight_size
        self.where = f"graph {g.name!r}"
        self.memory_size = int_attr(g.attr, "memory_size", self.where)
        self.lanes = int_attr(g.attr, "lanes", self.where, default=1)
        self.outputs_of: dict[str, list[TensorRef]] = {}
        self.op_names = set()
        for op in g.op:
            if op.name in self.op_names:
                raise _bad(f"{self.where}: duplicate op name {op.name!r}")
            self.op_names.add(op.name)

    def decode(self) -> GraphPlan:
        data_ops = self._data_ops()
        netout = self._netoutput()
        in_descs = [read_desc(op.output_desc[0]) for op in data_ops]
        out_descs = [read_desc(td) for td in netout.input_desc]
        problem = lanes_problem(self.lanes, self.memory_size, in_descs + out_descs)
        if problem is not None:
            raise _bad(f"{self.where}: {problem}")
        self.lane_memory = self.memory_size // self.lanes
        self.addr = AddressMap.build(self.lane_memory, in_descs, out_descs)
        inputs_by_op: dict[str, int] = {op.name: i for i, op in enumerate(data_ops)}
        inputs: list[TensorRef | None] = [None] * len(data_ops)
        constants: list[TensorRef] = []
        ops: list[OpPlan] = []
        outputs: list[TensorRef] = []
        for op in self.g.op:
            if op.type == DATA:
                ref = self._single_output(op, self.addr.decode(op.output_i[0], read_desc(op.output_desc[0]).nbytes,
                                                               f"Data op {op.name!r}"))
                inputs[inputs_by_op[op.name]] = ref
            elif op.type == CONST:
                constants.append(self._const(op))
            elif op.type == NETOUTPUT:
                outputs = [r for r in self._inputs(op) if r is not None]
                self.outputs_of[op.name] = []
            else:
                ops.append(self._compute(op))
        batch = int_attr(self.g.attr, "batch", self.where) if "batch" in self.g.attr else None
        return GraphPlan(self.g.name, inputs, outputs, constants, ops, self.memory_size, batch, self.lanes)

    def _data_ops(self) -> list[ge.OpDef]:
        by_index: dict[int, ge.OpDef] = {}
        for op in self.g.op:
            if op.type != DATA:
                continue
            idx = int_attr(op.attr, "index", f"Data op {op.name!r}")
            if idx in by_index:
                raise _bad(f"{self.where}: Data ops {by_index[idx].name!r} and {op.name!r} share index {idx}")
            if len(op.output_desc) != 1 or len(op.output_i) != 1 or op.input:
                raise _bad(f"Data op {op.name!r} must have no inputs and exactly one output")
            by_index[idx] = op
        if sorted(by_index) != list(range(len(by_index))):
            raise _bad(f"{self.where}: Data op indices {sorted(by_index)} are not 0..{len(by_index) - 1}")
        return [by_index[i] for i in range(len(by_index))]

    def _netoutput(self) -> ge.OpDef:
        outs = [op for op in self.g.op if op.type == NETOUTPUT]
        if len(outs) != 1 or self.g.op[len(self.g.op) - 1].type != NETOUTPUT:
            raise _bad(f"{self.where}: needs exactly one NetOutput op, as its last op")
        if "" in outs[0].input:
            raise _bad(f"{self.where}: NetOutput has an empty input")
        return outs[0]

    def _single_output(self, op: ge.OpDef, loc: Location) -> TensorRef:
        ref = TensorRef(read_desc(op.output_desc[0]), loc)
        self.outputs_of[op.name] = [ref]
        return ref

    def _const(self, op: ge.OpDef) -> TensorRef:
        where = f"Const op {op.name!r}"
        if op.input or len(op.output_desc) != 1 or len(op.output_i) != 1:
            raise _bad(f"{where} must have no inputs and exactly one output")
        if "value" not in op.attr or op.attr["value"].WhichOneof("value") != "t":
            raise _bad(f"{where}: missing tensor attribute 'value'")
        t = op.attr["value"].t
        desc = read_desc(op.output_desc[0])
        if read_desc(t.desc) != desc or t.data:
            raise _bad(f"{where}: 'value' must describe the output and carry no inline data")
        off = t.desc.data_offset
        if t.desc.weight_size != desc.nbytes or op.output_i[0] != off:
            raise _bad(f"{where}: weight_size/data_offset disagree with the output")
        if not (0 <= off and off + desc.nbytes <= self.weight_size):
            raise OmrtError(ACL_ERROR_GE_EXEC_LOAD_WEIGHT_PARTITION_FAILED,
                            f"{where}: bytes [{off}, {off + desc.nbytes}) outside weights of {self.weight_size}")
        return self._single_output(op, Location(Region.WEIGHT, off))

    def _inputs(self, op: ge.OpDef) -> list[TensorRef | None]:
        n = len(op.input)
        if not (len(op.input_desc) == len(op.input_i) == n and len(op.is_input_const) in (0, n)):
            raise _bad(f"op {op.name!r}: input, input_desc, input_i and is_input_const lengths differ")
        refs: list[TensorRef | None] = []
        for k in range(n):
            refs.append(self._input(op, k))
        return refs

    def _input(self, op: ge.OpDef, k: int) -> TensorRef | None:
        what = f"op {op.name!r} input {k}"
        src = op.input[k]
        if src == "":
            if op.input_desc[k].dtype != ge.DT_UNDEFINED:
                raise _bad(f"{what}: an absent input must have dtype DT_UNDEFINED")
            return None
        producer, sep, idx_text = src.rpartition(":")
        if not sep or not idx_text.isdigit():
            raise _bad(f"{what}: {src!r} is not 'op:index'")
        if producer not in self.outputs_of:
            state = "comes later (a cycle)" if producer in self.op_names else "does not exist"
            raise _bad(f"{what}: producer {producer!r} {state}")
        produced = self.outputs_of[producer]
        idx = int(idx_text)
        if idx >= len(produced):
            raise _bad(f"{what}: {producer!r} has no output {idx}")
        desc = read_desc(op.input_desc[k])
        const = bool(op.is_input_const[k]) if op.is_input_const else False
        addr = op.input_i[k]
        if const:
            if not (0 <= addr and addr + desc.nbytes <= self.weight_size):
                raise OmrtError(ACL_ERROR_GE_EXEC_LOAD_WEIGHT_PARTITION_FAILED,
                                f"{what}: weight bytes [{addr}, {addr + desc.nbytes}) outside {self.weight_size}")
            loc = Location(Region.WEIGHT, addr)
        else:
            loc = self.addr.decode(addr, desc.nbytes, what)
        ref = TensorRef(desc, loc)
        if ref != produced[idx]:
            raise _bad(f"{what}: tensor or address differs from output {idx} of {producer!r}")
        return ref

    def _compute(self, op: ge.OpDef) -> OpPlan:
        what = f"op {op.name!r}"
        inputs = self._inputs(op)
        if len(op.output_desc) != len(op.output_i):
            raise _bad(f"{what}: output_desc and output_i lengths differ")
        outputs = []
        for k, td in enumerate(op.output_desc):
            desc = read_desc(td)
            outputs.append(TensorRef(desc, self.addr.decode(op.output_i[k], desc.nbytes, f"{what} output {k}")))
        if len(op.workspace) != len(op.workspace_bytes):
            raise _bad(f"{what}: workspace and workspace_bytes lengths differ")
        workspace = []
        for off, size in zip(op.workspace, op.workspace_bytes):
            if not (0 <= off and 0 <= size and off + size <= self.lane_memory):
                raise OmrtError(ACL_ERROR_GE_EXEC_MODEL_ADDR_INVALID,
                                f"{what}: workspace [{off}, {off + size}) outside work memory [0, {self.lane_memory})")
            workspace.append((int(off), int(size)))
        attrs: dict[str, Any] = attrs_from_map(op.attr)
        alias = False
        if ALIAS_ATTR in attrs:
            alias = attrs.pop(ALIAS_ATTR)
            if not isinstance(alias, bool):
                raise _bad(f"{what}: {ALIAS_ATTR} must be a bool")
        self.outputs_of[op.name] = outputs
        return OpPlan(op.name, op.type, attrs, inputs, outputs, workspace, alias)


def decode_graph(g: ge.GraphDef, weight_size: int) -> GraphPlan:
    """The plan a GraphDef describes, or OmrtError naming the first thing wrong with it."""
    return GraphDecoder(g, weight_size).decode()


def bool_attr(m, key: str) -> bool:
    return key in m and m[key].WhichOneof("value") == "b" and m[key].b


__all__ = ["decode_graph", "int_attr", "bool_attr", "from_attr"]
