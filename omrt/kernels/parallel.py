"""omrt's own kernel threads: a small persistent pool that kernels split their work over.

Why omrt owns its threading: kernels split whole ops (GEMM plus epilogue, pooling blocks, image
blocks) into a few tasks, so one wake-up covers a GEMM and the elementwise passes after it while
the data is in cache. A multi-threaded BLAS would split only the GEMM, and its helper threads spin
after each call, taking the core from the next numpy pass (and from any other runtime in the
process): measured on ResNet-50, no faster than this pool, and onnxruntime alongside it ran 1.8x
slower. Identical filters still give bit-identical channels (omrt.kernels.repeated).

Process-wide effect: when the pool is first created (the first kernel built or run), BLAS is put
in single-thread mode for the whole process via threadpoolctl (`threadpool_limits(1, "blas")`),
so any other numpy matmul in the process also runs on one BLAS thread from then on.

OMRT_NUM_THREADS sets the number of threads (the caller counts as one); the default is
os.cpu_count() capped at 8. A kernel called while the pool is busy (from a pool thread, or from a
second Python thread running another model) runs its tasks inline, so nothing deadlocks and N
application threads still use N cores.
"""
from __future__ import annotations

import itertools
import os
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

import numpy as np

from omrt.kernels.ufunc_buffer import KERNEL_BUFSIZE

MAX_DEFAULT_THREADS = 8
# Output features are split on multiples of this, so each piece starts where a BLAS micro-kernel
# block would and the tail rows/columns fall where a single call would put them.
FEATURE_ALIGN = 192
Task = Callable[[int], None]
# How much later than the caller a parked worker starts on its task (a futex wake-up on this kind
# of virtual machine: 20-60 us), and the single-thread GEMM rate that turns flops into time.
WORKER_LAG_SECONDS = 20e-6
THREAD_FLOPS = 2e11


def _configured_threads() -> int:
    env = os.environ.get("OMRT_NUM_THREADS", "").strip()
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            pass
    return max(1, min(os.cpu_count() or 1, MAX_DEFAULT_THREADS))


def _limit_blas() -> None:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # without threadpoolctl BLAS keeps its own threads; results stay correct
        return
    threadpool_limits(1, user_api="blas")


def _drain(fn: Task, n: int, counter: "itertools.count[int]") -> BaseException | None:
    """Take task indices from the shared counter until none are left (next() is atomic under the GIL)."""
    while True:
        i = next(counter)
        if i >= n:
            return None
        try:
            fn(i)
        except BaseException as exc:  # re-raised by the caller of Pool.run
            return exc


class _Worker:
    """One daemon thread parked on a lock; lock hand-offs are CPython's cheapest wake-up."""

    def __init__(self, index: int) -> None:
        self.go = threading.Lock()
        self.go.acquire()
        self.done = threading.Lock()
        self.done.acquire()
        self.job: tuple[Task, int, itertools.count] | None = None
        self.error: BaseException | None = None
        threading.Thread(target=self._loop, name=f"omrt-kernel-{index}", daemon=True).start()

    def _loop(self) -> None:
        np.setbufsize(KERNEL_BUFSIZE)  # this thread only ever runs kernels (omrt.kernels.ufunc_buffer)
        while True:
            self.go.acquire()
            job = self.job
            self.job = None
            self.error = _drain(*job) if job is not None else None
            self.done.release()

    def start(self, job: tuple[Task, int, itertools.count]) -> None:
        self.job = job
        self.go.release()

    def wait(self) -> BaseException | None:
        self.done.acquire()
        return self.error


class Pool:
    """Runs fn(0) .. fn(n-1) on the caller plus `size - 1` persistent worker threads."""

    def __init__(self, size: int) -> None:
        self.size = max(1, int(size))
        self._busy = threading.Lock()
        self._workers = [_Worker(i) for i in range(1, self.size)]

    def run(self, fn: Task, n: int, threaded: bool = True) -> None:
        """Call fn(i) for every i in range(n), spread over the threads; returns when all are done.

        Tasks are handed out dynamically, so a thread slowed by other load simply takes fewer.
        Exceptions from any task are re-raised here (the first one seen). With threaded=False
        (an op too small to repay a wake-up) the tasks run in order on the calling thread.
        """
        if n <= 0:
            return
        if not threaded or n == 1 or self.size == 1 or not self._busy.acquire(blocking=False):
            for i in range(n):
                fn(i)
            return
        try:
            counter = itertools.count()
            job = (fn, n, counter)
            helpers = self._workers[:n - 1]
            for w in helpers:
                w.start(job)
            error = _drain(*job)
            for w in helpers:
                err = w.wait()
                error = error or err
        finally:
            self._busy.release()
        if error is not None:
            raise error


_pool: Pool | None = None
_pool_lock = threading.Lock()
_SERIAL_POOL = Pool(1)
_building = threading.local()


@contextmanager
def serial_kernels() -> Iterator[None]:
    """Kernels built inside plan for one thread and run every task on the thread that calls them:
    each lane of a plan in batch lanes (omrt.runtime.executor) is already one task of the pool."""
    get_pool()  # BLAS goes single-threaded here as for any other kernel
    previous = getattr(_building, "serial", False)
    _building.serial = True
    try:
        yield
    finally:
        _building.serial = previous


def get_pool() -> Pool:
    """The process's kernel pool, created (and BLAS limited to one thread) on first use; a one-thread
    pool while kernels are built under serial_kernels()."""
    if getattr(_building, "serial", False):
        return _SERIAL_POOL
    global _pool
    pool = _pool
    if pool is None:
        with _pool_lock:
            if _pool is None:
                _limit_blas()
                _pool = Pool(_configured_threads())
            pool = _pool
    return pool


def num_threads() -> int:
    return get_pool().size


def parallel_for(fn: Task, n: int) -> None:
    """Run fn(i) for i in range(n) on the kernel pool."""
    get_pool().run(fn, n)


def split(total: int, parts: int, align: int = 1) -> list[tuple[int, int]]:
    """Cut range(total) into at most `parts` near-equal [a, b) pieces; inner cuts are multiples of align."""
    units = -(-total // align)
    parts = max(1, min(parts, units))
    cuts = [min(total, units * k // parts * align) for k in range(parts)] + [total]
    return [(a, b) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]


def lead_split(total: int, parts: int, align: int = 1, flops: float = 0.0) -> list[tuple[int, int]]:
    """split() for one Pool.run whose first piece goes to the caller (it takes index 0 before any
    worker is awake): that piece is larger by the work of WORKER_LAG_SECONDS, so the workers,
    starting late, finish with the caller instead of after it, and the caller need not sleep
    waiting for them (a second wake-up). `flops` is the whole op's; 0 gives an even split."""
    units = -(-total // align)
    parts = max(1, min(parts, units))
    seconds = flops / THREAD_FLOPS
    if parts == 1 or seconds <= WORKER_LAG_SECONDS * parts:
        return split(total, parts, align)
    # caller: (S - d)/p + d, every worker (S - d)/p, for serial time S and lag d
    lead = (seconds - WORKER_LAG_SECONDS) / parts + WORKER_LAG_SECONDS
    first = min(units - (parts - 1), max(-(-units // parts), round(units * lead / seconds)))
    rest = split(total - first * align, parts - 1, align)
    return [(0, first * align)] + [(a + first * align, b + first * align) for a, b in rest]
