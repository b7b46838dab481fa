"""Device count, set/reset reference counting and the default context."""
from __future__ import annotations

import pytest

from omrt import constants as C
from omrt.errors import OmrtError
from omrt.runtime import context, device


def test_device_count_from_env(monkeypatch):
    assert device.device_count() == 1
    monkeypatch.setenv("OMRT_DEVICE_COUNT", "4")
    assert device.device_count() == 4
    device.check_device(3)
    with pytest.raises(OmrtError) as e:
        device.check_device(4)
    assert e.value.code == C.ACL_ERROR_RT_INVALID_DEVICEID


@pytest.mark.parametrize("bad", [-1, 1, 99])
def test_invalid_device(bad):
    with pytest.raises(OmrtError) as e:
        device.set_device(bad)
    assert e.value.code == C.ACL_ERROR_RT_INVALID_DEVICEID


def test_refcount_keeps_default_context():
    device.set_device(0)
    ctx = context.current()
    assert ctx.is_default and ctx.device == 0
    stream = ctx.default_stream()
    device.set_device(0)
    device.reset_device(0)
    assert context.current() is ctx and device.refcount(0) == 1
    device.reset_device(0)
    assert device.refcount(0) == 0 and not ctx.alive and not stream.alive
    assert context.find_current() is None
    device.reset_device(0)  # resetting an unused device is a no-op


def test_current_device_needs_context():
    with pytest.raises(OmrtError) as e:
        device.current_device()
    assert e.value.code == C.ACL_ERROR_RT_CONTEXT_NULL
