"""Dataset functions of acl.mdl (pyACL puts them there); acl.mdl re-exports this module's names."""
from __future__ import annotations

from acl._facade import acl_api as _api
from omrt import constants as _C
from omrt.runtime import buffers as _buffers

_OK = _C.ACL_SUCCESS

__all__ = ["create_dataset", "add_dataset_buffer", "get_dataset_num_buffers", "get_dataset_buffer",
           "destroy_dataset", "set_dataset_tensor_desc", "get_dataset_tensor_desc"]


@_api("mdl.create_dataset", fail=0)
def create_dataset() -> int:
    return _buffers.create_dataset()


@_api("mdl.add_dataset_buffer", "kk", fail=lambda code, args: (args[0], code))
def add_dataset_buffer(dataset: int, data_buffer: int) -> tuple[int, int]:
    """(dataset, ret): pyACL hands the dataset back."""
    _buffers.add_dataset_buffer(dataset, data_buffer)
    return dataset, _OK


@_api("mdl.get_dataset_num_buffers", "k", fail=0)
def get_dataset_num_buffers(dataset: int) -> int:
    return _buffers.dataset_num_buffers(dataset)


@_api("mdl.get_dataset_buffer", "kk", fail=0)
def get_dataset_buffer(dataset: int, index: int) -> int:
    """The data buffer at `index`, or 0 when out of range (clients test `if buf:`)."""
    return _buffers.dataset_buffer(dataset, index)


@_api("mdl.destroy_dataset", "k")
def destroy_dataset(dataset: int) -> int:
    """Drops the dataset only; its data buffers stay."""
    _buffers.destroy_dataset(dataset)
    return _OK


@_api("mdl.set_dataset_tensor_desc", "kki", fail=lambda code, args: (args[0], code))
def set_dataset_tensor_desc(dataset: int, tensor_desc: int, index: int) -> tuple[int, int]:
    _buffers.set_dataset_tensor_desc(dataset, tensor_desc, index)
    return dataset, _OK


@_api("mdl.get_dataset_tensor_desc", "kk", fail=0)
def get_dataset_tensor_desc(dataset: int, index: int) -> int:
    return _buffers.dataset_tensor_desc(dataset, index)
