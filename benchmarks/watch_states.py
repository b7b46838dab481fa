"""What a slow moment of the machine slows: alternate ResNet-50 batch-1 runs (omrt on two
threads and on one, onnxruntime on two) with a cache-resident matmul on each vCPU at once and a
copy through memory.

    python benchmarks/watch_states.py [--seconds 100]

Each line: the median of 8 runs of each, each vCPU's GFLOP/s on a 256x256 matmul (both at once,
0.3 s), the GB/s of a 128 MB copy (read plus write), and probe_vcpus.py's round trip of a cache line
between two threads before and after the runs: where the host has put the two vCPUs (on a Zen 4
host: about 35 ns on one core's two hardware threads, 80 ns on two cores sharing an L3, 350 ns on
two core complexes).
"""
from __future__ import annotations

import argparse
import os
import threading
import time

import numpy as np

from common import ort_session
from probe_vcpus import compiled_player, round_trip_ns
from omrt.compiler import compile_onnx
from omrt.kernels import parallel
from omrt.om import write_om
from omrt.session import InferenceSession
from tests.support.light_models import random_input, randomized

MATMUL = 256
TRIPS = 30_000


def vcpu_rate(cpu: int, seconds: float, rates: dict[int, float]) -> None:
    """GFLOP/s of a one-thread matmul pinned to `cpu`, its operands in the caches."""
    os.sched_setaffinity(0, {cpu})
    a = np.random.default_rng(cpu).random((MATMUL, MATMUL), dtype=np.float32)
    c = np.empty_like(a)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        np.matmul(a, a, out=c)
        count += 1
    rates[cpu] = count * 2 * MATMUL ** 3 / (time.perf_counter() - start) / 1e9


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=100.0)
    args = ap.parse_args()
    model = randomized("resnet50", batch=1)
    feeds = random_input(model)
    om = write_om(compile_onnx(model))
    two = InferenceSession(om)   # also puts BLAS on one thread
    with parallel.serial_kernels():
        one = InferenceSession(om)
    ort = ort_session(model.SerializeToString())
    runs = {"omrt": two.run, "omrt one thread": one.run, "onnxruntime": ort.run}
    for run in runs.values():
        for _ in range(3):
            run(None, feeds)
    player = compiled_player()
    src = np.ones(32 << 20, np.float32)
    dst = np.empty_like(src)
    end = time.time() + args.seconds
    while time.time() < end:
        before = round_trip_ns(player, TRIPS)
        medians = []
        for run in runs.values():
            times = []
            for _ in range(8):
                start = time.perf_counter()
                run(None, feeds)
                times.append(time.perf_counter() - start)
            medians.append(f"{1e3 * np.median(times):.1f}")
        after = round_trip_ns(player, TRIPS)
        rates: dict[int, float] = {}
        threads = [threading.Thread(target=vcpu_rate, args=(cpu, 0.3, rates)) for cpu in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        start = time.perf_counter()
        for _ in range(3):
            np.copyto(dst, src)
        copy = 3 * 2 * src.nbytes / (time.perf_counter() - start) / 1e9
        print(f"resnet50 {' / '.join(medians)} ms ({' / '.join(runs)}) | matmul {rates[0]:.0f} {rates[1]:.0f} GFLOP/s | "
              f"copy {copy:.1f} GB/s | round trip {before:.0f} / {after:.0f} ns", flush=True)


if __name__ == "__main__":
    main()
