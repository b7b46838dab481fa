"""Time omrt's pooling and LRN kernels against onnxruntime (2 threads) on single-node models.

Usage: python benchmarks/bench_pool_kernel.py [--cases m112,lrn192]
(median of 50 after warm-up; the shapes are Inception-v1's, ResNet-50's and SqueezeNet's)
"""
from __future__ import annotations

import argparse

import numpy as np
from onnx import TensorProto, helper

import common  # noqa: F401  (puts the repository root on sys.path)
from bench_conv_kernel import median_ms
from common import ort_session
from omrt.kernels import OpSpec, TensorSpec, build_kernel, workspace_bytes


def _pool(stride: int, pads: list[int]) -> dict:
    return {"kernel_shape": [3, 3], "strides": [stride, stride], "pads": pads}


_LRN = {"size": 5, "alpha": 1e-4, "beta": 0.75, "bias": 1.0}
CASES = {
    "m112 MaxPool 64x112x112 /2": ("MaxPool", (1, 64, 112, 112), _pool(2, [0, 0, 1, 1])),
    "m56 MaxPool 192x56x56 /2": ("MaxPool", (1, 192, 56, 56), _pool(2, [0, 0, 1, 1])),
    "m28s MaxPool 480x28x28 /2": ("MaxPool", (1, 480, 28, 28), _pool(2, [0, 0, 1, 1])),
    "m28 MaxPool 256x28x28 /1": ("MaxPool", (1, 256, 28, 28), _pool(1, [1, 1, 1, 1])),
    "m14 MaxPool 512x14x14 /1": ("MaxPool", (1, 512, 14, 14), _pool(1, [1, 1, 1, 1])),
    "m7 MaxPool 832x7x7 /1": ("MaxPool", (1, 832, 7, 7), _pool(1, [1, 1, 1, 1])),
    "a28 AveragePool 256x28x28 /1": ("AveragePool", (1, 256, 28, 28), _pool(1, [1, 1, 1, 1])),
    "t56 AveragePool 2x2 256x56x56 /2": ("AveragePool", (1, 256, 56, 56), {"kernel_shape": [2, 2], "strides": [2, 2]}),
    "t28 AveragePool 2x2 512x28x28 /2": ("AveragePool", (1, 512, 28, 28), {"kernel_shape": [2, 2], "strides": [2, 2]}),
    "t14 AveragePool 2x2 1024x14x14 /2": ("AveragePool", (1, 1024, 14, 14), {"kernel_shape": [2, 2], "strides": [2, 2]}),
    "s111 MaxPool 64x111x111 /2": ("MaxPool", (1, 64, 111, 111), _pool(2, [0, 0, 0, 0])),
    "s55 MaxPool 128x55x55 /2": ("MaxPool", (1, 128, 55, 55), _pool(2, [0, 0, 0, 0])),
    "s27 MaxPool 256x27x27 /2": ("MaxPool", (1, 256, 27, 27), _pool(2, [0, 0, 0, 0])),
    "sq111 MaxPool 8x64x111x111 /2": ("MaxPool", (8, 64, 111, 111), _pool(2, [0, 0, 0, 0])),
    "sq55 MaxPool 8x128x55x55 /2": ("MaxPool", (8, 128, 55, 55), _pool(2, [0, 0, 0, 0])),
    "lrn64 LRN 64x56x56": ("LRN", (1, 64, 56, 56), _LRN),
    "lrn192 LRN 192x56x56": ("LRN", (1, 192, 56, 56), _LRN),
}


def bench(op: str, shape: tuple[int, ...], attrs: dict) -> tuple[float, float]:
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    node = helper.make_node(op, ["x"], ["y"], **attrs)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    sess = ort_session(model.SerializeToString())
    ref = sess.run(None, {"x": x})[0]
    t_ort = median_ms(lambda: sess.run(None, {"x": x}), 50)
    del sess
    spec = OpSpec(op, dict(attrs), [TensorSpec(shape, np.dtype(np.float32))], [TensorSpec(ref.shape, ref.dtype)])
    kernel = build_kernel(spec)
    y = np.empty_like(ref)
    scratch = np.empty(workspace_bytes(spec), np.uint8)
    t_omrt = median_ms(lambda: kernel([x], [y], scratch), 50)
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-5)
    return t_omrt, t_ort


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", default="", help="comma-separated case keys (first word), default all")
    args = ap.parse_args()
    keys = set(filter(None, args.cases.split(",")))
    for name, (op, shape, attrs) in CASES.items():
        if keys and name.split()[0] not in keys:
            continue
        t_omrt, t_ort = bench(op, shape, attrs)
        print(f"{name:32s} omrt {t_omrt:6.3f} ms  ort {t_ort:6.3f} ms  omrt/ort {t_omrt / t_ort:5.2f}")


if __name__ == "__main__":
    main()
