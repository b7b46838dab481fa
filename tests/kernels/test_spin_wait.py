"""The compiled GIL-free wait the kernel pool's threads poll with."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from omrt.kernels import spin_wait

pytestmark = pytest.mark.skipif(not spin_wait.available(), reason="no compiled IR kernels on this host")


def test_returns_at_once_when_the_counter_already_differs() -> None:
    counter = np.array([5], np.int64)
    start = time.perf_counter()
    spin_wait.wait_while(counter.ctypes.data, 4, spin_wait.ticks(5.0), spin_wait.ticks(1e-3))
    assert time.perf_counter() - start < 0.5


def test_gives_up_after_its_budget() -> None:
    counter = np.zeros(1, np.int64)
    start = time.perf_counter()
    spin_wait.wait_while(counter.ctypes.data, 0, spin_wait.ticks(0.02), spin_wait.ticks(1e-3))
    assert 0.01 <= time.perf_counter() - start < 2.0


def test_sees_another_threads_store_and_lets_it_run_python() -> None:
    """The store comes from a Python thread, which needs the GIL while the wait is in progress."""
    counter = np.zeros(1, np.int64)
    ticks_seen = []

    def writer() -> None:
        for i in range(20):
            ticks_seen.append(i)
            time.sleep(0.001)
        counter[0] = 7

    thread = threading.Thread(target=writer)
    start = time.perf_counter()
    thread.start()
    spin_wait.wait_while(counter.ctypes.data, 0, spin_wait.ticks(10.0), spin_wait.ticks(1e-3))
    elapsed = time.perf_counter() - start
    thread.join(5)
    assert counter[0] == 7 and len(ticks_seen) == 20
    assert elapsed < 5.0


def test_announces_entry_and_holds_off_after_the_change() -> None:
    counter = np.array([1], np.int64)
    announce = np.zeros(1, np.int64)
    for _ in range(3):
        spin_wait.wait_while(counter.ctypes.data, 0, spin_wait.ticks(1.0), spin_wait.ticks(1e-3), announce.ctypes.data)
    assert announce[0] == 3
    start = time.perf_counter()
    spin_wait.wait_while(counter.ctypes.data, 0, spin_wait.ticks(5.0), spin_wait.ticks(1e-3), None,
                         spin_wait.ticks(0.02))
    assert 0.01 <= time.perf_counter() - start < 2.0


def test_ticks_grow_with_time() -> None:
    assert 0 < spin_wait.ticks(1e-6) <= spin_wait.ticks(1e-3) < spin_wait.ticks(1.0)
