"""omrt's packed GEMM micro-kernel (omrt.kernels.packed_gemm) against numpy's matmul, one thread.

    python benchmarks/bench_packed_gemm.py [--shapes 512x4608x49,2048x512x49] [--winograd] [--repeats 20]

Each shape is M x K x N: weights (M, K) times columns (K, N), as one conv of one image multiplies
them. Prints the median time of numpy's matmul and of the packed kernel (weights packed once,
before timing), with hot caches and with 96 MB rewritten before each call ("flushed": the
weights arrive from memory, as they do in a model). `--winograd` times the 36 position GEMMs of
a Winograd F(4x4, 3x3) conv instead, M x C x tiles: numpy's batched matmul against the packed
kernel storing its (tiles, channels) layout.
"""
from __future__ import annotations

import argparse

import numpy as np
from threadpoolctl import threadpool_limits

from bench_conv_kernel import median_ms

from omrt.kernels import packed_gemm

GEMMS = "512x4608x49,2048x512x49,512x2048x49,2048x1024x49,256x2304x196,1024x256x196,256x64x3136"
WINOGRAD = "256x256x16,512x512x16,128x128x49,64x64x196"


def operands(m: int, k: int, n: int, batch: int | None):
    """(W, X, numpy's output, the packed kernel's output): one matrix each, or a batch of 36."""
    rng = np.random.default_rng(0)
    lead = () if batch is None else (batch,)
    w = rng.standard_normal(lead + (m, k), dtype=np.float32)
    x = rng.standard_normal(lead + (k, n), dtype=np.float32)
    packed_out = np.empty(lead + ((n, m) if batch else (m, n)), np.float32)
    return w, x, np.empty(lead + (m, n), np.float32), packed_out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", default="")
    ap.add_argument("--winograd", action="store_true")
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    if not packed_gemm.available():
        raise SystemExit("the packed micro-kernel does not run here (llvmlite, AVX2/AVX-512, OMRT_JIT)")
    threadpool_limits(1, user_api="blas")
    batch = 36 if args.winograd else None
    print(f"{'M x K x N':>18}  numpy hot / flushed ms   packed hot / flushed ms   ratio hot / flushed")
    for shape in (args.shapes or (WINOGRAD if args.winograd else GEMMS)).split(","):
        m, k, n = (int(v) for v in shape.split("x"))
        w, x, y, y_packed = operands(m, k, n, batch)
        weights = packed_gemm.pack(w)
        acc = np.empty(packed_gemm.accumulator_floats(n), np.float32)

        def packed() -> None:
            packed_gemm.multiply(weights, x, y_packed, acc, transposed=batch is not None)

        packed()
        got = y_packed.swapaxes(-1, -2) if batch else y_packed
        want = np.matmul(w.astype(np.float64), x)
        assert np.abs(got - want).max() <= 1e-4 * np.sqrt(k) * np.abs(want).max()
        times = [median_ms(fn, args.repeats, flushed) for fn in (lambda: np.matmul(w, x, out=y), packed)
                 for flushed in (False, True)]
        print(f"{shape:>18}  {times[0]:8.3f} / {times[1]:7.3f}       {times[2]:8.3f} / {times[3]:7.3f}"
              f"        {times[2] / times[0]:5.2f} / {times[3] / times[1]:5.2f}")


if __name__ == "__main__":
    main()
