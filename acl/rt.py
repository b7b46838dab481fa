"""acl.rt: devices, contexts, streams, events, memory and callbacks."""
from __future__ import annotations


from acl._facade import RET as _RET, acl_api as _api
from omrt import constants as _C
from omrt.errors import OmrtError as _OmrtError
from omrt.runtime import context as _context, device as _device, event as _event
from omrt.runtime import memory as _memory, stream as _stream

_OK = _C.ACL_SUCCESS
_MEM_ATTRS = range(0, 6)


# --- devices ------------------------------------------------------------------------------------

@_api("rt.set_device", "i")
def set_device(device_id: int) -> int:
    _device.set_device(device_id)
    return _OK


@_api("rt.reset_device", "i")
def reset_device(device_id: int) -> int:
    _device.reset_device(device_id)
    return _OK


@_api("rt.get_device", fail=(0, _RET))
def get_device() -> tuple[int, int]:
    return _device.current_device(), _OK


@_api("rt.get_device_count", fail=(0, _RET))
def get_device_count() -> tuple[int, int]:
    return _device.device_count(), _OK


@_api("rt.get_run_mode", fail=(_C.ACL_HOST, _RET))
def get_run_mode() -> tuple[int, int]:
    """Always ACL_HOST: the program runs on the host that owns the "device"; works before init."""
    return _C.ACL_HOST, _OK


@_api("rt.synchronize_device")
def synchronize_device() -> int:
    _stream.synchronize_all(_device.current_device())
    return _OK


# --- contexts -----------------------------------------------------------------------------------

@_api("rt.create_context", "i", fail=(0, _RET))
def create_context(device_id: int) -> tuple[int, int]:
    return _context.create(device_id).handle, _OK


@_api("rt.destroy_context", "k")
def destroy_context(context: int) -> int:
    _context.destroy(context)
    return _OK


@_api("rt.set_context", "k")
def set_context(context: int) -> int:
    _context.set_current(context)
    return _OK


@_api("rt.get_context", fail=(0, _RET))
def get_context() -> tuple[int, int]:
    return _context.current().handle, _OK


# --- streams ------------------------------------------------------------------------------------

@_api("rt.create_stream", fail=(0, _RET))
def create_stream() -> tuple[int, int]:
    return _context.current().create_stream().handle, _OK


@_api("rt.destroy_stream", "k")
def destroy_stream(stream: int) -> int:
    s = _stream.get(stream)
    s.context.forget_stream(s)
    s.destroy()
    return _OK


@_api("rt.synchronize_stream", "k")
def synchronize_stream(stream: int) -> int:
    _stream.resolve(stream).synchronize()
    return _OK


@_api("rt.launch_callback", "OOik")
def launch_callback(fn: object, user_data: object, block_flag: int, stream: int) -> int:
    if not callable(fn):
        raise _OmrtError(_C.ACL_ERROR_INVALID_PARAM, f"callback {type(fn).__name__} is not callable")
    _stream.launch_callback(_stream.resolve(stream), fn, user_data, block_flag == _C.ACL_CALLBACK_BLOCK)
    return _OK


@_api("rt.subscribe_report", "Kk")
def subscribe_report(thread_id: int, stream: int) -> int:
    _stream.subscribe(thread_id, _stream.resolve(stream))
    return _OK


@_api("rt.unsubscribe_report", "Kk")
def unsubscribe_report(thread_id: int, stream: int) -> int:
    _stream.unsubscribe(thread_id, _stream.resolve(stream))
    return _OK


@_api("rt.process_report", "i")
def process_report(timeout_ms: int) -> int:
    _stream.process_report(timeout_ms)
    return _OK


# --- events -------------------------------------------------------------------------------------

@_api("rt.create_event", fail=(0, _RET))
def create_event() -> tuple[int, int]:
    return _event.Event(_device.current_device()).handle, _OK


@_api("rt.destroy_event", "k")
def destroy_event(event: int) -> int:
    _event.get(event).destroy()
    return _OK


@_api("rt.record_event", "kk")
def record_event(event: int, stream: int) -> int:
    _event.get(event).record(_stream.resolve(stream))
    return _OK


@_api("rt.reset_event", "kk")
def reset_event(event: int, stream: int) -> int:
    _event.get(event).reset()
    return _OK


@_api("rt.stream_wait_event", "kk")
def stream_wait_event(stream: int, event: int) -> int:
    _stream.resolve(stream).submit(_event.get(event).wait_task())
    return _OK


@_api("rt.synchronize_event", "k")
def synchronize_event(event: int) -> int:
    _event.get(event).synchronize()
    return _OK


@_api("rt.query_event_status", "k", fail=(_event.RECORDED_STATUS_NOT_READY, _RET))
def query_event_status(event: int) -> tuple[int, int]:
    """(aclrtEventRecordedStatus, ret): COMPLETE=1 once recorded work ran, else NOT_READY=0."""
    ev = _event.get(event)
    return (_event.RECORDED_STATUS_COMPLETE if ev.complete else _event.RECORDED_STATUS_NOT_READY), _OK


@_api("rt.query_event", "k", fail=(_event.EVENT_STATUS_NOT_READY, _RET))
def query_event(event: int) -> tuple[int, int]:
    """(aclrtEventStatus, ret), the older form: COMPLETE=0 (also when never recorded), NOT_READY=1."""
    ev = _event.get(event)
    ready = ev.complete or not ev.recorded
    return (_event.EVENT_STATUS_COMPLETE if ready else _event.EVENT_STATUS_NOT_READY), _OK


@_api("rt.event_elapsed_time", "kk", fail=(0.0, _RET))
def event_elapsed_time(start: int, end: int) -> tuple[float, int]:
    return _event.elapsed_ms(_event.get(start), _event.get(end)), _OK


# --- memory -------------------------------------------------------------------------------------

@_api("rt.malloc", "ki", fail=(0, _RET))
def malloc(size: int, policy: int) -> tuple[int, int]:
    return _memory.malloc(size, _device.current_device(), policy), _OK


@_api("rt.malloc_align32", "ki", fail=(0, _RET))
def malloc_align32(size: int, policy: int) -> tuple[int, int]:
    return _memory.malloc(size, _device.current_device(), policy, pad=False), _OK


@_api("rt.free", "k")
def free(dev_ptr: int) -> int:
    _memory.free(dev_ptr)
    return _OK


@_api("rt.malloc_host", "k", fail=(0, _RET))
def malloc_host(size: int) -> tuple[int, int]:
    return _memory.malloc_host(size), _OK


@_api("rt.free_host", "k")
def free_host(host_ptr: int) -> int:
    _memory.free_host(host_ptr)
    return _OK


@_api("rt.memcpy", "kkkki")
def memcpy(dst: int, dst_max: int, src: int, count: int, kind: int) -> int:
    _memory.memcpy(dst, dst_max, src, count, kind)
    return _OK


@_api("rt.memcpy_async", "kkkkik")
def memcpy_async(dst: int, dst_max: int, src: int, count: int, kind: int, stream: int) -> int:
    _memory.check_memcpy(dst, dst_max, src, count, kind)
    _stream.resolve(stream).submit(lambda: _memory.memcpy(dst, dst_max, src, count, kind))
    return _OK


@_api("rt.memset", "kkik")
def memset(dev_ptr: int, max_count: int, value: int, count: int) -> int:
    _memory.memset(dev_ptr, max_count, value, count)
    return _OK


@_api("rt.memset_async", "kkikk")
def memset_async(dev_ptr: int, max_count: int, value: int, count: int, stream: int) -> int:
    _memory.check_memset(dev_ptr, max_count, count)
    _stream.resolve(stream).submit(lambda: _memory.memset(dev_ptr, max_count, value, count))
    return _OK


@_api("rt.get_mem_info", "i", fail=(0, 0, _RET))
def get_mem_info(attr: int) -> tuple[int, int, int]:
    if attr not in _MEM_ATTRS:
        raise _OmrtError(_C.ACL_ERROR_INVALID_PARAM, f"memory attribute {attr} is not an aclrtMemAttr (0..5)")
    free_bytes, total = _memory.mem_info(_device.current_device())
    return free_bytes, total, _OK
