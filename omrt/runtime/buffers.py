"""Data buffers, datasets and tensor descriptors: the small handle objects that describe where a
model's inputs and outputs live. They never own memory."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from omrt import constants as C
from omrt.errors import OmrtError
from omrt.runtime import state

# aclDataType -> bytes per element (0 for STRING and unknown types, as aclDataTypeSize does)
DTYPE_SIZES: dict[int, int] = {
    C.ACL_FLOAT: 4, C.ACL_FLOAT16: 2, C.ACL_INT8: 1, C.ACL_INT32: 4, C.ACL_UINT8: 1,
    C.ACL_INT16: 2, C.ACL_UINT16: 2, C.ACL_UINT32: 4, C.ACL_INT64: 8, C.ACL_UINT64: 8,
    C.ACL_DOUBLE: 8, C.ACL_BOOL: 1, 16: 8, 17: 16, C.ACL_BF16: 2, 33: 4,
    34: 1, 35: 1, 36: 1, 37: 1,
}


def data_type_size(dtype: int) -> int:
    return DTYPE_SIZES.get(dtype, 0)


# --- data buffers -----------------------------------------------------------------------------

@dataclass(eq=False)
class DataBuffer:
    addr: int
    size: int
    handle: int = 0


def create_data_buffer(addr: int, size: int) -> int:
    """A handle for (addr, size); addr 0 is allowed (filled in later by update or execute)."""
    buf = DataBuffer(addr, size)
    buf.handle = state.handles.add(buf)
    return buf.handle


def data_buffer(handle: int) -> DataBuffer:
    return state.handles.get(handle, DataBuffer, "data buffer")


def destroy_data_buffer(handle: int) -> None:
    """Drop the handle; the memory it points at is the caller's."""
    data_buffer(handle)
    state.handles.remove(handle)


def update_data_buffer(handle: int, addr: int, size: int) -> None:
    buf = data_buffer(handle)
    buf.addr, buf.size = addr, size


# --- datasets ---------------------------------------------------------------------------------

@dataclass(eq=False)
class Dataset:
    buffers: list[int] = field(default_factory=list)
    tensor_descs: dict[int, int] = field(default_factory=dict)
    handle: int = 0

    def buffer(self, index: int) -> DataBuffer:
        """The data buffer at `index` (for the executor); a bad index or entry is 100000."""
        if not 0 <= index < len(self.buffers):
            raise OmrtError(C.ACL_ERROR_INVALID_PARAM,
                            f"dataset index {index} out of range [0, {len(self.buffers)})")
        return data_buffer(self.buffers[index])


def create_dataset() -> int:
    ds = Dataset()
    ds.handle = state.handles.add(ds)
    return ds.handle


def dataset(handle: int) -> Dataset:
    return state.handles.get(handle, Dataset, "dataset")


def add_dataset_buffer(ds_handle: int, buf_handle: int) -> None:
    ds = dataset(ds_handle)
    data_buffer(buf_handle)
    ds.buffers.append(buf_handle)


def dataset_num_buffers(ds_handle: int) -> int:
    ds = state.handles.find(ds_handle, Dataset)
    return len(ds.buffers) if ds is not None else 0


def dataset_buffer(ds_handle: int, index: int) -> int:
    """The buffer handle at `index`, or 0 when the dataset or index is not valid."""
    ds = state.handles.find(ds_handle, Dataset)
    if ds is None or not 0 <= index < len(ds.buffers):
        return 0
    return ds.buffers[index]


def destroy_dataset(ds_handle: int) -> None:
    """Drop the dataset; its data buffers stay alive."""
    dataset(ds_handle)
    state.handles.remove(ds_handle)


def set_dataset_tensor_desc(ds_handle: int, desc_handle: int, index: int) -> None:
    ds = dataset(ds_handle)
    tensor_desc(desc_handle)
    if not 0 <= index < len(ds.buffers):
        raise OmrtError(C.ACL_ERROR_INVALID_PARAM, f"dataset index {index} out of range [0, {len(ds.buffers)})")
    ds.tensor_descs[index] = desc_handle


def dataset_tensor_desc(ds_handle: int, index: int) -> int:
    ds = state.handles.find(ds_handle, Dataset)
    return ds.tensor_descs.get(index, 0) if ds is not None else 0


# --- tensor descriptors -----------------------------------------------------------------------

@dataclass(eq=False)
class TensorDesc:
    dtype: int
    dims: list[int]
    format: int
    handle: int = 0

    @property
    def size(self) -> int:
        """Bytes of the described tensor (0 when a dim is unknown)."""
        if any(d < 0 for d in self.dims):
            return 0
        return math.prod(self.dims) * data_type_size(self.dtype)


def create_tensor_desc(dtype: int, dims: list[int], fmt: int) -> int:
    desc = TensorDesc(dtype, [int(d) for d in dims], fmt)
    desc.handle = state.handles.add(desc)
    return desc.handle


def tensor_desc(handle: int) -> TensorDesc:
    return state.handles.get(handle, TensorDesc, "tensor desc")


def destroy_tensor_desc(handle: int) -> None:
    if state.handles.find(handle, TensorDesc) is not None:
        state.handles.remove(handle)
