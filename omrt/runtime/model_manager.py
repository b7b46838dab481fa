"""Loaded models: their ids, the work and weight memory each one uses, the context it belongs to,
and execution guarded so that shared memory is never silently corrupted.

* Ids start at 1, increase, and are never reused (GE's ModelManager does the same).
* Work/weight pointer 0 means the runtime allocates (and at unload frees) the memory itself.
  Otherwise the pointer must lie in live memory of the current device with room for the model's
  requirement; every allocation a model uses is pinned so `rt.free` refuses it until unload.
* Weights are copied in at load unless the weight memory already holds exactly these bytes.
* A process-wide registry of in-flight work ranges refuses a second execution that would overlap
  work memory another execution is using; one model id runs one execution at a time.
"""
from __future__ import annotations

import ctypes
import itertools
import threading
from dataclasses import dataclass, field

import numpy as np

from omrt import constants as C
from omrt.errors import OmrtError
from omrt.om import query_sizes, read_om
from omrt.om.model import OfflineModel
from omrt.runtime import buffers, context, memory, state
from omrt.runtime.address import view_at
from omrt.runtime.weights import place_weights
from omrt.runtime.context import Context
from omrt.runtime.executor import Executor
from omrt.runtime.stream import Stream

SIZE_SLACK = 64          # an input buffer may be this much smaller than the tensor (GE kDataMemAlignSizeCompare)
BUSY_CODE = C.ACL_ERROR_RT_RESOURCE_ALLOC_FAIL   # work memory (or the model) is in use by a running execution


def require_init() -> None:
    """GE-side functions answer 145001 before acl.init, as GE's executor does."""
    if not state.is_initialized():
        raise OmrtError(C.ACL_ERROR_GE_EXEC_NOT_INIT, "acl.init has not been called (GE executor not initialized)")


# --- raw addresses ------------------------------------------------------------------------------

def check_memory(addr: int, size: int, what: str, code: int = C.ACL_ERROR_INVALID_PARAM) -> None:
    """[addr, addr+size) must be real memory (see memory.check_range); failures carry `code`."""
    memory.check_range(addr, size, what, code)


def read_memory(addr: int, size: int, what: str) -> bytes:
    """A copy of `size` bytes at `addr` (model bytes given by pointer)."""
    if addr == 0 or size == 0:
        raise OmrtError(C.ACL_ERROR_INVALID_PARAM, f"{what}: pointer {addr:#x} / size {size} must be non-zero")
    check_memory(addr, size, what)
    return ctypes.string_at(addr, size)


def read_file(path: str) -> bytes:
    """A model file's bytes; a missing or unreadable file is 100014 (ACL_ERROR_READ_MODEL_FAILURE)."""
    if not path:
        raise OmrtError(C.ACL_ERROR_INVALID_PARAM, "model path is empty")
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise OmrtError(C.ACL_ERROR_READ_MODEL_FAILURE, f"cannot read model file {path!r}: {e.strerror or e}") from None


def query(data: bytes) -> tuple[int, int]:
    """(work_size, weight_size) of a model image."""
    return query_sizes(data)


def parse(data: bytes) -> OfflineModel:
    return read_om(data)


# --- work and weight memory -----------------------------------------------------------------------

@dataclass(frozen=True)
class Region:
    """Memory a loaded model uses: `size` bytes at `addr`; `owned` when the runtime allocated it."""

    addr: int
    size: int
    owned: bool


def claim(kind: str, ptr: int, given: int, required: int, device: int, owner: str) -> Region:
    """Validate (or allocate, for ptr 0) one region and pin the allocation that holds it."""
    if ptr == 0:
        if required == 0:
            return Region(0, 0, False)
        addr = memory.malloc(required, device)
        memory.pin(addr, owner)
        return Region(addr, required, True)
    if given < required:
        raise OmrtError(C.ACL_ERROR_INVALID_PARAM,
                        f"{kind} memory too small: the model requires {required} bytes, given {given} bytes")
    try:
        memory.find_allocation(ptr, required, device)
    except OmrtError as e:
        raise OmrtError(C.ACL_ERROR_INVALID_PARAM,
                        f"{kind} memory {ptr:#x} cannot hold the {required} bytes the model requires "
                        f"(given {given} bytes): {e.message}") from None
    memory.pin(ptr, owner)
    return Region(ptr, required, False)


def release(region: Region, owner: str) -> None:
    if region.addr:
        memory.unpin(region.addr, owner)
        if region.owned:
            memory.free(region.addr)


class WorkRanges:
    """Work-memory ranges of executions now running, process-wide. An execution that would overlap
    one of them is refused instead of corrupting it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._busy: dict[int, tuple[int, int, int]] = {}
        self._tokens = itertools.count(1)

    def acquire(self, start: int, size: int, model_id: int) -> int:
        """Register [start, start+size) for `model_id`; 0 (nothing to release) for empty ranges."""
        if size <= 0:
            return 0
        end = start + size
        with self._lock:
            for s, e, other in self._busy.values():
                if s < end and start < e:
                    raise OmrtError(BUSY_CODE,
                                    f"work memory [{start:#x}, +{size}) of model {model_id} overlaps "
                                    f"[{s:#x}, +{e - s}) in use by a running execution of model {other}; "
                                    "models sharing work memory must run one after another")
            token = next(self._tokens)
            self._busy[token] = (start, end, model_id)
            return token

    def release(self, token: int) -> None:
        if token:
            with self._lock:
                self._busy.pop(token, None)

    def __len__(self) -> int:
        return len(self._busy)


work_ranges = WorkRanges()


def _shape_input_index(model: OfflineModel) -> int:
    return next(i for i, d in enumerate(model.inputs) if d.name == C.ACL_DYNAMIC_TENSOR_NAME)


def _overlap(a: Region, b: Region) -> bool:
    return a.size > 0 and b.size > 0 and a.addr < b.addr + b.size and b.addr < a.addr + a.size


# --- loaded models ------------------------------------------------------------------------------

@dataclass(eq=False)
class LoadedModel:
    model_id: int
    model: OfflineModel
    context: Context
    work: Region
    weight: Region
    executor: Executor
    weights_copied: bool
    batch: int | None = None                   # gear of the last set_dynamic_batch_size / execute
    closed: bool = False
    busy: threading.Lock = field(default_factory=threading.Lock)

    @property
    def owner(self) -> str:
        return f"model {self.model_id}"


@dataclass
class Job:
    """One execution's resolved buffers: (address, size) per model input and output."""

    inputs: list[tuple[int, int]]
    outputs: list[tuple[int, int]]
    batch: int | None
    keep: list = field(default_factory=list)   # padded copies of short inputs, alive until the run ends


class ModelManager:
    """The table of loaded models, and everything done to them by id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._models: dict[int, LoadedModel] = {}
        self._ids = itertools.count(1)

    # --- load / unload ---

    def load(self, data: bytes, work_ptr: int = 0, work_size: int = 0,
             weight_ptr: int = 0, weight_size: int = 0) -> int:
        """Parse a model image and load it in the calling thread's context; returns its id."""
        require_init()
        ctx = context.current()
        model = parse(data)
        with self._lock:
            model_id = next(self._ids)
        owner = f"model {model_id}"
        work = weight = None
        try:
            work = claim("work", work_ptr, work_size, model.memory_size, ctx.device, owner)
            weight = claim("weight", weight_ptr, weight_size, model.weight_size, ctx.device, owner)
            self._check_layout(model, work, weight)
            copied = place_weights(model, view_at(weight.addr, model.weight_size))
            executor = Executor.at_addresses(model, work.addr, work.size, weight.addr)
        except BaseException:
            for region in (weight, work):
                if region is not None:
                    release(region, owner)
            raise
        loaded = LoadedModel(model_id, model, ctx, work, weight, executor, copied)
        with self._lock:
            self._models[model_id] = loaded
        return model_id

    def _check_layout(self, model: OfflineModel, work: Region, weight: Region) -> None:
        """Weight memory is only ever shared by loads of the same weights at the same address, and
        never overlaps work memory (its own or another model's): anything else would let one
        model overwrite what another reads."""
        if _overlap(work, weight):
            raise OmrtError(C.ACL_ERROR_INVALID_PARAM,
                            f"work memory [{work.addr:#x}, +{work.size}) overlaps weight memory "
                            f"[{weight.addr:#x}, +{weight.size})")
        for other in list(self._models.values()):
            if _overlap(work, other.weight) or _overlap(weight, other.work):
                raise OmrtError(C.ACL_ERROR_INVALID_PARAM,
                                f"work and weight memory of model {other.model_id} and of the new load overlap")
            if _overlap(weight, other.weight) and (
                    weight.addr != other.weight.addr or model.weights != other.model.weights):
                raise OmrtError(C.ACL_ERROR_INVALID_PARAM,
                                f"weight memory [{weight.addr:#x}, +{weight.size}) holds the weights of model "
                                f"{other.model_id}; only loads of the same weights may share it")

    def get(self, model_id: int) -> LoadedModel:
        """The loaded model `model_id`; an unknown or unloaded id is 145003, as GE answers."""
        loaded = self._models.get(model_id)
        if loaded is None:
            raise OmrtError(C.ACL_ERROR_GE_EXEC_MODEL_ID_INVALID, f"model id {model_id} is not loaded")
        return loaded

    def owned(self, model_id: int) -> LoadedModel:
        """The model, checked to belong to the calling thread's current context (107004 otherwise)."""
        loaded = self.get(model_id)
        current = context.current()
        if current is not loaded.context:
            raise OmrtError(C.ACL_ERROR_RT_MODEL_CONTEXT,
                            f"model {model_id} was loaded in context {loaded.context.handle:#x}, but the "
                            f"current context is {current.handle:#x}; load, execute and unload a model "
                            "in one context")
        return loaded

    def unload(self, model_id: int) -> None:
        """Forget the model, wait for a running execution of it, unpin its memory, free what the
        runtime allocated. A model whose context is gone may be unloaded from anywhere."""
        require_init()
        loaded = self.get(model_id)
        if loaded.context.alive:
            self.owned(model_id)
        with self._lock:
            if self._models.pop(model_id, None) is None:
                raise OmrtError(C.ACL_ERROR_GE_EXEC_MODEL_ID_INVALID, f"model id {model_id} is not loaded")
        with loaded.busy:
            loaded.closed = True
        release(loaded.work, loaded.owner)
        release(loaded.weight, loaded.owner)

    def loaded_ids(self) -> list[int]:
        return sorted(self._models)

    def current_batch(self, model_id: int | None) -> int | None:
        loaded = self._models.get(model_id) if model_id is not None else None
        return loaded.batch if loaded is not None else None

    # --- execute ---

    def execute(self, model_id: int, in_ds: buffers.Dataset, out_ds: buffers.Dataset) -> None:
        """Run now on the calling thread; NULL output buffers get device memory (the caller frees it)."""
        require_init()
        loaded = self.owned(model_id)
        self._run(loaded, self._prepare(loaded, in_ds, out_ds, allocate_outputs=True))

    def execute_async(self, model_id: int, in_ds: buffers.Dataset, out_ds: buffers.Dataset,
                      stream: Stream) -> None:
        """Queue the run on `stream`; buffers are checked now, work memory is claimed when it runs."""
        require_init()
        loaded = self.owned(model_id)
        if stream.context is not loaded.context:
            raise OmrtError(C.ACL_ERROR_RT_STREAM_CONTEXT,
                            f"stream {stream.handle:#x} belongs to another context than model {model_id}")
        job = self._prepare(loaded, in_ds, out_ds, allocate_outputs=False)
        stream.submit(lambda: self._run(loaded, job))

    def _run(self, loaded: LoadedModel, job: Job) -> None:
        if not loaded.busy.acquire(blocking=False):
            raise OmrtError(BUSY_CODE, f"model {loaded.model_id} is already executing; one model id runs one "
                                       "execution at a time (lock around shared use, or load it once per thread)")
        try:
            if loaded.closed:
                raise OmrtError(C.ACL_ERROR_GE_EXEC_MODEL_ID_INVALID, f"model id {loaded.model_id} was unloaded")
            token = work_ranges.acquire(loaded.work.addr, loaded.work.size, loaded.model_id)
            try:
                if job.batch is not None:
                    loaded.batch = job.batch
                loaded.executor.execute_at(job.inputs, job.outputs, job.batch)
            finally:
                work_ranges.release(token)
        finally:
            loaded.busy.release()

    def _prepare(self, loaded: LoadedModel, in_ds: buffers.Dataset, out_ds: buffers.Dataset,
                 allocate_outputs: bool) -> Job:
        model = loaded.model
        ins = [in_ds.buffer(i) for i in range(len(in_ds.buffers))]
        outs = [out_ds.buffer(i) for i in range(len(out_ds.buffers))]
        for what, bufs, descs in (("input", ins, model.inputs), ("output", outs, model.outputs)):
            if len(bufs) != len(descs):
                raise OmrtError(C.ACL_ERROR_GE_PARAM_INVALID,
                                f"the model has {len(descs)} {what}s, the {what} dataset holds {len(bufs)} buffers")
        batch = self._batch_of(model, ins)
        graph = model.graph_for_batch(batch)
        job = Job([], [], batch)
        for i, (buf, desc) in enumerate(zip(ins, model.inputs)):
            if desc.name == C.ACL_DYNAMIC_TENSOR_NAME:
                job.inputs.append((buf.addr, buf.size))
                continue
            job.inputs.append(self._input(i, buf, desc.nbytes, graph.input_descs[i].nbytes, job))
        pending: list[int] = []
        for j, buf in enumerate(outs):
            need = graph.output_descs[j].nbytes
            if buf.addr == 0:
                if not allocate_outputs:
                    raise OmrtError(C.ACL_ERROR_INVALID_PARAM,
                                    f"output {j} data buffer is NULL; only the synchronous execute allocates outputs")
                pending.append(j)
                job.outputs.append((0, need))
                continue
            if buf.size < need:
                raise OmrtError(C.ACL_ERROR_INVALID_PARAM,
                                f"output {j} buffer holds {buf.size} bytes, the model writes {need} bytes")
            check_memory(buf.addr, need, f"output {j} buffer")
            job.outputs.append((buf.addr, need))
        for j in pending:
            size = model.outputs[j].nbytes
            addr = memory.malloc(size, loaded.context.device)
            buffers.update_data_buffer(outs[j].handle, addr, size)
            job.outputs[j] = (addr, job.outputs[j][1])
        return job

    @staticmethod
    def _input(i: int, buf: buffers.DataBuffer, model_size: int, need: int, job: Job) -> tuple[int, int]:
        if buf.addr == 0:
            raise OmrtError(C.ACL_ERROR_INVALID_PARAM, f"input {i} data buffer is NULL")
        if buf.size > model_size:
            raise OmrtError(C.ACL_ERROR_INVALID_PARAM,
                            f"input {i} data size({buf.size}) is bigger than model required size({model_size})")
        if buf.size + SIZE_SLACK < need:
            raise OmrtError(C.ACL_ERROR_INVALID_PARAM,
                            f"input {i} data size({buf.size}) is smaller than the {need} bytes the model "
                            f"reads by more than {SIZE_SLACK} bytes")
        check_memory(buf.addr, buf.size, f"input {i} buffer")
        if buf.size >= need:
            return buf.addr, need
        padded = np.zeros(need, dtype=np.uint8)
        padded[: buf.size] = view_at(buf.addr, buf.size)
        job.keep.append(padded)
        return padded.ctypes.data, need

    @staticmethod
    def _batch_of(model: OfflineModel, ins: list[buffers.DataBuffer]) -> int | None:
        """The gear to run: the batch value in the ascend_mbatch_shape_data buffer."""
        if not model.gears:
            return None
        index = _shape_input_index(model)
        buf = ins[index]
        if buf.addr == 0:
            raise OmrtError(C.ACL_ERROR_GE_DYNAMIC_INPUT_ADDR_INVALID, f"{C.ACL_DYNAMIC_TENSOR_NAME} buffer is NULL")
        if buf.size < 4:
            raise OmrtError(C.ACL_ERROR_GE_DYNAMIC_INPUT_LENGTH_INVALID,
                            f"{C.ACL_DYNAMIC_TENSOR_NAME} buffer holds {buf.size} bytes, at least 4 needed")
        width = 8 if buf.size >= 8 else 4
        check_memory(buf.addr, width, f"{C.ACL_DYNAMIC_TENSOR_NAME} buffer")
        batch = int(view_at(buf.addr, width).view(np.uint64 if width == 8 else np.uint32)[0])
        if batch not in model.gears:
            raise OmrtError(C.ACL_ERROR_GE_DYNAMIC_BATCH_SIZE_INVALID,
                            f"dynamic batch {batch} cannot match the gear of model {model.gears}; "
                            "call set_dynamic_batch_size before execute")
        return batch

    # --- dynamic batch ---

    def set_dynamic_batch_size(self, model_id: int, ds: buffers.Dataset, index: int, batch: int) -> None:
        """Write `batch` into the ascend_mbatch_shape_data buffer (uint64 if it holds 8 bytes, else
        uint32); the next execute runs that gear."""
        require_init()
        if batch == 0:
            raise OmrtError(C.ACL_ERROR_INVALID_PARAM, "dynamic batch size must not be 0")
        loaded = self.get(model_id)
        model = loaded.model
        if not model.gears:
            raise OmrtError(C.ACL_ERROR_GE_DYNAMIC_BATCH_SIZE_INVALID,
                            f"model {model_id} has no dynamic batch gears")
        expected = _shape_input_index(model)
        if index != expected:
            raise OmrtError(C.ACL_ERROR_INVALID_PARAM,
                            f"index {index} is not the {C.ACL_DYNAMIC_TENSOR_NAME} input (index {expected})")
        buf = ds.buffer(index)
        if buf.addr == 0:
            raise OmrtError(C.ACL_ERROR_GE_DYNAMIC_INPUT_ADDR_INVALID, f"{C.ACL_DYNAMIC_TENSOR_NAME} buffer is NULL")
        if buf.size < 4:
            raise OmrtError(C.ACL_ERROR_GE_DYNAMIC_INPUT_LENGTH_INVALID,
                            f"{C.ACL_DYNAMIC_TENSOR_NAME} buffer holds {buf.size} bytes, at least 4 needed")
        if batch not in model.gears:
            raise OmrtError(C.ACL_ERROR_GE_DYNAMIC_BATCH_SIZE_INVALID,
                            f"Dynamic batch {batch} cannot match the gear of model {model.gears}")
        width = 8 if buf.size >= 8 else 4
        check_memory(buf.addr, width, f"{C.ACL_DYNAMIC_TENSOR_NAME} buffer")
        view_at(buf.addr, width).view(np.uint64 if width == 8 else np.uint32)[0] = batch
        loaded.batch = batch


manager = ModelManager()
