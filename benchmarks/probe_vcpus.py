"""How far apart this machine's first two CPUs are right now: a cache line passed back and forth
between two threads, and memory copies on one thread against two side by side.

Usage: python benchmarks/probe_vcpus.py [--rounds 3]

On the 2-vCPU VM the round trip comes in two kinds, minutes apart: 45-120 ns (the fast state in
benchmarks/README.md) or about 400 ns (the slow state); two threads' adds side by side take 2-20 %
longer than one thread's in either. Run it right before a benchmark to know which state it meets.
"""
from __future__ import annotations

import argparse
import ctypes
import threading
import time

import numpy as np

from omrt.kernels import llvm_jit

# player(a, parity, n): n times, wait for a[0] == 2k + parity, then store 2k + parity + 1
_PING_PONG = """
define void @player(ptr %a, i64 %parity, i64 %n) {
entry:
  br label %round
round:
  %k = phi i64 [0, %entry], [%k_next, %write]
  %twice = mul i64 %k, 2
  %target = add i64 %twice, %parity
  br label %spin
spin:
  %v = load atomic i64, ptr %a acquire, align 8
  %mine = icmp eq i64 %v, %target
  br i1 %mine, label %write, label %spin
write:
  %pass = add i64 %target, 1
  store atomic i64 %pass, ptr %a release, align 8
  %k_next = add i64 %k, 1
  %more = icmp ult i64 %k_next, %n
  br i1 %more, label %round, label %out
out:
  ret void
}
"""


def compiled_player():
    """The ping-pong's `player(a, parity, n)` as a ctypes function."""
    compiled = llvm_jit._compile(_PING_PONG, {"player": [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64]})
    if compiled is None:
        raise SystemExit("probe_vcpus: no LLVM IR compiler here")
    return compiled["player"]


def round_trip_ns(player, trips: int = 200_000) -> float:
    line = np.zeros(16, np.int64)
    other = threading.Thread(target=player, args=(line.ctypes.data, 1, trips))
    other.start()
    start = time.perf_counter()
    player(line.ctypes.data, 0, trips)
    other.join()
    return (time.perf_counter() - start) / trips * 1e9


def copy_us(threads: int, floats: int = 1 << 20, reps: int = 200) -> float:
    """Median time of one 4 MB add (x + x into y) per thread, `threads` threads at once."""
    times: list[list[float]] = [[] for _ in range(threads)]
    gate = threading.Barrier(threads)

    def work(i: int) -> None:
        x = np.random.default_rng(i).random(floats, dtype=np.float32)
        y = np.empty_like(x)
        gate.wait()
        for _ in range(reps):
            t = time.perf_counter()
            np.add(x, x, out=y)
            times[i].append(time.perf_counter() - t)

    pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return float(np.median([np.median(t) for t in times]) * 1e6)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    player = compiled_player()
    round_trip_ns(player, 10_000)
    for _ in range(args.rounds):
        trips = [round_trip_ns(player) for _ in range(3)]
        print(f"round trip {' '.join(f'{t:.0f}' for t in trips)} ns   "
              f"4 MB add: one thread {copy_us(1):.1f} us, two at once {copy_us(2):.1f} us")


if __name__ == "__main__":
    main()
