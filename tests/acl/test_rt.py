"""acl.rt as clients call it: exact return shapes, codes, argument parsing."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import acl
from omrt import constants as C

OK = 0


@pytest.fixture
def device():
    assert acl.rt.set_device(0) == OK
    yield 0
    acl.rt.reset_device(0)


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def test_device_functions(device):
    assert acl.rt.get_device() == (0, OK)
    assert acl.rt.get_device_count() == (1, OK)
    assert acl.rt.set_device(1) == C.ACL_ERROR_RT_INVALID_DEVICEID
    assert acl.rt.reset_device(-1) == C.ACL_ERROR_RT_INVALID_DEVICEID
    assert acl.rt.synchronize_device(0, "extra") == OK
    assert acl.rt.get_run_mode() == (C.ACL_HOST, OK)


def test_without_context_is_107002():
    assert acl.rt.get_context() == (0, C.ACL_ERROR_RT_CONTEXT_NULL)
    assert acl.rt.create_stream() == (0, C.ACL_ERROR_RT_CONTEXT_NULL)
    assert acl.rt.malloc(64, 0) == (0, C.ACL_ERROR_RT_CONTEXT_NULL)
    assert acl.rt.get_device() == (0, C.ACL_ERROR_RT_CONTEXT_NULL)
    assert acl.rt.synchronize_device() == C.ACL_ERROR_RT_CONTEXT_NULL
    assert acl.rt.create_event() == (0, C.ACL_ERROR_RT_CONTEXT_NULL)
    assert acl.rt.get_mem_info(0) == (0, 0, C.ACL_ERROR_RT_CONTEXT_NULL)


def test_contexts_per_thread(device):
    ctx, ret = acl.rt.create_context(0)
    assert ret == OK and ctx and acl.rt.get_context() == (ctx, OK)
    seen = {}

    def worker():
        seen["before"] = acl.rt.get_context()
        seen["set"] = acl.rt.set_context(ctx)
        seen["after"] = acl.rt.get_context()

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert seen == {"before": (0, C.ACL_ERROR_RT_CONTEXT_NULL), "set": OK, "after": (ctx, OK)}
    assert acl.rt.destroy_context(ctx) == OK
    assert acl.rt.destroy_context(ctx) == C.ACL_ERROR_RT_INVALID_HANDLE
    assert acl.rt.set_context(0) == C.ACL_ERROR_INVALID_PARAM
    assert acl.rt.create_context(3) == (0, C.ACL_ERROR_RT_INVALID_DEVICEID)
    default, ret = acl.rt.get_context()
    assert ret == OK and acl.rt.destroy_context(default) == C.ACL_ERROR_INVALID_PARAM


def test_malloc_free_shapes(device):
    ptr, ret = acl.rt.malloc(100, C.ACL_MEM_MALLOC_NORMAL_ONLY)
    assert ret == OK and ptr % 64 == 0
    assert acl.rt.malloc(0, 0) == (0, C.ACL_ERROR_INVALID_PARAM)
    p32, ret = acl.rt.malloc_align32(33, 0)
    assert ret == OK
    assert acl.rt.free(ptr + 1) == C.ACL_ERROR_RT_MEMORY_FREE
    assert acl.rt.free(ptr) == OK and acl.rt.free(ptr) == C.ACL_ERROR_RT_MEMORY_FREE
    assert acl.rt.free(p32) == OK and acl.rt.free(0) == C.ACL_ERROR_INVALID_PARAM
    h, ret = acl.rt.malloc_host(64)
    assert ret == OK and acl.rt.free(h) == C.ACL_ERROR_RT_MEMORY_FREE
    assert acl.rt.free_host(h) == OK and acl.rt.free_host(h) == C.ACL_ERROR_RT_MEMORY_FREE
    assert acl.rt.malloc_host(0) == (0, C.ACL_ERROR_INVALID_PARAM)


def test_26gib_malloc_is_lazy_and_capacity_is_enforced(device, monkeypatch):
    before = _rss()
    free0, total, ret = acl.rt.get_mem_info(C.ACL_HBM_MEM)
    assert ret == OK and total == 32 << 30
    big, ret = acl.rt.malloc(26 * 1024 ** 3, C.ACL_MEM_MALLOC_HUGE_FIRST)
    assert ret == OK and _rss() - before < (64 << 20)
    free1, _, _ = acl.rt.get_mem_info(C.ACL_DDR_MEM)
    assert free0 - free1 >= 26 << 30
    assert acl.rt.malloc(8 << 30, 0) == (0, C.ACL_ERROR_RT_MEMORY_ALLOCATION)
    assert acl.rt.free(big) == OK
    monkeypatch.setenv("OMRT_DEVICE_MEMORY", str(1 << 20))
    assert acl.rt.malloc(2 << 20, 0) == (0, C.ACL_ERROR_RT_MEMORY_ALLOCATION)
    assert acl.rt.get_mem_info(9) == (0, 0, C.ACL_ERROR_INVALID_PARAM)


def test_memcpy_any_address_and_interior_pointers(device):
    total, ret = acl.rt.malloc(4 * 64, 0)
    src = np.arange(64, dtype=np.float32)
    for kind in range(8):  # every kind works for every real address
        assert acl.rt.memcpy(total, 256, src.ctypes.data, 256, kind) == OK
    out = bytes(64)
    assert acl.rt.memcpy(acl.util.bytes_to_ptr(out), 64, total + 64, 64, C.ACL_MEMCPY_DEVICE_TO_HOST) == OK
    np.testing.assert_array_equal(np.frombuffer(out, np.float32), src[16:32])
    assert acl.rt.memcpy(total, 0, src.ctypes.data, 0, 1) == OK
    assert acl.rt.memcpy(total, 256, src.ctypes.data, 256, 8) == C.ACL_ERROR_INVALID_PARAM
    assert acl.rt.memcpy(total, 256, src.ctypes.data, 256, -1) == C.ACL_ERROR_INVALID_PARAM
    assert acl.rt.memcpy(0, 256, src.ctypes.data, 4, 1) == C.ACL_ERROR_INVALID_PARAM
    assert acl.rt.memcpy(total, 4, src.ctypes.data, 8, 1) == C.ACL_ERROR_RT_PARAM_INVALID
    # 256 requested → 288 usable; running off the end is refused
    assert acl.rt.memcpy(total + 200, 256, src.ctypes.data, 88, 1) == OK
    assert acl.rt.memcpy(total + 200, 256, src.ctypes.data, 89, 1) == C.ACL_ERROR_RT_PARAM_INVALID
    with pytest.raises(TypeError, match="^acl.rt.memcpy args parse failed$"):
        acl.rt.memcpy(total, 4, b"abcd", 4, 1)
    with pytest.raises(TypeError, match="acl.rt.memcpy args parse failed"):
        acl.rt.memcpy(total, 4, 1, 4)
    assert acl.rt.free(total) == OK


def test_memset_on_host_memory(device):
    h, _ = acl.rt.malloc_host(16)
    assert acl.rt.memset(h, 16, 0x41, 16) == OK
    assert acl.util.ptr_to_bytes(h, 16) == b"A" * 16
    assert acl.rt.memset(h, 8, 0, 16) == C.ACL_ERROR_RT_PARAM_INVALID
    assert acl.rt.memset(0, 8, 0, 8) == C.ACL_ERROR_INVALID_PARAM
    assert acl.rt.free_host(h) == OK


def test_streams_and_async_copies(device):
    stream, ret = acl.rt.create_stream("ignored")
    assert ret == OK and stream
    d, _ = acl.rt.malloc(64, 0)
    src = np.full(16, 3, np.float32)
    dst = np.zeros(16, np.float32)
    assert acl.rt.memset_async(d, 64, 0, 64, stream) == OK
    assert acl.rt.memcpy_async(d, 64, src.ctypes.data, 64, 1, stream) == OK
    assert acl.rt.memcpy_async(dst.ctypes.data, 64, d, 64, 2, stream) == OK
    assert acl.rt.memcpy_async(d, 8, src.ctypes.data, 64, 1, stream) == C.ACL_ERROR_RT_PARAM_INVALID
    assert acl.rt.synchronize_stream(stream) == OK
    np.testing.assert_array_equal(dst, src)
    assert acl.rt.memcpy_async(d, 64, src.ctypes.data, 64, 1, 0) == OK  # 0 = default stream
    assert acl.rt.synchronize_stream(0) == OK
    assert acl.rt.destroy_stream(stream) == OK
    assert acl.rt.destroy_stream(stream) == C.ACL_ERROR_RT_INVALID_HANDLE
    assert acl.rt.synchronize_stream(stream) == C.ACL_ERROR_RT_INVALID_HANDLE
    assert acl.rt.free(d) == OK


def test_callbacks_via_process_report(device):
    """The flow of resnet50_async acl_net.py."""
    stream, _ = acl.rt.create_stream()
    ctx, _ = acl.rt.get_context()
    state = {"exit": False, "codes": set(), "ran_on": []}

    def process_callback(args):
        context, timeout = args
        acl.rt.set_context(context)
        while not state["exit"]:
            state["codes"].add(acl.rt.process_report(timeout))

    tid, ret = acl.util.start_thread(process_callback, [ctx, 20])
    assert ret == OK and tid
    assert acl.rt.subscribe_report(tid, stream) == OK
    assert acl.rt.subscribe_report(tid, stream) == C.ACL_ERROR_REPEAT_SUBSCRIBE
    got = []
    for i in range(3):
        cb = lambda d: (got.append(d), state["ran_on"].append(threading.get_ident()))  # noqa: E731
        assert acl.rt.launch_callback(cb, i, C.ACL_CALLBACK_BLOCK, stream) == OK
    assert acl.rt.synchronize_stream(stream) == OK
    assert got == [0, 1, 2] and set(state["ran_on"]) == {tid}
    assert acl.rt.unsubscribe_report(tid, stream) == OK
    assert acl.rt.unsubscribe_report(tid, stream) == C.ACL_ERROR_RT_STREAM_NO_CB_REG
    state["exit"] = True
    assert acl.util.stop_thread(tid) == OK
    assert state["codes"] <= {OK, C.ACL_ERROR_RT_REPORT_TIMEOUT}
    assert acl.rt.process_report(10) == C.ACL_ERROR_RT_REPORT_TIMEOUT
    assert acl.rt.launch_callback(5, None, 0, stream) == C.ACL_ERROR_INVALID_PARAM
    acl.rt.destroy_stream(stream)


def test_events(device):
    stream, _ = acl.rt.create_stream()
    start, ret = acl.rt.create_event()
    end, _ = acl.rt.create_event()
    assert ret == OK and start != end
    assert acl.rt.query_event_status(start) == (0, OK)  # never recorded: NOT_READY
    assert acl.rt.event_elapsed_time(start, end)[1] == C.ACL_ERROR_RT_PARAM_INVALID
    gate = threading.Event()
    acl.rt.launch_callback(lambda _: gate.wait(), None, 0, stream)
    assert acl.rt.record_event(start, stream) == OK
    assert acl.rt.query_event_status(start) == (0, OK)
    gate.set()
    acl.rt.launch_callback(lambda _: time.sleep(0.03), None, 0, stream)
    assert acl.rt.record_event(end, stream) == OK
    assert acl.rt.synchronize_event(end) == OK
    assert acl.rt.query_event_status(end) == (1, OK)
    ms, ret = acl.rt.event_elapsed_time(start, end)
    assert ret == OK and isinstance(ms, float) and 25 <= ms < 1000
    assert acl.rt.destroy_event(start) == OK and acl.rt.destroy_event(start) == C.ACL_ERROR_RT_INVALID_HANDLE
    assert acl.rt.query_event_status(start) == (0, C.ACL_ERROR_RT_INVALID_HANDLE)
    assert acl.rt.destroy_event(end) == OK
    acl.rt.destroy_stream(stream)


def test_failed_stream_task_code_comes_back_on_synchronize(device):
    stream, _ = acl.rt.create_stream()
    d, _ = acl.rt.malloc(32, 0)
    assert acl.rt.free(d) == OK
    from omrt.errors import OmrtError
    from omrt.runtime import stream as rt_stream

    def fail():
        raise OmrtError(C.ACL_ERROR_RT_MODEL_EXECUTE, "model failed")

    rt_stream.get(stream).submit(fail)
    assert acl.rt.synchronize_stream(stream) == C.ACL_ERROR_RT_MODEL_EXECUTE
    assert "model failed" in acl.get_recent_err_msg()
    assert acl.rt.synchronize_stream(stream) == OK
    acl.rt.destroy_stream(stream)


@pytest.mark.parametrize("call", [
    lambda: acl.rt.set_device("0"), lambda: acl.rt.set_device(None), lambda: acl.rt.set_device(1.0),
    lambda: acl.rt.set_device(2 ** 31), lambda: acl.rt.malloc(1.5, 0), lambda: acl.rt.malloc(16),
    lambda: acl.rt.free(None), lambda: acl.rt.create_context(), lambda: acl.rt.memset(1, 2, 3),
    lambda: acl.rt.subscribe_report(None, 0), lambda: acl.rt.process_report("1"),
    lambda: acl.rt.set_device(device_id=0),
])
def test_type_errors(call):
    with pytest.raises(TypeError, match=r"^acl\.rt\.\w+ args parse failed$"):
        call()


def test_wrapping_and_bool_like_c(device):
    assert acl.rt.free(-1) == C.ACL_ERROR_RT_MEMORY_FREE  # wraps to 2**64-1, then unknown
    assert "0xffffffffffffffff" in acl.get_recent_err_msg()
    ptr, ret = acl.rt.malloc(True, 0)
    assert ret == OK and acl.rt.free(ptr) == OK
