"""pyACL-compatible `acl` module: top-level functions plus the rt, mdl, util, op, media sub-modules.

Handles and pointers are plain ints; no constants are exported (clients define their own).
"""
from __future__ import annotations

import os as _os

from acl._facade import RET as _RET, Escape as _Escape, acl_api as _api
from omrt import constants as _C
from omrt.runtime import buffers as _buffers, state as _state

_VERSION = (1, 0, 0)


@_api("init", "|s")
def init(config_path: str = "") -> int:
    _state.init(config_path)
    return _C.ACL_SUCCESS


@_api("finalize")
def finalize() -> int:
    _state.finalize()
    return _C.ACL_SUCCESS


@_api("get_version", fail=(0, 0, 0, _RET))
def get_version() -> tuple[int, int, int, int]:
    return (*_VERSION, _C.ACL_SUCCESS)


@_api("get_soc_name", fail="")
def get_soc_name() -> str:
    """OMRT_SOC_NAME, default Ascend310P3 (clients branch on 310 vs 310P for DVPP paths)."""
    return _os.environ.get("OMRT_SOC_NAME", "Ascend310P3")


@_api("get_recent_err_msg", fail="")
def get_recent_err_msg() -> str:
    return _state.recent_error()


@_api("app_log", "is", fail=None)
def app_log(level: int, message: str) -> None:
    _state.log(level, message)


# --- data buffers ------------------------------------------------------------------------------

@_api("create_data_buffer", "kk", fail=0)
def create_data_buffer(ptr: int, size: int) -> int:
    return _buffers.create_data_buffer(ptr, size)


@_api("destroy_data_buffer", "k")
def destroy_data_buffer(buf: int) -> int:
    _buffers.destroy_data_buffer(buf)
    return _C.ACL_SUCCESS


@_api("get_data_buffer_addr", "k", fail=0)
def get_data_buffer_addr(buf: int) -> int:
    return _buffers.data_buffer(buf).addr


@_api("get_data_buffer_size", "k", fail=0)
def get_data_buffer_size(buf: int) -> int:
    return _buffers.data_buffer(buf).size


@_api("get_data_buffer_size_v2", "k", fail=0)
def get_data_buffer_size_v2(buf: int) -> int:
    return _buffers.data_buffer(buf).size


@_api("update_data_buffer", "kkk")
def update_data_buffer(buf: int, ptr: int, size: int) -> int:
    _buffers.update_data_buffer(buf, ptr, size)
    return _C.ACL_SUCCESS


@_api("data_type_size", "i", fail=0)
def data_type_size(dtype: int) -> int:
    return _buffers.data_type_size(dtype)


# --- tensor descriptors ------------------------------------------------------------------------

@_api("create_tensor_desc", "iOi", fail=0)
def create_tensor_desc(dtype: int, dims: object, fmt: int) -> int:
    if not isinstance(dims, (list, tuple)) or not all(isinstance(d, int) for d in dims):
        raise _Escape(TypeError("acl.create_tensor_desc args parse failed"))
    return _buffers.create_tensor_desc(dtype, list(dims), fmt)


@_api("destroy_tensor_desc", "k", fail=None)
def destroy_tensor_desc(desc: int) -> None:
    _buffers.destroy_tensor_desc(desc)


@_api("get_tensor_desc_size", "k", fail=0)
def get_tensor_desc_size(desc: int) -> int:
    return _buffers.tensor_desc(desc).size


from acl import media, mdl, op, rt, util  # noqa: E402  (sub-modules, as pyACL registers them)
