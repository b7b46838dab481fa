"""An `onnx.backend.base.Backend`: compile to an in-memory `.om`, run it on caller-owned memory.

This is how omrt is held against the ONNX project's own test cases: every case goes through the
compiler, the container (written and read back) and the executor on user-managed work and weight
memory, exactly as a `.om` would on a pyACL load with memory.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import onnx
from onnx.backend.base import Backend, BackendRep

from omrt.compiler import compile_onnx
from omrt.om import query_sizes, write_om
from omrt.runtime.address import aligned_empty
from omrt.session import InferenceSession


class OmrtRep(BackendRep):
    def __init__(self, om_bytes: bytes) -> None:
        work_size, weight_size = query_sizes(om_bytes)  # header and TASK_INFO only; the session parses
        self.work = aligned_empty(work_size)
        self.weights = aligned_empty(weight_size)
        self.session = InferenceSession(om_bytes, work=self.work, weights=self.weights)
        self.input_names = [a.name for a in self.session.get_inputs()]

    def run(self, inputs: Any, **kwargs: Any) -> tuple[np.ndarray, ...]:
        if isinstance(inputs, dict):
            feeds = dict(inputs)
        else:
            if isinstance(inputs, np.ndarray):
                inputs = [inputs]
            feeds = dict(zip(self.input_names, inputs))
        return tuple(self.session.run(None, feeds))


class OmrtBackend(Backend):
    @classmethod
    def is_compatible(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs: Any) -> bool:
        return device == "CPU"

    @classmethod
    def supports_device(cls, device: str) -> bool:
        return device == "CPU"

    @classmethod
    def prepare(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs: Any) -> OmrtRep:
        return OmrtRep(write_om(compile_onnx(model)))

    @classmethod
    def run_model(cls, model: onnx.ModelProto, inputs: Sequence[np.ndarray], device: str = "CPU", **kwargs: Any):
        return cls.prepare(model, device).run(inputs)

    @classmethod
    def run_node(cls, node: onnx.NodeProto, inputs: Any, device: str = "CPU", outputs_info: Any = None, **kwargs: Any):
        raise NotImplementedError("omrt runs whole models; use prepare()")


prepare = OmrtBackend.prepare
run_model = OmrtBackend.run_model
supports_device = OmrtBackend.supports_device
