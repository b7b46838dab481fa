"""`omrt.InferenceSession`: numpy in, numpy out, over the same executor the pyACL face uses.

Work and weight memory may be the caller's (any writable buffer: numpy array, bytearray, mmap):
two sessions of one model can share one weight buffer, and models run one after another can
share one work buffer sized to the largest of them.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from omrt.constants import (
    ACL_ERROR_GE_DYNAMIC_BATCH_SIZE_INVALID,
    ACL_ERROR_GE_PARAM_INVALID,
    ACL_ERROR_INVALID_PARAM,
)
from omrt.errors import OmrtError
from omrt.om import load_om, read_om
from omrt.om.model import TensorDesc
from omrt.runtime.address import aligned_empty
from omrt.runtime.executor import Executor
from omrt.runtime.weights import place_weights


@dataclass(frozen=True)
class NodeArg:
    """What onnxruntime's get_inputs()/get_outputs() return: name, shape, numpy dtype."""

    name: str
    shape: tuple[int, ...]
    type: np.dtype


def _as_uint8(buffer: Any, what: str, needed: int) -> np.ndarray:
    arr = np.frombuffer(buffer, dtype=np.uint8) if not isinstance(buffer, np.ndarray) else buffer
    arr = arr.reshape(-1).view(np.uint8)
    if arr.nbytes < needed:
        raise OmrtError(ACL_ERROR_GE_PARAM_INVALID, f"{what} memory too small: required {needed} bytes, given {arr.nbytes}")
    if not arr.flags.writeable:
        raise OmrtError(ACL_ERROR_INVALID_PARAM, f"{what} memory must be writable")
    return arr


class InferenceSession:
    def __init__(
        self,
        path_or_bytes: str | os.PathLike | bytes,
        device_id: int = 0,
        work: Any = None,
        weights: Any = None,
    ) -> None:
        if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
            self.model = read_om(bytes(path_or_bytes))
        else:
            self.model = load_om(os.fspath(path_or_bytes))
        self.device_id = device_id
        model = self.model
        self.work = aligned_empty(model.memory_size) if work is None else _as_uint8(work, "work", model.memory_size)
        self.weights = aligned_empty(model.weight_size) if weights is None else _as_uint8(weights, "weight", model.weight_size)
        place_weights(model, self.weights)
        self._executor = Executor(model, self.work, self.weights)
        self._real_inputs = [d for d in model.inputs if d.name != "ascend_mbatch_shape_data"]
        self._lock = threading.Lock()

    def __enter__(self) -> "InferenceSession":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._executor = None

    def get_inputs(self) -> list[NodeArg]:
        return [self._arg(d, dynamic=True) for d in self._real_inputs]

    def get_outputs(self) -> list[NodeArg]:
        return [self._arg(d, dynamic=True) for d in self.model.outputs]

    def _arg(self, desc: TensorDesc, dynamic: bool) -> NodeArg:
        shape = tuple(desc.shape)
        if self.model.gears and dynamic and shape:
            shape = (-1,) + shape[1:]
        return NodeArg(desc.name, shape, np.dtype(desc.dtype))

    def _batch_of(self, feeds: Sequence[np.ndarray]) -> int | None:
        if not self.model.gears:
            return None
        batch = int(feeds[0].shape[0]) if feeds and feeds[0].ndim else 0
        if batch not in self.model.gears:
            raise OmrtError(
                ACL_ERROR_GE_DYNAMIC_BATCH_SIZE_INVALID,
                f"batch {batch} does not match a gear of the model {self.model.gears}",
            )
        return batch

    def run(self, output_names: Sequence[str] | None, feeds: Mapping[str, Any]) -> list[np.ndarray]:
        """Run once; returns the requested outputs (all when `output_names` is None) as arrays."""
        if self._executor is None:
            raise OmrtError(ACL_ERROR_INVALID_PARAM, "session is closed")
        arrays = []
        for desc in self._real_inputs:
            if desc.name not in feeds:
                raise OmrtError(ACL_ERROR_INVALID_PARAM, f"missing input {desc.name!r}")
            arrays.append(np.require(np.asarray(feeds[desc.name], dtype=desc.dtype), requirements="C"))
        unknown = set(feeds) - {d.name for d in self._real_inputs}
        if unknown:
            raise OmrtError(ACL_ERROR_INVALID_PARAM, f"unknown input(s): {', '.join(sorted(unknown))}")
        batch = self._batch_of(arrays)
        graph = self.model.graph_for_batch(batch)
        for arr, desc in zip(arrays, graph.input_descs):
            if tuple(arr.shape) != tuple(desc.shape):
                raise OmrtError(
                    ACL_ERROR_INVALID_PARAM,
                    f"input {desc.name!r} has shape {tuple(arr.shape)}, model expects {tuple(desc.shape)}",
                )
        in_bufs = [a.reshape(-1).view(np.uint8) for a in arrays]
        if self.model.gears:
            in_bufs.append(np.array([batch], dtype=np.int32).view(np.uint8))
        outs = [np.empty(desc.shape, dtype=desc.dtype) for desc in graph.output_descs]
        with self._lock:
            self._executor.execute(in_bufs, [o.reshape(-1).view(np.uint8) for o in outs], batch)
        if output_names is None:
            return outs
        names = [desc.name for desc in graph.output_descs]
        try:
            return [outs[names.index(n)] for n in output_names]
        except ValueError:
            raise OmrtError(ACL_ERROR_INVALID_PARAM, f"unknown output name in {list(output_names)}") from None
