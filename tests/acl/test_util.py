"""acl.util: pointers into bytes and numpy, views, copies, threads."""
from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest

import acl
from omrt import constants as C


@pytest.fixture
def device():
    acl.rt.set_device(0)
    yield
    acl.rt.reset_device(0)


def test_bytes_to_ptr_points_into_the_object():
    b = bytes(8)
    p = acl.util.bytes_to_ptr(b)
    src = np.arange(8, dtype=np.uint8)
    assert acl.rt.memcpy(p, 8, src.ctypes.data, 8, 0) == 0
    assert b == bytes(range(8))
    with pytest.raises(ValueError):
        acl.util.bytes_to_ptr(bytearray(4))
    with pytest.raises(TypeError, match="acl.util.bytes_to_ptr args parse failed"):
        acl.util.bytes_to_ptr()


def test_ptr_to_bytes_copies(device):
    d, _ = acl.rt.malloc(16, 0)
    acl.rt.memset(d, 16, 7, 16)
    copy = acl.util.ptr_to_bytes(d, 16)
    acl.rt.memset(d, 16, 0, 16)
    assert copy == b"\x07" * 16
    assert acl.util.ptr_to_bytes(d, 0) == b""
    assert acl.util.ptr_to_bytes(d + 56, 16) == b""  # 16 asked → 64 usable: runs off the end
    assert "past the end" in acl.get_recent_err_msg()
    acl.rt.free(d)


def test_ptr_to_numpy_is_a_writable_view(device):
    d, _ = acl.rt.malloc(24, 0)
    with pytest.warns(Warning):
        arr = acl.util.ptr_to_numpy(d, (2, 3), 11)
    assert arr.shape == (2, 3) and arr.dtype == np.float32 and arr.flags.writeable
    arr[:] = 5
    assert np.frombuffer(acl.util.ptr_to_bytes(d, 24), np.float32).tolist() == [5.0] * 6
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert acl.util.ptr_to_numpy(d, (4,), 23).dtype == np.float16
        assert acl.util.ptr_to_numpy(d, (3,), 7).dtype == np.int64
        with pytest.raises(TypeError, match="acl.util.ptr_to_numpy args parse failed"):
            acl.util.ptr_to_numpy(d, [2, 3], 11)
        assert acl.util.ptr_to_numpy(d, (2,), 999) is None
        assert acl.util.ptr_to_numpy(0, (2,), 11) is None
    acl.rt.free(d)


def test_numpy_pointers():
    a = np.arange(6, dtype=np.int32)
    with pytest.warns(Warning, match="deprecated"):
        assert acl.util.numpy_to_ptr(a) == a.ctypes.data
    with pytest.raises(ValueError):
        acl.util.numpy_to_ptr([1, 2])
    strided = np.arange(12, dtype=np.int32)[::2]
    ptr, arr2 = acl.util.numpy_contiguous_to_ptr(strided)
    assert arr2.flags.c_contiguous and ptr == arr2.ctypes.data
    np.testing.assert_array_equal(arr2, strided)
    ptr, same = acl.util.numpy_contiguous_to_ptr(a)
    assert ptr == a.ctypes.data


def test_threads():
    seen = []
    tid, ret = acl.util.start_thread(lambda arg: seen.append((arg, threading.get_ident())), "x")
    assert ret == 0 and tid
    assert acl.util.stop_thread(tid) == 0
    assert seen == [("x", tid)]
    assert acl.util.stop_thread(tid) == C.ACL_ERROR_INVALID_PARAM
    assert acl.util.start_thread(None, 1) == (0, C.ACL_ERROR_INVALID_PARAM)
    tid, _ = acl.util.start_thread(lambda arg: 1 / 0, None)
    assert acl.util.stop_thread(tid) == C.ACL_ERROR_FAILURE
    with pytest.raises(TypeError, match="acl.util.stop_thread args parse failed"):
        acl.util.stop_thread("1")
