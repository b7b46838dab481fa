"""Native jobs (omrt.kernels.native_jobs): compiled tasks run by the kernel pool without the GIL."""
from __future__ import annotations

import ctypes
import threading

import numpy as np
import pytest

from omrt.kernels import llvm_jit, native_jobs, parallel

pytestmark = pytest.mark.skipif(native_jobs.functions() is None, reason="no compiled IR kernels on this host")

# Test tasks over an int64 array a: `count` bumps a[i] (each task's runs); `meet` also bumps the
# shared a[0] and spins (bounded) until two tasks have, recording in a[1 + i] whether they met:
# only two threads running at once can meet.
_TASKS = """
declare void @llvm.x86.sse2.pause()

define void @count(ptr %a, i64 %i) {
  %at = getelementptr i64, ptr %a, i64 %i
  %ignored = atomicrmw add ptr %at, i64 1 seq_cst
  ret void
}

define void @meet(ptr %a, i64 %i) {
entry:
  %ignored = atomicrmw add ptr %a, i64 1 seq_cst
  br label %spin
spin:
  %n = phi i64 [0, %entry], [%n_next, %again]
  %here = load atomic i64, ptr %a seq_cst, align 8
  %met = icmp sge i64 %here, 2
  br i1 %met, label %record, label %again
again:
  call void @llvm.x86.sse2.pause()
  %n_next = add i64 %n, 1
  %more = icmp ult i64 %n_next, 400000000
  br i1 %more, label %spin, label %out
record:
  %slot = add i64 %i, 1
  %at = getelementptr i64, ptr %a, i64 %slot
  store atomic i64 1, ptr %at seq_cst, align 8
  br label %out
out:
  ret void
}
"""


@pytest.fixture(scope="module")
def tasks() -> dict[str, int]:
    compiled = llvm_jit._compile(_TASKS, {"count": [ctypes.c_void_p, ctypes.c_int64],
                                          "meet": [ctypes.c_void_p, ctypes.c_int64]})
    assert compiled is not None
    return {name: native_jobs.address(fn) for name, fn in compiled.items()}


@pytest.mark.parametrize("n", [1, 2, 7, 64])
def test_every_task_runs_once(two_threads, tasks, n: int) -> None:
    runs = np.zeros(n, np.int64)
    for _ in range(20):
        parallel.get_pool().run_native(tasks["count"], runs.ctypes.data, n)
    np.testing.assert_array_equal(runs, 20)


def test_a_worker_runs_tasks_beside_the_caller(two_threads, tasks) -> None:
    pool = parallel.get_pool()
    pool.run(lambda i: None, 2)          # the worker is now polling for jobs
    state = np.zeros(3, np.int64)
    pool.run_native(tasks["meet"], state.ctypes.data, 2)
    assert state[0] == 2 and state[1] == 1 and state[2] == 1


def test_python_and_native_jobs_take_turns(two_threads, tasks) -> None:
    pool = parallel.get_pool()
    runs = np.zeros(4, np.int64)
    seen = []
    for k in range(30):
        pool.run_native(tasks["count"], runs.ctypes.data, 4)
        pool.run(lambda i, k=k: seen.append((k, i)), 3)
    np.testing.assert_array_equal(runs, 30)
    assert sorted(seen) == [(k, i) for k in range(30) for i in range(3)]


def test_a_parked_worker_is_woken_for_a_native_job(two_threads, tasks) -> None:
    pool = parallel.get_pool()
    pool.linger_ticks = 1                # workers park right after each job
    pool.run(lambda i: None, 2)
    state = np.zeros(3, np.int64)
    pool.run_native(tasks["meet"], state.ctypes.data, 2)
    assert state[0] == 2 and state[1] == 1 and state[2] == 1


def test_a_busy_pool_runs_native_tasks_inline(two_threads, tasks) -> None:
    """From a second Python thread while the pool is busy, and on a one-thread pool."""
    runs = np.zeros(5, np.int64)
    pool = parallel.get_pool()
    inner = threading.Thread(target=lambda: pool.run_native(tasks["count"], runs.ctypes.data, 5))
    pool.run(lambda i: inner.start() or inner.join() if i == 0 else None, 2)
    parallel.Pool(1).run_native(tasks["count"], runs.ctypes.data, 5)
    np.testing.assert_array_equal(runs, 2)
