"""Waiting for a counter to move without holding the GIL and without sleeping.

Why: a kernel thread parked on a lock takes 20-60 us to wake on a virtual machine, and a thread
that polls from Python holds the GIL between polls, so the thread it waits for, back from a
GIL-free kernel, queues for the GIL behind it (measured: the caller of a two-task split returned
40 us after its helper's last task ended). `wait_while` polls a 64-bit counter in compiled code
(the x86 `pause` hint between reads, the time-stamp counter as the clock) with the GIL released,
so the other thread runs its Python freely and the waiter sees the change within a microsecond.

Where the IR kernels cannot be compiled (omrt.kernels.llvm_jit), `available()` is false and
callers keep their blocking waits.
"""
from __future__ import annotations

import ctypes
import time
from typing import Callable

import numpy as np

from omrt.kernels import llvm_jit

WAIT_IR = """
declare i64 @llvm.readcyclecounter()
declare void @llvm.x86.sse2.pause()
declare i32 @sched_yield()

define void @wait_while(ptr %counter, i64 %value, i64 %ticks, i64 %slice, ptr %announce, i64 %holdoff) {
entry:
  %announcing = icmp ne ptr %announce, null
  br i1 %announcing, label %count, label %begin
count:
  %ignored_count = atomicrmw add ptr %announce, i64 1 seq_cst
  br label %begin
begin:
  %start = call i64 @llvm.readcyclecounter()
  br label %poll
poll:
  %yield_at = phi i64 [ %slice, %begin ], [ %yield_at, %check ], [ %next_yield, %give_core ]
  %now_value = load atomic i64, ptr %counter acquire, align 8
  %same = icmp eq i64 %now_value, %value
  br i1 %same, label %pause, label %moved
pause:
  call void @llvm.x86.sse2.pause()
  %now = call i64 @llvm.readcyclecounter()
  %elapsed = sub i64 %now, %start
  %more = icmp ult i64 %elapsed, %ticks
  br i1 %more, label %check, label %done
check:
  %due = icmp uge i64 %elapsed, %yield_at
  br i1 %due, label %give_core, label %poll
give_core:
  %ignored_yield = call i32 @sched_yield()
  %next_yield = add i64 %elapsed, %slice
  br label %poll
moved:
  %seen = call i64 @llvm.readcyclecounter()
  br label %hold
hold:
  call void @llvm.x86.sse2.pause()
  %t = call i64 @llvm.readcyclecounter()
  %held = sub i64 %t, %seen
  %holding = icmp ult i64 %held, %holdoff
  br i1 %holding, label %hold, label %done
done:
  ret void
}
"""

_CALIBRATION_TICKS = 500_000
_CALIBRATION_ROUNDS = 5
_ticks_per_second: float | None = None


def _module():
    return llvm_jit.compile_module("spin_wait", lambda vl: WAIT_IR,
                                   {"wait_while": [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64,
                                                  ctypes.c_void_p, ctypes.c_int64]})


def available() -> bool:
    return _module() is not None


def ticks(seconds: float) -> int:
    """Time-stamp-counter ticks in `seconds`, measured once per process against perf_counter: the
    shortest of a few timed waits, since a thread descheduled during one makes it look longer."""
    global _ticks_per_second
    if _ticks_per_second is None:
        idle = np.zeros(1, np.int64)
        shortest = np.inf
        for _ in range(_CALIBRATION_ROUNDS):
            start = time.perf_counter()
            waiter()(idle.ctypes.data, 0, _CALIBRATION_TICKS, _CALIBRATION_TICKS, None, 0)
            shortest = min(shortest, time.perf_counter() - start)
        _ticks_per_second = _CALIBRATION_TICKS / max(shortest, 1e-6)
    return max(1, int(seconds * _ticks_per_second))


def waiter() -> Callable[..., None]:
    """wait_while's compiled function itself, for callers in a loop (no per-call lookup)."""
    return _module()["wait_while"]


def wait_while(counter_address: int, value: int, tick_budget: int, yield_every: int,
               announce_address: int | None = None, holdoff: int = 0) -> None:
    """Return once the int64 at `counter_address` differs from `value` (then `holdoff` ticks
    later), or after `tick_budget` ticks (see ticks()), giving up the core (sched_yield) every
    `yield_every` ticks so a thread queued on the same core runs. The GIL is released throughout;
    on entry, with the GIL already released, the int64 at `announce_address` is incremented
    (atomically), so another thread can tell this one has let the GIL go. Only when available()."""
    waiter()(counter_address, value, tick_budget, yield_every, announce_address, holdoff)
