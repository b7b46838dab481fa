"""omrt vs onnxruntime on the light models with random weights, same process, alternating runs.

    python benchmarks/bench_models.py [--models resnet50,squeezenet] [--batches 1,8] [--repeats 20] [--lanes 1,2,4]

Prints the median latency of each runtime and the ratio omrt/onnxruntime (< 1 means omrt is
faster), plus ResNet-50's effective GFLOP/s against numpy's own large-GEMM GFLOP/s. Each
(model, batch) pair runs in a fresh process of its own (both runtimes inside it, alternating), so
memory left behind by a large model (VGG-19 at batch 8 holds over a gigabyte) does not slow the
next one.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time

import numpy as np

from common import THREADS, alternate, conv_weight_shape, ort_session

from omrt.compiler import CompileOptions, compile_onnx
from omrt.om import write_om
from omrt.session import InferenceSession
from tests.support.light_models import LIGHT_MODELS, random_input, randomized

SPEED_MODELS = ["resnet50", "densenet121", "inception_v1", "vgg19", "squeezenet", "shufflenet"]


def model_flops(model) -> float:
    """Multiply-adds x 2 of the Conv/Gemm/MatMul ops in the compiled plan (Winograd convs counted
    as the direct convolution)."""
    total = 0.0
    for op in model.graphs[0].ops:
        if op.op_type in ("Conv", "ConvTranspose"):
            out = op.outputs[0].desc.shape
            w = conv_weight_shape(op) if op.op_type == "Conv" else op.inputs[1].desc.shape
            total += 2.0 * np.prod(out) * np.prod(w[1:])
        elif op.op_type in ("Gemm", "MatMul"):
            a = op.inputs[0].desc.shape
            total += 2.0 * np.prod(op.outputs[0].desc.shape) * a[-1]
    return total


def numpy_gemm_gflops(n: int = 2048, repeats: int = 5) -> float:
    """numpy's own large GEMM on the same thread count (omrt keeps BLAS single-threaded otherwise)."""
    from threadpoolctl import threadpool_limits

    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    b = a.copy()
    c = np.empty_like(a)
    with threadpool_limits(THREADS, user_api="blas"):
        np.matmul(a, b, out=c)
        best = min(_timed(lambda: np.matmul(a, b, out=c)) for _ in range(repeats))
    return 2.0 * n**3 / best / 1e9


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(name: str, batch: int, repeats: int, lanes: list[int | None]) -> None:
    """One row per lane count (None: the compiler's choice), all timed in one alternation."""
    onnx_model = randomized(name, batch=batch, expose_logits=False)
    ort = ort_session(onnx_model.SerializeToString())
    feeds = random_input(onnx_model)
    runs, diffs = {}, {}
    for count in lanes:
        compiled = compile_onnx(onnx_model, CompileOptions(lanes=count))
        session = InferenceSession(write_om(compiled))
        label = name if count is None else f"{name} L{count}"
        diffs[label] = float(np.max(np.abs(session.run(None, feeds)[0] - ort.run(None, feeds)[0])))
        runs[label] = lambda session=session: session.run(None, feeds)
    times = alternate({**runs, "ort": lambda: ort.run(None, feeds)}, repeats=repeats)
    r = np.median(times["ort"])
    for label in runs:
        o = np.median(times[label])
        print(f"{label:<14}{batch:>6}{o:>10.2f}{r:>10.2f}{o / r:>8.3f}{diffs[label]:>11.2e}", flush=True)
    if name == "resnet50" and batch == 1:
        flops = model_flops(compiled)
        print(f"  resnet50 effective: omrt {flops / o / 1e6:.1f} GFLOP/s, onnxruntime {flops / r / 1e6:.1f} GFLOP/s"
              f" ({flops / 1e9:.2f} GFLOP per image)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default=",".join(SPEED_MODELS))
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--lanes", default="", help="batch lane counts to compare, e.g. 1,2,4 (default: the compiler's)")
    parser.add_argument("--one", action="store_true", help="measure in this process (one model, one batch)")
    args = parser.parse_args()
    names = [m for m in args.models.split(",") if m in LIGHT_MODELS]
    batches = [int(b) for b in args.batches.split(",")]
    if args.one:
        measure(names[0], batches[0], args.repeats, [int(k) for k in args.lanes.split(",") if k] or [None])
        return
    print(f"threads: {THREADS} (omrt via BLAS, onnxruntime intra_op_num_threads)")
    print(f"{'model':<14}{'batch':>6}{'omrt ms':>10}{'ort ms':>10}{'ratio':>8}{'max|diff|':>11}", flush=True)
    for name in names:
        for batch in batches:
            subprocess.run([sys.executable, __file__, "--one", "--models", name, "--batches", str(batch),
                            "--repeats", str(args.repeats), "--lanes", args.lanes], check=True)
    print(f"numpy large GEMM (2048^3, float32, {THREADS} BLAS threads): {numpy_gemm_gflops():.1f} GFLOP/s")


if __name__ == "__main__":
    main()
