"""Contexts: which device (and default stream) the calling thread's work goes to.

The current context is per thread. A thread that never set one falls back to the default
context of the device it last set with set_device; without either, calls answer 107002.
"""
from __future__ import annotations

import threading

from omrt import constants as C
from omrt.errors import OmrtError
from omrt.runtime import state
from omrt.runtime.stream import Stream


class Context:
    """A device binding that owns streams; the default one per device is made by set_device."""

    def __init__(self, device: int, is_default: bool) -> None:
        self.device = device
        self.is_default = is_default
        self.alive = True
        self.streams: set[Stream] = set()
        self._default_stream: Stream | None = None
        self._lock = threading.Lock()
        self.handle = state.handles.add(self)

    def default_stream(self) -> Stream:
        """The stream that handle 0 means in this context (made on first use)."""
        with self._lock:
            if self._default_stream is None:
                self._default_stream = Stream(self)
            return self._default_stream

    def create_stream(self) -> Stream:
        stream = Stream(self)
        with self._lock:
            self.streams.add(stream)
        return stream

    def forget_stream(self, stream: Stream) -> None:
        with self._lock:
            self.streams.discard(stream)

    def all_streams(self) -> list[Stream]:
        with self._lock:
            extra = [self._default_stream] if self._default_stream is not None else []
            return [*self.streams, *extra]

    def destroy(self) -> None:
        """Release the context and every stream in it."""
        self.alive = False
        for stream in self.all_streams():
            stream.destroy()
        with self._lock:
            self.streams.clear()
            self._default_stream = None
        state.handles.remove(self.handle)


_tls = threading.local()
_lock = threading.Lock()
_defaults: dict[int, Context] = {}


def _check_device(device: int) -> None:
    from omrt.runtime.device import check_device
    check_device(device)


def create(device: int) -> Context:
    """A new context on `device`, made current for the calling thread."""
    _check_device(device)
    ctx = Context(device, is_default=False)
    _tls.context = ctx
    return ctx


def get(handle: int) -> Context:
    ctx = state.handles.get(handle, Context, "context", C.ACL_ERROR_RT_INVALID_HANDLE)
    if not ctx.alive:
        raise OmrtError(C.ACL_ERROR_RT_INVALID_HANDLE, f"context {handle:#x} is destroyed")
    return ctx


def set_current(handle: int) -> None:
    _tls.context = get(handle)


def destroy(handle: int) -> None:
    ctx = get(handle)
    if ctx.is_default:
        raise OmrtError(C.ACL_ERROR_INVALID_PARAM,
                        f"context {handle:#x} is the default context of device {ctx.device}; "
                        "it goes with acl.rt.reset_device")
    ctx.destroy()
    if getattr(_tls, "context", None) is ctx:
        _tls.context = None


def find_current() -> Context | None:
    """The calling thread's context, or None."""
    ctx = getattr(_tls, "context", None)
    if ctx is not None and ctx.alive:
        return ctx
    device = getattr(_tls, "device", None)
    if device is not None:
        return _defaults.get(device)
    return None


def current() -> Context:
    """The calling thread's context, or 107002 when it has none."""
    ctx = find_current()
    if ctx is None:
        raise OmrtError(C.ACL_ERROR_RT_CONTEXT_NULL,
                        "no current context: call acl.rt.set_device or acl.rt.create_context/set_context first")
    return ctx


# --- default contexts, driven by device.set_device / reset_device ----------------------------

def open_default(device: int) -> Context:
    """The default context of `device` (made if missing), made current for the calling thread."""
    with _lock:
        ctx = _defaults.get(device)
        if ctx is None:
            ctx = _defaults[device] = Context(device, is_default=True)
    _tls.device = device
    _tls.context = None
    return ctx


def close_default(device: int) -> None:
    """Release the default context of `device` and its streams."""
    with _lock:
        ctx = _defaults.pop(device, None)
    if ctx is not None:
        ctx.destroy()
    if getattr(_tls, "device", None) == device:
        _tls.device = None
