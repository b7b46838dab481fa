"""Contexts are per thread; without one, calls answer 107002."""
from __future__ import annotations

import threading

import pytest

from omrt import constants as C
from omrt.errors import OmrtError
from omrt.runtime import context, device


def _in_thread(fn):
    out = {}

    def body():
        try:
            out["value"] = fn()
        except OmrtError as e:
            out["error"] = e

    t = threading.Thread(target=body)
    t.start()
    t.join()
    return out


def test_no_context_is_107002():
    with pytest.raises(OmrtError) as e:
        context.current()
    assert e.value.code == C.ACL_ERROR_RT_CONTEXT_NULL


def test_created_context_is_current_for_this_thread_only():
    ctx = context.create(0)
    try:
        assert context.current() is ctx
        other = _in_thread(context.current)
        assert other["error"].code == C.ACL_ERROR_RT_CONTEXT_NULL
        # another thread may adopt it by handle
        assert _in_thread(lambda: (context.set_current(ctx.handle), context.current())[1])["value"] is ctx
    finally:
        context.destroy(ctx.handle)
    assert context.find_current() is None


def test_set_device_default_context_then_explicit_context():
    device.set_device(0)
    try:
        default = context.current()
        ctx = context.create(0)
        assert context.current() is ctx
        context.destroy(ctx.handle)
        assert context.current() is default  # falls back to the device's default context
        with pytest.raises(OmrtError) as e:
            context.destroy(default.handle)
        assert e.value.code == C.ACL_ERROR_INVALID_PARAM
    finally:
        device.reset_device(0)


def test_bad_handles():
    for bad, code in ((0, C.ACL_ERROR_INVALID_PARAM), (0x1234, C.ACL_ERROR_RT_INVALID_HANDLE)):
        with pytest.raises(OmrtError) as e:
            context.set_current(bad)
        assert e.value.code == code
    with pytest.raises(OmrtError) as e:
        context.create(5)
    assert e.value.code == C.ACL_ERROR_RT_INVALID_DEVICEID


def test_destroyed_context_rejected():
    ctx = context.create(0)
    context.destroy(ctx.handle)
    with pytest.raises(OmrtError) as e:
        context.set_current(ctx.handle)
    assert e.value.code == C.ACL_ERROR_RT_INVALID_HANDLE
