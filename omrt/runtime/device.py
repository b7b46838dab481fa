"""Devices: how many there are, and the set_device/reset_device reference count that keeps a
device's default context alive."""
from __future__ import annotations

import os
import threading

from omrt import constants as C
from omrt.errors import OmrtError
from omrt.runtime import context

_lock = threading.Lock()
_refcounts: dict[int, int] = {}


def device_count() -> int:
    """OMRT_DEVICE_COUNT (default 1)."""
    try:
        n = int(os.environ.get("OMRT_DEVICE_COUNT", 1))
    except ValueError:
        return 1
    return max(n, 1)


def check_device(device: int) -> None:
    n = device_count()
    if not 0 <= device < n:
        raise OmrtError(C.ACL_ERROR_RT_INVALID_DEVICEID, f"device id {device} is out of range [0, {n})")


def set_device(device: int) -> None:
    """Count one more user of `device`; the first one creates its default context and stream.
    The calling thread then works on that device."""
    check_device(device)
    with _lock:
        _refcounts[device] = _refcounts.get(device, 0) + 1
        context.open_default(device)


def reset_device(device: int) -> None:
    """Count one user less; at zero the default context and its streams go. Memory stays: models may
    still hold it, and clients free it themselves. Resetting an unused device is a no-op."""
    check_device(device)
    with _lock:
        count = _refcounts.get(device, 0)
        if count <= 0:
            return
        if count == 1:
            del _refcounts[device]
            context.close_default(device)
        else:
            _refcounts[device] = count - 1


def refcount(device: int) -> int:
    return _refcounts.get(device, 0)


def current_device() -> int:
    """The device of the calling thread's context (107002 without one)."""
    return context.current().device
