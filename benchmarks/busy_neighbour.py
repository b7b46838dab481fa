"""A busy neighbour on one vCPU: loops busy for 2 ms and sleeps 2 ms, pinned to cpu0, until killed.

    .venv/bin/python benchmarks/busy_neighbour.py & HOG=$!; <benchmark>; kill $HOG

Stands in for a virtual machine's vCPU that loses part of its time, to see whether work split
over the threads waits for the slowed one (omrt.kernels.parallel.task_blocks).
"""
from __future__ import annotations

import os
import time

BUSY_SECONDS = 0.002
IDLE_SECONDS = 0.002


def main() -> None:
    os.sched_setaffinity(0, {0})
    while True:
        start = time.perf_counter()
        while time.perf_counter() - start < BUSY_SECONDS:
            pass
        time.sleep(IDLE_SECONDS)


if __name__ == "__main__":
    main()
