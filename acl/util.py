"""acl.util: raw pointers to and from bytes / numpy, and client threads for process_report loops."""
from __future__ import annotations

import ctypes as _ctypes
import warnings as _warnings

import numpy as _np

from acl._facade import RET as _RET, Escape as _Escape, acl_api as _api
from omrt import constants as _C
from omrt.errors import OmrtError as _OmrtError
from omrt.runtime import memory as _memory, stream as _stream

_OK = _C.ACL_SUCCESS


@_api("util.bytes_to_ptr", "O", fail=0)
def bytes_to_ptr(data: object) -> int:
    """Address of the bytes object's own buffer (no copy): writes through it change the bytes."""
    if not isinstance(data, bytes):
        raise _Escape(ValueError("acl.util.bytes_to_ptr needs an byte as argument"))
    return _ctypes.cast(_ctypes.c_char_p(data), _ctypes.c_void_p).value or 0


@_api("util.ptr_to_bytes", "kk", fail=b"")
def ptr_to_bytes(ptr: int, size: int) -> bytes:
    """A copy of [ptr, ptr+size)."""
    if size == 0:
        return b""
    _memory.check_range(ptr, size, "ptr_to_bytes ptr")
    return _ctypes.string_at(ptr, size)


@_api("util.numpy_to_ptr", "O", fail=0)
def numpy_to_ptr(array: object) -> int:
    """Address of the array's data (no copy); deprecated in pyACL, so it warns likewise."""
    if not isinstance(array, _np.ndarray):
        raise _Escape(ValueError("acl.util.numpy_to_ptr needs a numpy.ndarray as argument"))
    _warnings.warn("acl.util.numpy_to_ptr will be deprecated, use acl.util.bytes_to_ptr instead", Warning,
                   stacklevel=3)
    if not array.flags.c_contiguous:
        _warnings.warn("acl.util.numpy_to_ptr: the array is not contiguous", Warning, stacklevel=3)
    return array.__array_interface__["data"][0]


@_api("util.numpy_contiguous_to_ptr", "O", fail=(0, None))
def numpy_contiguous_to_ptr(array: object) -> tuple[int, object]:
    """(address, contiguous array): a copy only when `array` is not C-contiguous already."""
    if not isinstance(array, _np.ndarray):
        raise _Escape(ValueError("acl.util.numpy_contiguous_to_ptr needs a numpy.ndarray as argument"))
    contiguous = _np.ascontiguousarray(array)
    return contiguous.__array_interface__["data"][0], contiguous


@_api("util.ptr_to_numpy", "kOi", fail=None)
def ptr_to_numpy(ptr: int, shape: object, type_num: int) -> object:
    """A writable view (no copy) of memory at `ptr`; `shape` must be a tuple, `type_num` a NumPy
    C type number (np.dtype(x).num)."""
    if not isinstance(shape, tuple) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise _Escape(TypeError("acl.util.ptr_to_numpy args parse failed"))
    dtype = _dtype_from_num(type_num)
    _warnings.warn("acl.util.ptr_to_numpy will be deprecated", Warning, stacklevel=3)
    count = 1
    for d in shape:
        count *= d
    nbytes = count * dtype.itemsize
    if ptr == 0:
        raise _OmrtError(_C.ACL_ERROR_INVALID_PARAM, "ptr_to_numpy ptr is NULL")
    return _memory.view(ptr, nbytes, dtype).reshape(shape)


def _dtype_from_num(type_num: int) -> _np.dtype:
    for t in _np.sctypeDict.values():
        dt = _np.dtype(t)
        if dt.num == type_num and dt.kind != "V":
            return dt
    raise _OmrtError(_C.ACL_ERROR_INVALID_PARAM, f"unknown NumPy type number {type_num}")


@_api("util.start_thread", "OO", fail=(0, _RET))
def start_thread(fn: object, arg: object) -> tuple[int, int]:
    """(thread id, ret): run fn(arg) on a new thread."""
    return _stream.start_thread(fn, arg), _OK


@_api("util.stop_thread", "K")
def stop_thread(thread_id: int) -> int:
    """Join the thread started by start_thread."""
    _stream.stop_thread(thread_id)
    return _OK
