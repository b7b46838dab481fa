"""The offline model as omrt holds it in memory: the contract between compiler, container and runtime.

The compiler builds an `OfflineModel`; `omrt.om.writer` serialises it to a `.om`; `omrt.om.reader`
parses a `.om` back into an equal `OfflineModel`; the runtime binds and executes it. Every tensor
is a `TensorRef`: what it is (`TensorDesc`) and where it lives (`Location`).

Address spaces:
  * WORK   - byte offset into work memory; `[0, GraphPlan.memory_size)`.
  * WEIGHT - byte offset into weight memory; `[0, OfflineModel.weight_size)`.
  * INPUT / OUTPUT - byte offset inside the caller's buffer for model input/output `index`.
    Model inputs and outputs are never copied into work memory (zero copy).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class Region(enum.IntEnum):
    WORK = 0
    WEIGHT = 1
    INPUT = 2
    OUTPUT = 3


@dataclass(frozen=True)
class TensorDesc:
    """A tensor's identity and type: its name is unique within a graph."""

    name: str
    dtype: np.dtype
    shape: tuple[int, ...]
    layout: str = "ND"

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, TensorDesc)
            and self.name == other.name
            and np.dtype(self.dtype) == np.dtype(other.dtype)
            and tuple(self.shape) == tuple(other.shape)
            and self.layout == other.layout
        )

    def __hash__(self) -> int:
        return hash((self.name, np.dtype(self.dtype).str, tuple(self.shape), self.layout))


@dataclass(frozen=True)
class Location:
    """Where a tensor's bytes are: a region, which I/O buffer (for INPUT/OUTPUT), and an offset."""

    region: Region
    offset: int
    index: int = 0


@dataclass(frozen=True)
class TensorRef:
    desc: TensorDesc
    loc: Location


@dataclass
class OpPlan:
    """One compute op in execution order, with its tensors placed.

    `attrs` hold ONNX attribute values as Python values (int, float, str, bytes, bool, lists of
    those, numpy arrays for tensor attributes). Attributes omrt adds itself (fused activation,
    pre-packed weight layouts) start with an underscore. `alias` ops are zero-copy views (Reshape,
    Flatten, ...): their output occupies the same bytes as their input and no kernel runs.
    """

    name: str
    op_type: str
    attrs: dict[str, Any]
    inputs: list[TensorRef | None]
    outputs: list[TensorRef]
    workspace: list[tuple[int, int]] = field(default_factory=list)  # (offset, nbytes) in WORK
    alias: bool = False


@dataclass
class GraphPlan:
    """One executable plan: the whole static model, or one gear of a dynamic-batch model."""

    name: str
    inputs: list[TensorRef]        # Region.INPUT, index i = model input i
    outputs: list[TensorRef]       # Region.OUTPUT, index i = model output i
    constants: list[TensorRef]     # Region.WEIGHT
    ops: list[OpPlan]
    memory_size: int               # bytes of work memory this plan needs (all its lanes)
    batch: int | None = None       # the gear's batch size; None for a static model
    lanes: int = 1                 # copies run side by side on equal slices of the batch (see below)

    @property
    def lane_memory(self) -> int:
        """Work memory of one lane. A plan with `lanes` > 1 describes lane 0: its tensors have the
        lane's batch, its WORK offsets lie in [0, lane_memory), and lane i runs the same ops on
        bytes [i*n, (i+1)*n) of each model input/output (n: the plan's size for it) with its work
        at i * lane_memory (omrt.compiler.lanes)."""
        return self.memory_size // self.lanes

    @property
    def input_descs(self) -> list[TensorDesc]:
        """The model inputs this plan reads, whole batch (what a caller's buffers must hold)."""
        return [self.model_desc(r.desc) for r in self.inputs]

    @property
    def output_descs(self) -> list[TensorDesc]:
        return [self.model_desc(r.desc) for r in self.outputs]

    def model_desc(self, desc: TensorDesc) -> TensorDesc:
        """A plan input/output as the model has it: the lanes' batches together."""
        if self.lanes == 1:
            return desc
        return TensorDesc(desc.name, desc.dtype, (desc.shape[0] * self.lanes,) + tuple(desc.shape[1:]), desc.layout)


@dataclass
class OfflineModel:
    """A whole `.om`: model I/O descriptions, one plan per gear, and the weight blob."""

    name: str
    inputs: list[TensorDesc]       # as ACL reports them (largest gear; + ascend_mbatch_shape_data)
    outputs: list[TensorDesc]
    graphs: list[GraphPlan]        # one for a static model; one per gear, in gear order, if dynamic
    weights: bytes                 # the WEIGHTS_DATA partition (may be empty)
    gears: list[int] = field(default_factory=list)  # dynamic batch sizes; empty when static
    attrs: dict[str, Any] = field(default_factory=dict)  # atc_cmdline, soc_version, atc_version, ...
    platform_version: str = ""

    @property
    def memory_size(self) -> int:
        """Work memory needed: the largest plan's."""
        return max((g.memory_size for g in self.graphs), default=0)

    @property
    def weight_size(self) -> int:
        return len(self.weights)

    @property
    def is_dynamic_batch(self) -> bool:
        return bool(self.gears)

    def graph_for_batch(self, batch: int | None) -> GraphPlan:
        """The plan for a gear; with no batch given, the largest gear's (what ACL sizes I/O for)."""
        if not self.gears:
            return self.graphs[0]
        if batch is None:
            batch = max(self.gears)
        return self.graphs[self.gears.index(batch)]
