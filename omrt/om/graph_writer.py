"""GraphPlan -> ge.proto.GraphDef in GE's conventions: Data ops, Const ops, compute ops, NetOutput."""
from __future__ import annotations

from omrt.constants import ACL_ERROR_GE_EXEC_MODEL_ADDR_INVALID, ACL_ERROR_GE_PARAM_INVALID
from omrt.errors import OmrtError
from omrt.om.address import AddressMap
from omrt.om.attrs import attrs_to_map, to_attr
from omrt.om.model import GraphPlan, OpPlan, Region, TensorDesc, TensorRef
from omrt.om.proto import ge_ir_pb2 as ge
from omrt.om.tensors import fill_desc

DATA, CONST, NETOUTPUT = "Data", "Const", "NetOutput"
RESERVED_TYPES = frozenset({DATA, CONST, NETOUTPUT})
ALIAS_ATTR = "_zero_copy_alias"
ABSENT_ADDR = -1


def _bad(msg: str) -> OmrtError:
    return OmrtError(ACL_ERROR_GE_PARAM_INVALID, msg)


def lanes_problem(lanes: int, memory_size: int, io: list[TensorDesc]) -> str | None:
    """What is wrong with a plan's batch lanes, if anything: the writer and the reader refuse the same."""
    if lanes < 1 or memory_size % lanes:
        return f"lanes {lanes} must be at least 1 and divide memory_size {memory_size}"
    if lanes > 1 and any(not d.shape for d in io):
        return "a plan in lanes needs a batch dim on every input and output"
    return None


class _Names:
    """Op names that stay unique: compute ops keep theirs, generated ops get a free variant."""

    def __init__(self, ops: list[OpPlan]) -> None:
        self.used: set[str] = set()
        for op in ops:
            if op.name in self.used:
                raise _bad(f"duplicate op name {op.name!r}")
            self.used.add(op.name)

    def fresh(self, base: str) -> str:
        name, k = base, 0
        while name in self.used:
            k += 1
            name = f"{base}_{k}"
        self.used.add(name)
        return name


class GraphEncoder:
    """Encodes one plan; `producers` maps tensor name -> (op name, output index, TensorRef)."""

    def __init__(self, plan: GraphPlan, weight_size: int) -> None:
        self.plan = plan
        self.weight_size = weight_size
        self.addr = AddressMap.build(plan.lane_memory, [r.desc for r in plan.inputs], [r.desc for r in plan.outputs])
        self.names = _Names(plan.ops)
        self.producers: dict[str, tuple[str, int, TensorRef]] = {}
        self.graph = ge.GraphDef(name=plan.name)

    def encode(self) -> ge.GraphDef:
        g = self.graph
        g.attr["memory_size"].i = self.plan.memory_size
        if self.plan.batch is not None:
            g.attr["batch"].i = self.plan.batch
        if self.plan.lanes != 1:
            g.attr["lanes"].i = self.plan.lanes
        for i, ref in enumerate(self.plan.inputs):
            op = self._new_op(self.names.fresh(ref.desc.name), DATA)
            op.attr["index"].i = i
            self._add_output(op, ref, f"model input {i}")
            g.input.append(f"{op.name}:0")
        for ref in self.plan.constants:
            self._add_const(ref)
        for op in self.plan.ops:
            self._add_compute(op)
        out = self._new_op(self.names.fresh(NETOUTPUT), NETOUTPUT)
        for j, ref in enumerate(self.plan.outputs):
            self._add_input(out, ref, f"model output {j}")
            g.output.append(out.input[-1])
        return g

    def _new_op(self, name: str, op_type: str) -> ge.OpDef:
        op = self.graph.op.add(name=name, type=op_type)
        op.id = len(self.graph.op) - 1
        return op

    def _register(self, op: ge.OpDef, ref: TensorRef) -> None:
        name = ref.desc.name
        if name in self.producers:
            raise _bad(f"tensor {name!r} is produced twice (by {self.producers[name][0]!r} and {op.name!r})")
        self.producers[name] = (op.name, len(op.output_desc) - 1, ref)

    def _add_output(self, op: ge.OpDef, ref: TensorRef, what: str) -> None:
        fill_desc(op.output_desc.add(), ref.desc)
        op.output_i.append(self.addr.encode(ref.loc, ref.desc.nbytes, what))
        self._register(op, ref)

    def _add_const(self, ref: TensorRef) -> None:
        if ref.loc.region != Region.WEIGHT:
            raise _bad(f"constant {ref.desc.name!r} is not in weight memory")
        off, n = ref.loc.offset, ref.desc.nbytes
        if not (0 <= off and off + n <= self.weight_size):
            raise OmrtError(ACL_ERROR_GE_EXEC_MODEL_ADDR_INVALID,
                            f"constant {ref.desc.name!r}: bytes [{off}, {off + n}) outside weights of {self.weight_size}")
        op = self._new_op(self.names.fresh(ref.desc.name), CONST)
        t = op.attr["value"].t
        fill_desc(t.desc, ref.desc)
        t.desc.data_offset = off
        t.desc.weight_size = n
        fill_desc(op.output_desc.add(), ref.desc)
        op.output_i.append(off)
        self._register(op, ref)

    def _add_input(self, op: ge.OpDef, ref: TensorRef | None, what: str) -> None:
        if ref is None:
            op.input.append("")
            op.input_desc.add()
            op.input_i.append(ABSENT_ADDR)
            op.is_input_const.append(False)
            return
        found = self.producers.get(ref.desc.name)
        if found is None:
            raise _bad(f"{what}: tensor {ref.desc.name!r} has no producer before it")
        producer, index, produced = found
        if produced != ref:
            raise _bad(f"{what}: tensor {ref.desc.name!r} differs from what {producer!r} produces")
        op.input.append(f"{producer}:{index}")
        fill_desc(op.input_desc.add(), ref.desc)
        const = ref.loc.region == Region.WEIGHT
        op.is_input_const.append(const)
        op.input_i.append(ref.loc.offset if const else self.addr.encode(ref.loc, ref.desc.nbytes, what))

    def _add_compute(self, plan_op: OpPlan) -> None:
        if plan_op.op_type in RESERVED_TYPES:
            raise _bad(f"op {plan_op.name!r}: type {plan_op.op_type!r} is reserved for graph structure")
        if ALIAS_ATTR in plan_op.attrs:
            raise _bad(f"op {plan_op.name!r}: attribute {ALIAS_ATTR!r} is reserved")
        op = self._new_op(plan_op.name, plan_op.op_type)
        attrs_to_map(plan_op.attrs, op.attr)
        if plan_op.alias:
            to_attr(ALIAS_ATTR, True, op.attr[ALIAS_ATTR])
        for k, ref in enumerate(plan_op.inputs):
            self._add_input(op, ref, f"op {plan_op.name!r} input {k}")
        for k, ref in enumerate(plan_op.outputs):
            self._add_output(op, ref, f"op {plan_op.name!r} output {k}")
        for k, (off, size) in enumerate(plan_op.workspace):
            if not (0 <= off and 0 <= size and off + size <= self.plan.lane_memory):
                raise OmrtError(ACL_ERROR_GE_EXEC_MODEL_ADDR_INVALID,
                                f"op {plan_op.name!r} workspace {k}: [{off}, {off + size}) outside work memory "
                                f"[0, {self.plan.lane_memory})")
            op.workspace.append(off)
            op.workspace_bytes.append(size)


def encode_graph(plan: GraphPlan, weight_size: int) -> tuple[ge.GraphDef, AddressMap]:
    """The GraphDef of one plan and the address map it was encoded with."""
    enc = GraphEncoder(plan, weight_size)
    return enc.encode(), enc.addr
