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

Between jobs a worker polls for the next one for LINGER_SECONDS, giving its core up every
POLL_SECONDS (sched_yield), then parks: a model's ops follow each other within that time, while a
process that runs a model now and then keeps no core busy.

OMRT_NUM_THREADS sets the number of threads (the caller counts as one); the default is
os.cpu_count() capped at 8. A kernel called while the pool is busy (from a pool thread, or from a
second Python thread running another model) runs its tasks inline, so nothing deadlocks and N
application threads still use N cores.
"""
from __future__ import annotations

import itertools
import os
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator

import numpy as np

from omrt.kernels import native_jobs, spin_wait
from omrt.kernels.ufunc_buffer import KERNEL_BUFSIZE

MAX_DEFAULT_THREADS = 8
# Output features are split on multiples of this, so each piece starts where a BLAS micro-kernel
# block would and the tail rows/columns fall where a single call would put them.
FEATURE_ALIGN = 192
Task = Callable[[int], None]
# Gives up the core, the GIL released, and returns at once (time.sleep(0) where the OS lacks it).
_yield_core: Callable[[], None] = getattr(os, "sched_yield", None) or (lambda: time.sleep(0))
# How much later than the caller a parked worker starts on its task (a futex wake-up on this kind
# of virtual machine: 20-60 us), and the single-thread GEMM rate that turns flops into time.
WORKER_LAG_SECONDS = 20e-6
THREAD_FLOPS = 2e11
# Where compiled waits run (omrt.kernels.spin_wait): how long a worker keeps polling for the next
# job before it parks on its semaphore; how often a poller yields its core; how long a worker that
# saw a job waits before it takes the GIL, so the caller, holding it until its own first task
# enters a kernel, does not make it sleep on the GIL (a 20-40 us wake-up). Two threads, batch 1
# (benchmarks/ab_models.py, pool.linger=0 and pool.holdoff=0 against these): SqueezeNet 4.21 ms
# parked -> 3.74 polling without the hold-off -> 3.71 with it; ResNet-50 24.14 -> 22.98 -> 22.70.
LINGER_SECONDS = 300e-6
POLL_SECONDS = 20e-6
HOLDOFF_SECONDS = 12e-6
# The pool's signal words (omrt.kernels.native_jobs): among them the number of the latest job
# posted; how many times a worker has entered its compiled wait (each time, with the GIL
# released, after finishing its tasks); whether the latest job is native.
_POSTED, _WAITS, _KIND = native_jobs.POSTED, native_jobs.WAITS, native_jobs.KIND


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


class _Job:
    """One Pool.run: tasks are taken from a shared counter (next() is atomic under the GIL) by
    whichever threads are awake, and the last one to finish marks the job done."""

    __slots__ = ("fn", "n", "taken", "finished", "done", "error")

    def __init__(self, fn: Task, n: int) -> None:
        self.fn, self.n = fn, n
        self.taken = itertools.count()
        self.finished = itertools.count(1)
        self.done = False
        self.error: BaseException | None = None

    def drain(self) -> None:
        while True:
            i = next(self.taken)
            if i >= self.n:
                return
            try:
                self.fn(i)
            except BaseException as exc:  # re-raised by the caller of Pool.run
                if self.error is None:
                    self.error = exc
            if next(self.finished) == self.n:
                self.done = True


class _Worker:
    """One daemon thread helping with the pool's jobs.

    After a job it keeps polling the pool's job counter for LINGER_SECONDS (compiled code, GIL
    released, omrt.kernels.spin_wait), so the next op of a model finds it awake; only then does
    it park on its semaphore, which costs the next job a wake-up. Entering that wait counts in
    the signal word _WAITS, which a caller waiting for this worker's last task polls: by then the
    worker has let go of the GIL the caller needs. A worker that wakes after the caller has taken
    every task finds none and goes back to waiting: the caller never waits for a wake-up, only
    for tasks a worker has actually started.
    """

    def __init__(self, pool: "Pool", index: int) -> None:
        self.wake = threading.Semaphore(0)
        self.parked = False
        threading.Thread(target=self._loop, args=(pool,), name=f"omrt-kernel-{index}", daemon=True).start()

    def _loop(self, pool: "Pool") -> None:
        np.setbufsize(KERNEL_BUFSIZE)  # this thread only ever runs kernels (omrt.kernels.ufunc_buffer)
        signal, native = pool.signal, pool._native
        seen = int(signal[_POSTED])
        while True:
            if native is not None:
                # native jobs run in there; back here for a Python job or after lingering idle
                seen = native["worker_wait"](pool._signal_address, seen, pool.linger_ticks, pool.poll_ticks,
                                             pool.holdoff_ticks)
            if signal[_POSTED] == seen:
                # Parked is set before the last look at the counter and the poster bumps the
                # counter before looking at parked, so one of the two always sees the other.
                self.parked = True
                if signal[_POSTED] == seen:
                    self.wake.acquire()
                self.parked = False
            seen = int(signal[_POSTED])
            if signal[_KIND]:
                native["drain"](pool._signal_address)
                continue
            job = pool.job
            if job is not None:
                job.drain()


class Pool:
    """Runs fn(0) .. fn(n-1) on the caller plus `size - 1` persistent worker threads."""

    def __init__(self, size: int) -> None:
        self.size = max(1, int(size))
        self._busy = threading.Lock()
        self.job: _Job | None = None
        self.signal = np.zeros(native_jobs.WORDS, np.int64)
        self._signal_address = self.signal.ctypes.data
        spinning = self.size > 1 and spin_wait.available()
        self.linger_ticks = spin_wait.ticks(LINGER_SECONDS) if spinning else 0
        self.poll_ticks = spin_wait.ticks(POLL_SECONDS) if spinning else 0
        self.holdoff_ticks = spin_wait.ticks(HOLDOFF_SECONDS) if spinning else 0
        self._wait = spin_wait.waiter() if spinning else None
        self._native = native_jobs.functions() if spinning else None
        self._waits_address = self.signal.ctypes.data + 8 * _WAITS
        self._workers = [_Worker(self, i) for i in range(1, self.size)]

    def run(self, fn: Task, n: int, threaded: bool = True) -> None:
        """Call fn(i) for every i in range(n), spread over the threads; returns when all are done.

        Tasks are handed out dynamically, so a thread slowed by other load, or woken late, simply
        takes fewer. Once every task is taken the caller waits for those still running without
        sleeping on a lock (a parked vCPU on this kind of virtual machine takes 25-60 us to wake):
        it polls the workers' count of waits in compiled code, the GIL released, yielding its core
        every POLL_SECONDS (to a worker woken onto it), or yields alone where nothing compiles.
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
            job = self.job = _Job(fn, n)
            self.signal[_KIND] = 0
            self.signal[_POSTED] += 1
            for w in self._workers[:n - 1]:
                if w.parked:
                    w.wake.release()
            job.drain()
            waits = int(self.signal[_WAITS])
            while not job.done:
                if self._wait is not None and self.linger_ticks:
                    self._wait(self._waits_address, waits, self.linger_ticks, self.poll_ticks, None, 0)
                    waits = int(self.signal[_WAITS])
                else:
                    _yield_core()
            self.job = None
        finally:
            self._busy.release()
        if job.error is not None:
            raise job.error

    def run_native(self, task: int, args: int, n: int, threaded: bool = True) -> None:
        """Run the compiled task(args, i) for every i in range(n) (native_jobs: addresses of the
        function and of its arguments), spread over the threads without the GIL; returns when all
        are done. Inline, in one compiled loop, where run() would run inline, where `threaded` is
        false, or where this pool has no compiled waits (one thread)."""
        if n <= 0:
            return
        native = self._native or native_jobs.functions()
        if not threaded or self._native is None or n == 1 or not self._busy.acquire(blocking=False):
            native["serial"](task, args, n)
            return
        try:
            signal = self.signal
            signal[native_jobs.ARGS] = args
            signal[native_jobs.COUNT] = n
            signal[native_jobs.NEXT] = 0
            signal[native_jobs.DONE] = 0
            signal[native_jobs.FN] = task
            signal[_KIND] = 1
            signal[_POSTED] += 1
            for w in self._workers[:n - 1]:
                if w.parked:
                    w.wake.release()
            native["join"](self._signal_address, self.poll_ticks)
        finally:
            self._busy.release()


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


# Blocks a thread takes of a native job's work (task_blocks): where one vCPU runs slower than the
# other (a busy neighbour on its core, a time slice lost), the other takes more of them instead of
# waiting. ResNet-50 at batch 1 beside a process taking cpu0 half the time: 79.3 / 79.9 -> 77.8 ms;
# without it equal (63.0 / 67.6 against 63.8; 58.4 against 58.5 in benchmarks/ab_models.py).
BLOCKS_PER_THREAD = 4


def split(total: int, parts: int, align: int = 1) -> list[tuple[int, int]]:
    """Cut range(total) into at most `parts` near-equal [a, b) pieces; inner cuts are multiples of align."""
    units = -(-total // align)
    parts = max(1, min(parts, units))
    cuts = [min(total, units * k // parts * align) for k in range(parts)] + [total]
    return [(a, b) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]


def task_blocks(total: int, parts: int, align: int = 1, flops: float = 0.0) -> list[tuple[int, int]]:
    """Blocks of range(total) for a native job over `parts` threads: BLOCKS_PER_THREAD a thread,
    taken as the threads come free (lead_split's shares where that is 1)."""
    if parts == 1 or BLOCKS_PER_THREAD == 1:
        return lead_split(total, parts, align, flops)
    return split(total, parts * BLOCKS_PER_THREAD, align)


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
