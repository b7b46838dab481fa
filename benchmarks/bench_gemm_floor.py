"""How fast a model could be if every Conv and Gemm were one bare BLAS GEMM, next to onnxruntime.

    python benchmarks/bench_gemm_floor.py [--models resnet50,squeezenet] [--batch 1] [--repeats 10]

For each Conv/Gemm/MatMul of the compiled plan, times numpy's matmul of that op's GEMM shape
(weights x im2col columns, per group, one image) on one BLAS thread with hot operands, and sums
them over the model: the GEMM floor. It leaves out everything else a GEMM-per-conv runtime does
(im2col, padding, epilogues, pooling, thread dispatch) and counts Winograd convs as direct GEMMs.
Next to it: onnxruntime's whole-model latency on one thread and on OMRT_BENCH_THREADS threads, and
omrt's on OMRT_NUM_THREADS. When the floor divided by the thread count is at or above
onnxruntime's multi-thread latency, no runtime built on these BLAS calls reaches ratio 1.0 there
without doing fewer multiplications.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

from bench_models import model_flops
from common import THREADS, alternate, conv_weight_shape, ort_session

from omrt.compiler import compile_onnx
from omrt.om import write_om
from omrt.session import InferenceSession
from tests.support.light_models import random_input, randomized

DEFAULT_MODELS = "resnet50,densenet121,inception_v1,vgg19,squeezenet,shufflenet"
GemmShape = tuple[int, int, int, int]  # (groups, M, K, N) for one image


def gemm_shapes(compiled) -> list[tuple[GemmShape, int]]:
    """(per-image GEMM shape, images) of every Conv/Gemm/MatMul in the compiled plan."""
    shapes = []
    for op in compiled.graphs[0].ops:
        out = op.outputs[0].desc.shape
        if op.op_type == "Conv":
            w = conv_weight_shape(op)  # Winograd convs counted as the direct 3x3 conv
            group = int(op.attrs.get("group", 1))
            shapes.append(((group, w[0] // group, int(np.prod(w[1:])), int(np.prod(out[2:]))), out[0]))
        elif op.op_type in ("Gemm", "MatMul"):
            k = op.inputs[0].desc.shape[-1]
            rows = int(np.prod(out[:-1]))
            shapes.append(((1, rows, k, out[-1]), 1))
    return shapes


def gemm_ms(shape: GemmShape, repeats: int) -> float:
    """Best-of-`repeats` time of one (groups, M, K) @ (groups, K, N) matmul on one BLAS thread."""
    groups, m, k, n = shape
    rng = np.random.default_rng(0)
    w = rng.standard_normal((groups, m, k), dtype=np.float32)
    x = rng.standard_normal((groups, k, n), dtype=np.float32)
    y = np.empty((groups, m, n), np.float32)
    np.matmul(w, x, out=y)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        np.matmul(w, x, out=y)
        best = min(best, time.perf_counter() - start)
    return best * 1e3


def gemm_floor_ms(compiled, repeats: int) -> float:
    """Summed GEMM floor of one inference in ms, each distinct shape timed once."""
    cache: dict[GemmShape, float] = {}
    total = 0.0
    with threadpool_limits(1, user_api="blas"):
        for shape, images in gemm_shapes(compiled):
            if shape not in cache:
                cache[shape] = gemm_ms(shape, repeats)
            total += cache[shape] * images
    return total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=DEFAULT_MODELS)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=10)
    args = ap.parse_args()
    print(f"batch {args.batch}; onnxruntime on 1 and {THREADS} threads; GEMM floor on 1 BLAS thread")
    print(f"{'model':<14}{'GFLOP':>7}{'floor 1t':>10}{'ort 1t':>9}{f'floor/{THREADS}':>10}"
          f"{f'ort {THREADS}t':>9}{'omrt':>9}")
    for name in args.models.split(","):
        onnx_model = randomized(name, batch=args.batch, expose_logits=False)
        compiled = compile_onnx(onnx_model)
        session = InferenceSession(write_om(compiled))
        feeds = random_input(onnx_model)
        model_bytes = onnx_model.SerializeToString()
        one, many = ort_session(model_bytes, threads=1), ort_session(model_bytes)
        times = alternate({"ort1": lambda: one.run(None, feeds), "ort": lambda: many.run(None, feeds),
                           "omrt": lambda: session.run(None, feeds)}, repeats=args.repeats)
        floor, gflop = gemm_floor_ms(compiled, args.repeats), model_flops(compiled) / 1e9
        med = {k: float(np.median(v)) for k, v in times.items()}
        print(f"{name:<14}{gflop:>7.2f}{floor:>10.2f}{med['ort1']:>9.2f}{floor / THREADS:>10.2f}"
              f"{med['ort']:>9.2f}{med['omrt']:>9.2f}", flush=True)


if __name__ == "__main__":
    main()
