"""Streams: ordered work queues, each drained by its own worker thread; plus the report machinery
that runs launch_callback functions on a subscribed thread (pyACL's process_report loop).

A task is any callable without arguments. A task that raises marks the stream failed; the next
synchronize re-raises it (as OmrtError) once. Work keeps flowing after a failure.
"""
from __future__ import annotations

import atexit
import queue
import sys
import threading
import time
import traceback
from collections import deque
from typing import Any, Callable

from omrt import constants as C
from omrt.errors import OmrtError
from omrt.runtime import state

Task = Callable[[], None]
_STOP = object()
_EXIT_DRAIN_S = 5.0
# At interpreter exit a daemon worker that wakes up dies as soon as it asks for the GIL, and if it
# had just taken its stream's lock, the lock stays held for good. Calls made then (a client's
# __del__ destroying its stream during the final garbage collection) wait this long at most.
_EXIT_LOCK_S = 0.5
_live_lock = threading.Lock()
_live: set["Stream"] = set()


class Stream:
    """An in-order queue of tasks run by one worker thread (started on first use)."""

    def __init__(self, context: Any) -> None:
        self.context = context
        self.alive = True
        self._cv = threading.Condition()
        self._tasks: deque = deque()
        self._pending = 0
        self._error: OmrtError | None = None
        self._worker: threading.Thread | None = None
        self.handle = state.handles.add(self)
        with _live_lock:
            _live.add(self)

    @property
    def device(self) -> int:
        return self.context.device

    @property
    def worker_ident(self) -> int | None:
        return self._worker.ident if self._worker is not None else None

    def submit(self, task: Task) -> None:
        """Queue `task` behind everything already queued."""
        with self._cv:
            if not self.alive:
                raise OmrtError(C.ACL_ERROR_RT_INVALID_HANDLE, f"stream {self.handle:#x} is destroyed")
            self._tasks.append(task)
            self._pending += 1
            if self._worker is None:
                self._worker = threading.Thread(target=self._run, name=f"omrt-stream-{self.handle:#x}",
                                                daemon=True)
                self._worker.start()
            self._cv.notify_all()

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._tasks:
                    self._cv.wait()
                task = self._tasks.popleft()
            if task is _STOP:
                return
            try:
                task()
            except BaseException as e:  # a failing task must not kill the worker
                failure = e if isinstance(e, OmrtError) else OmrtError(
                    C.ACL_ERROR_RT_INTERNAL_ERROR, f"stream task failed: {type(e).__name__}: {e}")
                with self._cv:
                    if self._error is None:
                        self._error = failure
                del failure, e
            # an idle worker must hold nothing of the client's, or its objects never get
            # finalized at interpreter exit (the worker is a daemon thread that never ends)
            del task
            with self._cv:
                self._pending -= 1
                self._cv.notify_all()

    def synchronize(self, timeout: float | None = None) -> None:
        """Block until every queued task ran; raise the first failure since the last synchronize."""
        if not self._lock():
            return  # interpreter exit with a dead worker: nothing queued will run any more
        try:
            if not self._cv.wait_for(lambda: self._pending == 0, timeout):
                raise OmrtError(C.ACL_ERROR_RT_INTERNAL_ERROR, f"stream {self.handle:#x} did not drain in time")
            error, self._error = self._error, None
        finally:
            self._cv.release()
        if error is not None:
            raise error

    def idle(self) -> bool:
        return self._pending == 0

    def _lock(self) -> bool:
        """Take the stream's lock; False only at interpreter exit, when a dead worker holds it."""
        if sys.is_finalizing():
            return self._cv.acquire(timeout=_EXIT_LOCK_S)
        return self._cv.acquire()

    def destroy(self) -> None:
        """Stop taking work; the worker finishes what is queued, then exits (never joined, so this
        is safe from __del__ at interpreter exit)."""
        locked = self._lock()
        try:
            if not self.alive:
                return
            self.alive = False
            if locked and self._worker is not None:
                self._tasks.append(_STOP)
                self._cv.notify_all()
        finally:
            if locked:
                self._cv.release()
        with _live_lock:
            _live.discard(self)
        unsubscribe_all(self)
        state.handles.remove(self.handle)


def get(handle: int) -> Stream:
    """The live stream behind a non-zero handle."""
    stream = state.handles.get(handle, Stream, "stream", C.ACL_ERROR_RT_INVALID_HANDLE)
    if not stream.alive:
        raise OmrtError(C.ACL_ERROR_RT_INVALID_HANDLE, f"stream {handle:#x} is destroyed")
    return stream


def resolve(handle: int) -> Stream:
    """A stream handle as clients pass it: 0 is the current context's default stream."""
    if handle == 0:
        from omrt.runtime import context
        return context.current().default_stream()
    return get(handle)


def live_streams(device: int | None = None) -> list[Stream]:
    with _live_lock:
        return [s for s in _live if device is None or s.device == device]


def synchronize_all(device: int) -> None:
    """Drain every live stream of `device`; the first failure is raised after all drained."""
    first: OmrtError | None = None
    for stream in live_streams(device):
        try:
            stream.synchronize()
        except OmrtError as e:
            first = first or e
    if first is not None:
        raise first


def _drain_at_exit() -> None:
    """Let queued work finish before interpreter teardown (bounded): a worker still holding a
    client's task would keep that client's objects from ever being finalized."""
    deadline = time.monotonic() + _EXIT_DRAIN_S
    for stream in live_streams():
        with stream._cv:
            stream._cv.wait_for(stream.idle, max(deadline - time.monotonic(), 0.0))


atexit.register(_drain_at_exit)


# --- callbacks and reports --------------------------------------------------------------------

_sub_lock = threading.Lock()
_subscriptions: dict[Stream, int] = {}
_reports: dict[int, "queue.SimpleQueue[tuple[Callable, Any, threading.Event]]"] = {}


def _report_queue(tid: int) -> "queue.SimpleQueue":
    with _sub_lock:
        q = _reports.get(tid)
        if q is None:
            q = _reports[tid] = queue.SimpleQueue()
        return q


def subscribe(tid: int, stream: Stream) -> None:
    """Callbacks launched on `stream` will run on thread `tid` when it calls process_report."""
    if tid == 0:
        raise OmrtError(C.ACL_ERROR_INVALID_PARAM, "thread id is 0")
    with _sub_lock:
        if stream in _subscriptions:
            raise OmrtError(C.ACL_ERROR_REPEAT_SUBSCRIBE,
                            f"stream {stream.handle:#x} is already subscribed by thread {_subscriptions[stream]}")
        _subscriptions[stream] = tid
    _report_queue(tid)


def unsubscribe(tid: int, stream: Stream) -> None:
    with _sub_lock:
        if _subscriptions.get(stream) != tid:
            raise OmrtError(C.ACL_ERROR_RT_STREAM_NO_CB_REG,
                            f"stream {stream.handle:#x} is not subscribed by thread {tid}")
        del _subscriptions[stream]


def unsubscribe_all(stream: Stream) -> None:
    with _sub_lock:
        _subscriptions.pop(stream, None)


def launch_callback(stream: Stream, fn: Callable[[Any], Any], user_data: Any, block: bool) -> None:
    """Queue `fn(user_data)` on `stream`. When its turn comes it goes to the subscribed thread's
    report queue (a blocking callback holds the stream until it ran); without a subscriber it runs
    on the stream's worker."""

    def task() -> None:
        with _sub_lock:
            tid = _subscriptions.get(stream)
        if tid is None:
            _run_callback(fn, user_data)
            return
        done = threading.Event()
        _report_queue(tid).put((fn, user_data, done))
        if block:
            done.wait()

    stream.submit(task)


def _run_callback(fn: Callable[[Any], Any], user_data: Any) -> None:
    try:
        fn(user_data)
    except BaseException:
        state.log(C.ACL_ERROR, "callback raised:\n" + traceback.format_exc().rstrip())


def process_report(timeout_ms: int) -> None:
    """Run callbacks reported to the calling thread: wait up to `timeout_ms` (-1: forever) for the
    first, then run whatever else is ready. Nothing arrived → 507012."""
    q = _report_queue(threading.get_ident())
    timeout = None if timeout_ms < 0 else timeout_ms / 1000.0
    try:
        item = q.get(timeout=timeout)
    except queue.Empty:
        raise OmrtError(C.ACL_ERROR_RT_REPORT_TIMEOUT, f"no callback report within {timeout_ms} ms") from None
    while True:
        fn, user_data, done = item
        try:
            _run_callback(fn, user_data)
        finally:
            done.set()
        try:
            item = q.get_nowait()
        except queue.Empty:
            return


# --- client threads (acl.util.start_thread / stop_thread) -------------------------------------

_threads_lock = threading.Lock()
_threads: dict[int, tuple[threading.Thread, list]] = {}


def start_thread(fn: Callable[[Any], Any], arg: Any) -> int:
    """Run `fn(arg)` on a new thread; its id (the pthread id) is what subscribe_report takes."""
    if not callable(fn):
        raise OmrtError(C.ACL_ERROR_INVALID_PARAM, f"start_thread target {type(fn).__name__} is not callable")
    failure: list = []

    def body() -> None:
        try:
            fn(arg)
        except BaseException as e:
            failure.append(e)
            state.log(C.ACL_ERROR, "thread target raised:\n" + traceback.format_exc().rstrip())

    thread = threading.Thread(target=body, name="acl-util-thread", daemon=True)
    thread.start()
    tid = thread.ident or 0
    with _threads_lock:
        _threads[tid] = (thread, failure)
    return tid


def stop_thread(tid: int) -> None:
    """Join the thread (blocks until its function returns); a raised exception becomes 500001."""
    with _threads_lock:
        entry = _threads.pop(tid, None)
    if entry is None:
        raise OmrtError(C.ACL_ERROR_INVALID_PARAM, f"thread {tid} was not started by acl.util.start_thread")
    thread, failure = entry
    if not sys.is_finalizing():
        thread.join()
    with _sub_lock:
        _reports.pop(tid, None)
    if failure:
        e = failure[0]
        raise OmrtError(C.ACL_ERROR_FAILURE, f"thread function raised {type(e).__name__}: {e}")

