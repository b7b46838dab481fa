"""Bind an offline model's plan to memory once, then execute it by walking a list of calls.

At bind time every op becomes (kernel, input views, output views, scratch view) over work and
weight memory. Model inputs and outputs are the caller's buffers (zero copy); only their views are
rebound on execute, and bindings are cached by buffer address so a loop over the same buffers
rebinds nothing.
"""
from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from omrt.constants import ACL_ERROR_GE_PARAM_INVALID
from omrt.errors import OmrtError
from omrt.kernels import OpSpec, TensorSpec, build_kernel
from omrt.kernels.parallel import get_pool, serial_kernels
from omrt.kernels.ufunc_buffer import kernel_ufunc_buffer
from omrt.om.model import GraphPlan, OfflineModel, Region, TensorRef
from omrt.runtime.address import address_of, view_at

_IO_CACHE_SIZE = 8


def _typed(region: np.ndarray, ref: TensorRef) -> np.ndarray:
    desc = ref.desc
    nbytes = desc.nbytes
    start = ref.loc.offset
    return region[start:start + nbytes].view(desc.dtype).reshape(desc.shape)


def _spec(ref: TensorRef | None) -> TensorSpec | None:
    return None if ref is None else TensorSpec(tuple(ref.desc.shape), np.dtype(ref.desc.dtype))


@dataclass
class _IOSlot:
    """A place in a step's input/output list that points into a caller buffer."""

    slots: list
    position: int
    ref: TensorRef


class BoundGraph:
    """One plan (or one lane of it) bound to one work buffer and one weight buffer."""

    def __init__(self, plan: GraphPlan, work: np.ndarray, weights: np.ndarray, lane: int = 0) -> None:
        if work.nbytes < plan.memory_size:
            raise OmrtError(
                ACL_ERROR_GE_PARAM_INVALID,
                f"work memory too small: plan needs {plan.memory_size} bytes, given {work.nbytes}",
            )
        self.plan = plan
        self._work = work[lane * plan.lane_memory:(lane + 1) * plan.lane_memory]
        self._weights = weights
        # where this lane's slice starts in each caller buffer, by region and input/output index
        self._shift = {Region.INPUT: [lane * r.desc.nbytes for r in plan.inputs],
                       Region.OUTPUT: [lane * r.desc.nbytes for r in plan.outputs]}
        self._io_slots: list[_IOSlot] = []
        self._io_cache: dict[tuple[int, ...], list[np.ndarray]] = {}
        self._bound_key: tuple[int, ...] | None = None
        self.steps: list[tuple] = [self._bind_op(op) for op in plan.ops if not op.alias]

    def _resolve(self, ref: TensorRef, slots: list, position: int) -> np.ndarray | None:
        region = ref.loc.region
        if region == Region.WORK:
            return _typed(self._work, ref)
        if region == Region.WEIGHT:
            return _typed(self._weights, ref)
        self._io_slots.append(_IOSlot(slots, position, ref))
        return None

    def _bind_op(self, op) -> tuple:
        ins: list = [None] * len(op.inputs)
        outs: list = [None] * len(op.outputs)
        consts: dict[int, np.ndarray] = {}
        for i, ref in enumerate(op.inputs):
            if ref is not None:
                ins[i] = self._resolve(ref, ins, i)
                if ref.loc.region == Region.WEIGHT:
                    consts[i] = ins[i]
        for i, ref in enumerate(op.outputs):
            outs[i] = self._resolve(ref, outs, i)
        spec = OpSpec(
            op.op_type,
            dict(op.attrs),
            [_spec(r) for r in op.inputs],
            [_spec(r) for r in op.outputs],
            consts,
            op.name,
        )
        kernel = build_kernel(spec)
        scratch = None
        if op.workspace:
            offset, nbytes = op.workspace[0]
            scratch = self._work[offset:offset + nbytes]
        return kernel, ins, outs, scratch

    def bind_io(self, inputs: Sequence[np.ndarray], outputs: Sequence[np.ndarray]) -> None:
        """Point the steps at the caller's input/output buffers (uint8 views)."""
        key = tuple(address_of(a) for a in inputs) + (-1,) + tuple(address_of(a) for a in outputs)
        if key == self._bound_key:
            return
        views = self._io_cache.get(key)
        if views is None:
            # Views are made from raw addresses, so the cache never keeps a caller's buffer alive.
            views = []
            for slot in self._io_slots:
                loc = slot.ref.loc
                buf = (inputs if loc.region == Region.INPUT else outputs)[loc.index]
                shift = self._shift[loc.region][loc.index]
                views.append(_typed(view_at(address_of(buf) + shift, buf.nbytes - shift), slot.ref))
            if len(self._io_cache) >= _IO_CACHE_SIZE:
                self._io_cache.pop(next(iter(self._io_cache)))
            self._io_cache[key] = views
        for slot, view in zip(self._io_slots, views):
            slot.slots[slot.position] = view
        self._bound_key = key

    def run(self) -> None:
        for kernel, ins, outs, scratch in self.steps:
            kernel(ins, outs, scratch)


class LanedGraph:
    """A plan in batch lanes (omrt.compiler.lanes): one BoundGraph per lane, each over its own work
    region and its slice of the caller's buffers. With no more kernel threads than lanes, each
    lane is one pool task and its kernels are built for one thread, so a lane never waits on
    another thread until all are done; with more threads than lanes, the lanes run one after
    another and every op is split over the threads as in a plan without lanes."""

    def __init__(self, plan: GraphPlan, work: np.ndarray, weights: np.ndarray) -> None:
        self.plan = plan
        self.parallel = 1 < get_pool().size <= plan.lanes
        with serial_kernels() if self.parallel else nullcontext():
            self.lanes = [BoundGraph(plan, work, weights, i) for i in range(plan.lanes)]

    def bind_io(self, inputs: Sequence[np.ndarray], outputs: Sequence[np.ndarray]) -> None:
        for lane in self.lanes:
            lane.bind_io(inputs, outputs)

    def _run_lane(self, i: int) -> None:
        self.lanes[i].run()

    def run(self) -> None:
        get_pool().run(self._run_lane, len(self.lanes), self.parallel)


class Executor:
    """All gears of one loaded model over caller-given work and weight memory addresses."""

    def __init__(self, model: OfflineModel, work: np.ndarray, weights: np.ndarray) -> None:
        self.model = model
        weights_ro = weights[: model.weight_size]
        if weights_ro.flags.writeable:
            weights_ro = weights_ro.view()
            weights_ro.flags.writeable = False
        self.graphs: list[BoundGraph | LanedGraph] = [
            LanedGraph(g, work, weights_ro) if g.lanes > 1 else BoundGraph(g, work, weights_ro) for g in model.graphs]

    @classmethod
    def at_addresses(cls, model: OfflineModel, work_addr: int, work_size: int, weight_addr: int) -> "Executor":
        work = view_at(work_addr, work_size)
        weights = view_at(weight_addr, model.weight_size, writable=False)
        return cls(model, work, weights)

    def graph(self, batch: int | None) -> "BoundGraph | LanedGraph":
        return self.graphs[self.model.graphs.index(self.model.graph_for_batch(batch))]

    def execute(
        self, inputs: Sequence[np.ndarray], outputs: Sequence[np.ndarray], batch: int | None = None
    ) -> None:
        """Run with uint8 views of the caller's input/output buffers (one per model input/output)."""
        bound = self.graph(batch)
        bound.bind_io(inputs, outputs)
        with kernel_ufunc_buffer():
            bound.run()

    def execute_at(
        self, inputs: Sequence[tuple[int, int]], outputs: Sequence[tuple[int, int]], batch: int | None = None
    ) -> None:
        """Run with (address, size) pairs, as the pyACL face has them."""
        self.execute(
            [view_at(a, n) for a, n in inputs], [view_at(a, n) for a, n in outputs], batch
        )
