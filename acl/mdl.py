"""acl.mdl: model loading, descriptions, execution and dynamic batch. Datasets are implemented in
acl._dataset and re-exported here, where pyACL has them.

Every function parses its arguments as pyACL does and maps failures to return codes; the work is
done by omrt.runtime.model_manager (loaded models) and omrt.runtime.model_desc (descriptions).
"""
from __future__ import annotations

from dataclasses import dataclass as _dataclass, field as _field
from typing import Any as _Any

from acl._dataset import *  # noqa: F401,F403
from acl._facade import RET as _RET, Escape as _Escape, acl_api as _api
from omrt import constants as _C
from omrt.errors import OmrtError as _OmrtError
from omrt.runtime import buffers as _buffers, state as _state, stream as _stream
from omrt.runtime.model_desc import ModelDescription as _Desc, dims_dict as _dims
from omrt.runtime.model_manager import manager as _manager
from omrt.runtime import model_manager as _mm

_OK = _C.ACL_SUCCESS
_U64 = (1 << 64) - 1


# --- sizes and loading --------------------------------------------------------------------------

@_api("mdl.query_size", "s", fail=(0, 0, _RET))
def query_size(path: str) -> tuple[int, int, int]:
    """(work_size, weight_size, ret)."""
    _mm.require_init()
    return (*_mm.query(_mm.read_file(path)), _OK)


@_api("mdl.query_size_from_mem", "kk", fail=(0, 0, _RET))
def query_size_from_mem(model_ptr: int, model_size: int) -> tuple[int, int, int]:
    _mm.require_init()
    return (*_mm.query(_mm.read_memory(model_ptr, model_size, "model memory")), _OK)


@_api("mdl.load_from_file", "s", fail=(0, _RET))
def load_from_file(path: str) -> tuple[int, int]:
    _mm.require_init()
    return _manager.load(_mm.read_file(path)), _OK


@_api("mdl.load_from_mem", "kk", fail=(0, _RET))
def load_from_mem(model_ptr: int, model_size: int) -> tuple[int, int]:
    """The model image at a host or device address (e.g. acl.util.bytes_to_ptr of the file's bytes)."""
    _mm.require_init()
    return _manager.load(_mm.read_memory(model_ptr, model_size, "model memory")), _OK


@_api("mdl.load_from_file_with_mem", "skkkk", fail=(0, _RET))
def load_from_file_with_mem(path: str, work_ptr: int, work_size: int,
                            weight_ptr: int, weight_size: int) -> tuple[int, int]:
    _mm.require_init()
    return _manager.load(_mm.read_file(path), work_ptr, work_size, weight_ptr, weight_size), _OK


@_api("mdl.load_from_mem_with_mem", "kkkkkk", fail=(0, _RET))
def load_from_mem_with_mem(model_ptr: int, model_size: int, work_ptr: int, work_size: int,
                           weight_ptr: int, weight_size: int) -> tuple[int, int]:
    _mm.require_init()
    data = _mm.read_memory(model_ptr, model_size, "model memory")
    return _manager.load(data, work_ptr, work_size, weight_ptr, weight_size), _OK


@_api("mdl.unload", "I")
def unload(model_id: int) -> int:
    _manager.unload(model_id)
    return _OK


# --- load configuration -------------------------------------------------------------------------

_INT_ATTRS = {
    _C.ACL_MDL_LOAD_TYPE_SIZET, _C.ACL_MDL_MEM_SIZET, _C.ACL_MDL_WEIGHT_SIZET, _C.ACL_MDL_WORKSPACE_SIZET,
    _C.ACL_MDL_INPUTQ_NUM_SIZET, _C.ACL_MDL_OUTPUTQ_NUM_SIZET, _C.ACL_MDL_WORKSPACE_MEM_OPTIMIZE,
    16,  # ACL_MDL_MODEL_DESC_SIZET
}
_PTR_ATTRS = {
    _C.ACL_MDL_MEM_ADDR_PTR, _C.ACL_MDL_WEIGHT_ADDR_PTR, _C.ACL_MDL_WORKSPACE_ADDR_PTR,
    _C.ACL_MDL_INPUTQ_ADDR_PTR, _C.ACL_MDL_OUTPUTQ_ADDR_PTR, _C.ACL_MDL_WEIGHT_PATH_PTR,
    15, 17,  # ACL_MDL_MODEL_DESC_PTR, ACL_MDL_KERNEL_PTR
}
_LOAD_TYPES = range(_C.ACL_MDL_LOAD_FROM_FILE, _C.ACL_MDL_LOAD_FROM_MEM_WITH_Q + 1)


@_dataclass(eq=False)
class _Config:
    """The object behind an aclmdlConfigHandle: attributes as set_config_opt stored them."""

    attrs: dict[int, _Any] = _field(default_factory=dict)


def _config(handle: int) -> _Config:
    return _state.handles.get(handle, _Config, "model config handle")


def _config_value(attr: int, value: _Any) -> _Any:
    """The value converted as pyACL parses it for `attr` (int32 / str / unsigned)."""
    if attr == _C.ACL_MDL_PRIORITY_INT32:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError("acl.mdl.set_config_opt args parse failed")
        if not 0 <= value <= 7:
            raise _OmrtError(_C.ACL_ERROR_INVALID_PARAM, f"model priority {value} is outside [0, 7]")
        return value
    if attr == _C.ACL_MDL_PATH_PTR:
        if not isinstance(value, str):
            raise TypeError("acl.mdl.set_config_opt args parse failed")
        if not value:
            raise _OmrtError(_C.ACL_ERROR_INVALID_PARAM, "model path is empty")
        return value
    if attr in _INT_ATTRS or attr in _PTR_ATTRS:
        if attr == _C.ACL_MDL_WEIGHT_PATH_PTR and isinstance(value, str):
            return value
        if not isinstance(value, int):
            raise TypeError("acl.mdl.set_config_opt args parse failed")
        value &= _U64
        if attr == _C.ACL_MDL_LOAD_TYPE_SIZET and value not in _LOAD_TYPES:
            raise _OmrtError(_C.ACL_ERROR_INVALID_PARAM, f"model load type {value} is not one of 1..6")
        return value
    raise _OmrtError(_C.ACL_ERROR_INVALID_PARAM, f"{attr} is not an aclmdlConfigAttr")


@_api("mdl.create_config_handle", fail=0)
def create_config_handle() -> int:
    return _state.handles.add(_Config())


@_api("mdl.set_config_opt", "kiO")
def set_config_opt(handle: int, attr: int, value: _Any) -> int:
    config = _config(handle)
    try:
        config.attrs[attr] = _config_value(attr, value)
    except TypeError as e:
        raise _Escape(e) from None
    return _OK


@_api("mdl.destroy_config_handle", "k")
def destroy_config_handle(handle: int) -> int:
    _config(handle)
    _state.handles.remove(handle)
    return _OK


def _required(attrs: dict[int, _Any], attr: int, name: str, load_type: int) -> _Any:
    if attr not in attrs:
        raise _OmrtError(_C.ACL_ERROR_INVALID_PARAM, f"load type {load_type} needs {name} to be set")
    return attrs[attr]


@_api("mdl.load_with_config", "k", fail=(0, _RET))
def load_with_config(handle: int) -> tuple[int, int]:
    _mm.require_init()
    attrs = _config(handle).attrs
    load_type = attrs.get(_C.ACL_MDL_LOAD_TYPE_SIZET)
    if load_type is None:
        raise _OmrtError(_C.ACL_ERROR_INVALID_PARAM, "ACL_MDL_LOAD_TYPE_SIZET is not set")
    if load_type in (_C.ACL_MDL_LOAD_FROM_FILE_WITH_Q, _C.ACL_MDL_LOAD_FROM_MEM_WITH_Q):
        raise _OmrtError(_C.ACL_ERROR_API_NOT_SUPPORT, f"load type {load_type} (with queues) is not supported")
    if load_type in (_C.ACL_MDL_LOAD_FROM_FILE, _C.ACL_MDL_LOAD_FROM_FILE_WITH_MEM):
        data = _mm.read_file(_required(attrs, _C.ACL_MDL_PATH_PTR, "ACL_MDL_PATH_PTR", load_type))
    else:
        ptr = _required(attrs, _C.ACL_MDL_MEM_ADDR_PTR, "ACL_MDL_MEM_ADDR_PTR", load_type)
        size = _required(attrs, _C.ACL_MDL_MEM_SIZET, "ACL_MDL_MEM_SIZET", load_type)
        data = _mm.read_memory(ptr, size, "model memory")
    if load_type in (_C.ACL_MDL_LOAD_FROM_FILE, _C.ACL_MDL_LOAD_FROM_MEM):
        return _manager.load(data), _OK
    return _manager.load(
        data,
        attrs.get(_C.ACL_MDL_WORKSPACE_ADDR_PTR, 0), attrs.get(_C.ACL_MDL_WORKSPACE_SIZET, 0),
        attrs.get(_C.ACL_MDL_WEIGHT_ADDR_PTR, 0), attrs.get(_C.ACL_MDL_WEIGHT_SIZET, 0),
    ), _OK


# --- descriptions -------------------------------------------------------------------------------

def _desc(handle: int) -> _Desc:
    return _state.handles.get(handle, _Desc, "model desc")


@_api("mdl.create_desc", fail=0)
def create_desc() -> int:
    return _state.handles.add(_Desc())


@_api("mdl.destroy_desc", "k")
def destroy_desc(desc: int) -> int:
    _desc(desc)
    _state.handles.remove(desc)
    return _OK


@_api("mdl.get_desc", "kI")
def get_desc(desc: int, model_id: int) -> int:
    _mm.require_init()
    target = _desc(desc)
    target.fill(_manager.get(model_id).model, model_id)
    return _OK


@_api("mdl.get_desc_from_file", "ks")
def get_desc_from_file(desc: int, path: str) -> int:
    _mm.require_init()
    target = _desc(desc)
    target.fill(_mm.parse(_mm.read_file(path)))
    return _OK


@_api("mdl.get_desc_from_mem", "kkk")
def get_desc_from_mem(desc: int, model_ptr: int, model_size: int) -> int:
    _mm.require_init()
    target = _desc(desc)
    target.fill(_mm.parse(_mm.read_memory(model_ptr, model_size, "model memory")))
    return _OK


@_api("mdl.get_num_inputs", "k", fail=0)
def get_num_inputs(desc: int) -> int:
    found = _state.handles.find(desc, _Desc)
    return len(found.inputs) if found is not None else 0


@_api("mdl.get_num_outputs", "k", fail=0)
def get_num_outputs(desc: int) -> int:
    found = _state.handles.find(desc, _Desc)
    return len(found.outputs) if found is not None else 0


@_api("mdl.get_input_size_by_index", "kk", fail=0)
def get_input_size_by_index(desc: int, index: int) -> int:
    return _desc(desc).input(index).size


@_api("mdl.get_output_size_by_index", "kk", fail=0)
def get_output_size_by_index(desc: int, index: int) -> int:
    return _desc(desc).output(index).size


@_api("mdl.get_input_dims", "kk", fail=({}, _RET))
def get_input_dims(desc: int, index: int) -> tuple[dict, int]:
    """Dims with -1 for a dynamic batch dimension, as GE reports the original input shape."""
    info = _desc(desc).input(index)
    return _dims(info.name, info.origin_dims), _OK


@_api("mdl.get_input_dims_v2", "kk", fail=({}, _RET))
def get_input_dims_v2(desc: int, index: int) -> tuple[dict, int]:
    """Concrete dims: the largest gear for a dynamic-batch input (consistent with its size)."""
    info = _desc(desc).input(index)
    return _dims(info.name, info.dims), _OK


@_api("mdl.get_output_dims", "kk", fail=({}, _RET))
def get_output_dims(desc: int, index: int) -> tuple[dict, int]:
    info = _desc(desc).output(index)
    return _dims(info.name, info.dims), _OK


@_api("mdl.get_cur_output_dims", "kk", fail=({}, _RET))
def get_cur_output_dims(desc: int, index: int) -> tuple[dict, int]:
    """The output shape of the gear last chosen for the described model."""
    target = _desc(desc)
    dims = target.cur_output_dims(index, _manager.current_batch(target.model_id))
    return _dims(target.output(index).name, dims), _OK


@_api("mdl.get_input_data_type", "kk", fail=_C.ACL_DT_UNDEFINED)
def get_input_data_type(desc: int, index: int) -> int:
    return _desc(desc).input(index).data_type


@_api("mdl.get_output_data_type", "kk", fail=_C.ACL_DT_UNDEFINED)
def get_output_data_type(desc: int, index: int) -> int:
    return _desc(desc).output(index).data_type


@_api("mdl.get_input_format", "kk", fail=_C.ACL_FORMAT_UNDEFINED)
def get_input_format(desc: int, index: int) -> int:
    return _desc(desc).input(index).format


@_api("mdl.get_output_format", "kk", fail=_C.ACL_FORMAT_UNDEFINED)
def get_output_format(desc: int, index: int) -> int:
    return _desc(desc).output(index).format


@_api("mdl.get_input_name_by_index", "kk", fail="")
def get_input_name_by_index(desc: int, index: int) -> str:
    return _desc(desc).input(index).name


@_api("mdl.get_output_name_by_index", "kk", fail="")
def get_output_name_by_index(desc: int, index: int) -> str:
    return _desc(desc).output(index).name


def _index_by_name(desc: int, name: str, outputs: bool) -> tuple[int, int]:
    index = _desc(desc).index_of(name, outputs)
    if index is None:
        # AclLite asks for ascend_mbatch_shape_data on every execute of a static model: answer quietly.
        return 0, _C.ACL_ERROR_INVALID_PARAM
    return index, _OK


@_api("mdl.get_input_index_by_name", "ks", fail=(0, _RET))
def get_input_index_by_name(desc: int, name: str) -> tuple[int, int]:
    return _index_by_name(desc, name, outputs=False)


@_api("mdl.get_output_index_by_name", "ks", fail=(0, _RET))
def get_output_index_by_name(desc: int, name: str) -> tuple[int, int]:
    return _index_by_name(desc, name, outputs=True)


# --- execution ----------------------------------------------------------------------------------

@_api("mdl.execute", "Ikk")
def execute(model_id: int, inputs: int, outputs: int) -> int:
    _mm.require_init()
    _manager.execute(model_id, _buffers.dataset(inputs), _buffers.dataset(outputs))
    return _OK


@_api("mdl.execute_async", "Ikkk")
def execute_async(model_id: int, inputs: int, outputs: int, stream: int) -> int:
    """Queued on the stream's worker; outputs are valid after acl.rt.synchronize_stream."""
    _mm.require_init()
    _manager.execute_async(model_id, _buffers.dataset(inputs), _buffers.dataset(outputs),
                           _stream.resolve(stream))
    return _OK


# --- dynamic batch / resolution -----------------------------------------------------------------

@_api("mdl.get_dynamic_batch", "k", fail=({}, _RET))
def get_dynamic_batch(desc: int) -> tuple[dict, int]:
    gears = _desc(desc).gears
    return {"batchCount": len(gears), "batch": list(gears)}, _OK


@_api("mdl.set_dynamic_batch_size", "IkkK")
def set_dynamic_batch_size(model_id: int, dataset: int, index: int, batch: int) -> int:
    _mm.require_init()
    _manager.set_dynamic_batch_size(model_id, _buffers.dataset(dataset), index, batch)
    return _OK


@_api("mdl.get_dynamic_hw", "kk", fail=({}, _RET))
def get_dynamic_hw(desc: int, index: int) -> tuple[dict, int]:
    """omrt compiles no dynamic-resolution models: always zero gears."""
    _desc(desc)
    return {"hwCount": 0, "hw": []}, _OK


@_api("mdl.set_dynamic_hw_size", "IkkKK")
def set_dynamic_hw_size(model_id: int, dataset: int, index: int, height: int, width: int) -> int:
    _mm.require_init()
    _manager.get(model_id)
    raise _OmrtError(_C.ACL_ERROR_MODEL_NOT_DYNAMIC,
                     f"model {model_id} has no dynamic image size (height/width) gears")
