"""Events: markers recorded into a stream; they complete (and take a timestamp) when the stream's
worker reaches them, which is what elapsed-time measurements compare."""
from __future__ import annotations

import threading
import time

from omrt import constants as C
from omrt.errors import OmrtError
from omrt.runtime import state
from omrt.runtime.stream import Stream

# aclrtEventRecordedStatus (query_event_status) and aclrtEventStatus (query_event)
RECORDED_STATUS_NOT_READY = 0
RECORDED_STATUS_COMPLETE = 1
EVENT_STATUS_COMPLETE = 0
EVENT_STATUS_NOT_READY = 1


class Event:
    def __init__(self, device: int) -> None:
        self.device = device
        self.recorded = False
        self.timestamp = 0.0
        self._done = threading.Event()
        self._generation = 0
        self._lock = threading.Lock()
        self.handle = state.handles.add(self)

    def record(self, stream: Stream) -> None:
        """Complete when `stream` has run everything queued before this call."""
        with self._lock:
            self._generation += 1
            generation = self._generation
            self.recorded = True
            self._done.clear()

        def mark() -> None:
            with self._lock:
                if generation == self._generation:
                    self.timestamp = time.perf_counter()
                    self._done.set()

        stream.submit(mark)

    def reset(self) -> None:
        with self._lock:
            self._generation += 1
            self.recorded = False
            self._done.clear()

    @property
    def complete(self) -> bool:
        return self.recorded and self._done.is_set()

    def synchronize(self) -> None:
        """Wait for the last record to complete; an event never recorded returns at once."""
        if self.recorded:
            self._done.wait()

    def wait_task(self):
        """A stream task that blocks until this event completes (stream_wait_event)."""
        done = self._done if self.recorded else None
        return (lambda: done.wait()) if done is not None else (lambda: None)

    def destroy(self) -> None:
        state.handles.remove(self.handle)


def get(handle: int) -> Event:
    return state.handles.get(handle, Event, "event", C.ACL_ERROR_RT_INVALID_HANDLE)


def elapsed_ms(start: Event, end: Event) -> float:
    """Milliseconds between two completed events."""
    for name, ev in (("start", start), ("end", end)):
        if not ev.complete:
            state_text = "was never recorded" if not ev.recorded else "has not completed"
            raise OmrtError(C.ACL_ERROR_RT_PARAM_INVALID, f"{name} event {ev.handle:#x} {state_text}")
    return (end.timestamp - start.timestamp) * 1000.0
