"""Events complete when their stream reaches them; elapsed time compares their timestamps."""
from __future__ import annotations

import threading
import time

import pytest

from omrt import constants as C
from omrt.errors import OmrtError
from omrt.runtime import context, event


@pytest.fixture
def s():
    c = context.create(0)
    yield c.create_stream()
    context.destroy(c.handle)


def test_elapsed_time_measures_the_work_between(s):
    start, end = event.Event(0), event.Event(0)
    start.record(s)
    s.submit(lambda: time.sleep(0.05))
    end.record(s)
    end.synchronize()
    assert start.complete and end.complete
    ms = event.elapsed_ms(start, end)
    assert 45 <= ms < 1000


def test_not_ready_until_reached(s):
    gate = threading.Event()
    ev = event.Event(0)
    assert not ev.complete and not ev.recorded
    ev.synchronize()  # never recorded: returns at once
    s.submit(gate.wait)
    ev.record(s)
    assert not ev.complete
    with pytest.raises(OmrtError) as e:
        event.elapsed_ms(ev, ev)
    assert e.value.code == C.ACL_ERROR_RT_PARAM_INVALID
    gate.set()
    ev.synchronize()
    assert ev.complete
    ev.reset()
    assert not ev.recorded


def test_unrecorded_elapsed_is_an_error():
    with pytest.raises(OmrtError, match="never recorded"):
        event.elapsed_ms(event.Event(0), event.Event(0))


def test_get_and_destroy():
    ev = event.Event(0)
    assert event.get(ev.handle) is ev
    ev.destroy()
    with pytest.raises(OmrtError) as e:
        event.get(ev.handle)
    assert e.value.code == C.ACL_ERROR_RT_INVALID_HANDLE
