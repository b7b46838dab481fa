"""Streams run tasks in order on their own worker; callbacks reach subscribed threads."""
from __future__ import annotations

import threading
import time

import pytest

from omrt import constants as C
from omrt.errors import OmrtError
from omrt.runtime import context, stream


@pytest.fixture
def ctx():
    c = context.create(0)
    yield c
    context.destroy(c.handle)


def test_tasks_run_in_order_on_one_worker(ctx):
    s = ctx.create_stream()
    seen = []
    for i in range(50):
        s.submit(lambda i=i: seen.append((i, threading.get_ident())))
    s.synchronize()
    assert [i for i, _ in seen] == list(range(50))
    assert {t for _, t in seen} == {s.worker_ident}
    assert s.worker_ident != threading.get_ident()


def test_synchronize_waits_for_slow_tasks(ctx):
    s = ctx.create_stream()
    done = []
    s.submit(lambda: (time.sleep(0.05), done.append(1)))
    assert not done or s.idle()
    s.synchronize()
    assert done == [1]


def test_failure_is_raised_once_and_work_continues(ctx):
    s = ctx.create_stream()
    after = []
    s.submit(lambda: (_ for _ in ()).throw(OmrtError(C.ACL_ERROR_RT_MODEL_EXECUTE, "boom")))
    s.submit(lambda: 1 / 0)
    s.submit(lambda: after.append(1))
    with pytest.raises(OmrtError) as e:
        s.synchronize()
    assert e.value.code == C.ACL_ERROR_RT_MODEL_EXECUTE and after == [1]
    s.synchronize()
    s.submit(lambda: 1 / 0)
    with pytest.raises(OmrtError) as e:
        s.synchronize()
    assert e.value.code == C.ACL_ERROR_RT_INTERNAL_ERROR and "ZeroDivisionError" in e.value.message


def test_resolve_and_destroy(ctx):
    s = ctx.create_stream()
    assert stream.resolve(0) is ctx.default_stream()
    assert stream.resolve(s.handle) is s
    s.destroy()
    with pytest.raises(OmrtError) as e:
        stream.get(s.handle)
    assert e.value.code == C.ACL_ERROR_RT_INVALID_HANDLE
    with pytest.raises(OmrtError):
        s.submit(lambda: None)


def test_destroying_context_destroys_streams(ctx):
    c = context.create(0)
    s = c.create_stream()
    context.destroy(c.handle)
    assert not s.alive
    context.set_current(ctx.handle)


def test_synchronize_all_device_streams(ctx):
    a, b = ctx.create_stream(), ctx.create_stream()
    out = []
    a.submit(lambda: (time.sleep(0.02), out.append("a")))
    b.submit(lambda: (time.sleep(0.02), out.append("b")))
    stream.synchronize_all(0)
    assert sorted(out) == ["a", "b"]


def test_callback_without_subscriber_runs_on_worker(ctx):
    s = ctx.create_stream()
    seen = []
    stream.launch_callback(s, lambda d: seen.append((d, threading.get_ident())), "x", False)
    s.synchronize()
    assert seen == [("x", s.worker_ident)]


def test_callbacks_run_on_the_reporting_thread(ctx):
    s = ctx.create_stream()
    seen, stop = [], threading.Event()
    timeouts = []

    def reporter(_arg):
        while not stop.is_set():
            try:
                stream.process_report(20)
            except OmrtError as e:
                timeouts.append(e.code)

    tid = stream.start_thread(reporter, None)
    stream.subscribe(tid, s)
    with pytest.raises(OmrtError) as e:
        stream.subscribe(tid, s)
    assert e.value.code == C.ACL_ERROR_REPEAT_SUBSCRIBE
    for i in range(3):
        stream.launch_callback(s, lambda d: seen.append((d, threading.get_ident())), i, True)
    s.synchronize()  # blocking callbacks: done by the time the stream drains
    assert [d for d, _ in seen] == [0, 1, 2] and {t for _, t in seen} == {tid}
    stream.unsubscribe(tid, s)
    with pytest.raises(OmrtError) as e:
        stream.unsubscribe(tid, s)
    assert e.value.code == C.ACL_ERROR_RT_STREAM_NO_CB_REG
    stop.set()
    stream.stop_thread(tid)
    assert set(timeouts) <= {C.ACL_ERROR_RT_REPORT_TIMEOUT}


def test_process_report_timeout():
    t0 = time.perf_counter()
    with pytest.raises(OmrtError) as e:
        stream.process_report(30)
    assert e.value.code == C.ACL_ERROR_RT_REPORT_TIMEOUT
    assert time.perf_counter() - t0 >= 0.025


def test_thread_failure_and_unknown_thread():
    tid = stream.start_thread(lambda a: 1 / 0, None)
    with pytest.raises(OmrtError) as e:
        stream.stop_thread(tid)
    assert e.value.code == C.ACL_ERROR_FAILURE
    with pytest.raises(OmrtError) as e:
        stream.stop_thread(tid)
    assert e.value.code == C.ACL_ERROR_INVALID_PARAM
    with pytest.raises(OmrtError):
        stream.start_thread(42, None)


def test_destroy_at_interpreter_exit_survives_a_worker_that_died_holding_the_lock(ctx, monkeypatch):
    """At exit a daemon worker can die right after taking its stream's lock; destroying the stream
    from a __del__ in the final garbage collection must still return."""
    s = ctx.create_stream()
    s.submit(lambda: None)
    s.synchronize()
    taken, finish = threading.Event(), threading.Event()

    def hold_lock() -> None:  # stands in for the dead worker: takes the lock, never lets go in time
        with s._cv:
            taken.set()
            finish.wait(30)

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert taken.wait(5)
        monkeypatch.setattr(stream.sys, "is_finalizing", lambda: True)
        start = time.monotonic()
        s.synchronize()
        s.destroy()
        assert time.monotonic() - start < 5
        assert not s.alive
        with pytest.raises(OmrtError):
            stream.get(s.handle)
    finally:
        finish.set()
        holder.join()
