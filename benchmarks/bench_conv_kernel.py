"""Time omrt's Conv kernel against onnxruntime (OMRT_BENCH_THREADS threads, default 2) on single-Conv models; prints omrt/ort.

Usage: python benchmarks/bench_conv_kernel.py [--winograd] [--cases a,dw1] [--batch N] [--cold] [--set K=V,K=V]
(--set: omrt.kernels module constants while the kernels are built, as in ab_models.py)
(median of 20 after warm-up)
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from common import kernel_constants, ort_session, parse_constants

from omrt.kernels import OpSpec, TensorSpec, build_kernel, prepack, workspace_bytes

CASES = {
    "a 64->64 3x3 56": (64, 64, 3, 1, 1, 56),
    "b 256->256 3x3 56": (256, 256, 3, 1, 1, 56),
    "c 256->64 1x1 56": (256, 64, 1, 1, 0, 56),
    "d 3->64 7x7 s2 224": (3, 64, 7, 2, 3, 224),
    "sq 3->64 3x3 s2 224": (3, 64, 3, 2, 0, 224),
    "dw1 272 3x3 dw 14": (272, 272, 3, 1, 1, 14, 272),
    "dw2 136 3x3 dw 28": (136, 136, 3, 1, 1, 28, 136),
    "dw3 544 3x3 dw 7": (544, 544, 3, 1, 1, 7, 544),
    "dw4 112 3x3 dw s2 56": (112, 112, 3, 2, 1, 56, 112),
    "g4 272->272 1x1 g4 14": (272, 272, 1, 1, 0, 14, 4),
    "s7 512->512 3x3 7": (512, 512, 3, 1, 1, 7),
    "t56 128->128 3x3 s2 56": (128, 128, 3, 2, 1, 56),
    "t28 256->256 3x3 s2 28": (256, 256, 3, 2, 1, 28),
    "t14 512->512 3x3 s2 14": (512, 512, 3, 2, 1, 14),
    "r28 128->128 3x3 28": (128, 128, 3, 1, 1, 28),
    "r14 256->256 3x3 14": (256, 256, 3, 1, 1, 14),
    "d56 128->32 3x3 56": (128, 32, 3, 1, 1, 56),
    "d28 128->32 3x3 28": (128, 32, 3, 1, 1, 28),
    "d14 128->32 3x3 14": (128, 32, 3, 1, 1, 14),
    "d7 128->32 3x3 7": (128, 32, 3, 1, 1, 7),
    "v14 512->512 3x3 14": (512, 512, 3, 1, 1, 14),
    "v28 512->512 3x3 28": (512, 512, 3, 1, 1, 28),
    "q13 64->256 3x3 13": (64, 256, 3, 1, 1, 13),
    "q13b 48->192 3x3 13": (48, 192, 3, 1, 1, 13),
    "i13 160->320 3x3 13": (160, 320, 3, 1, 1, 13),
    "i14a 96->208 3x3 14": (96, 208, 3, 1, 1, 14),
    "i14b 112->224 3x3 14": (112, 224, 3, 1, 1, 14),
    "q55 16->64 3x3 55": (16, 64, 3, 1, 1, 55),
    "g224 64->64 3x3 224": (64, 64, 3, 1, 1, 224),
    "g112 64->128 3x3 112": (64, 128, 3, 1, 1, 112),
    "i55 64->192 3x3 55": (64, 192, 3, 1, 1, 55),
    "i27 96->128 3x3 27": (96, 128, 3, 1, 1, 27),
    "k13 512->1000 1x1 13": (512, 1000, 1, 1, 0, 13),
    "f28 16->32 5x5 28": (16, 32, 5, 1, 2, 28),
    "f14 16->48 5x5 14": (16, 48, 5, 1, 2, 14),
    "q27 32->128 3x3 27": (32, 128, 3, 1, 1, 27),
    "e56 64->256 1x1 56": (64, 256, 1, 1, 0, 56),
    "e28 128->512 1x1 28": (128, 512, 1, 1, 0, 28),
    "e14 256->1024 1x1 14": (256, 1024, 1, 1, 0, 14),
    "e7 512->2048 1x1 7": (512, 2048, 1, 1, 0, 7),
    "c14 1024->256 1x1 14": (1024, 256, 1, 1, 0, 14),
    "c7 2048->512 1x1 7": (2048, 512, 1, 1, 0, 7),
    "ds56 256->512 1x1 s2 56": (256, 512, 1, 2, 0, 56),
    "ds14 1024->2048 1x1 s2 14": (1024, 2048, 1, 2, 0, 14),
    "ds28 512->1024 1x1 s2 28": (512, 1024, 1, 2, 0, 28),
    "c28 512->128 1x1 28": (512, 128, 1, 1, 0, 28),
    "c28b 512->256 1x1 28": (512, 256, 1, 1, 0, 28),
    "c56 256->128 1x1 56": (256, 128, 1, 1, 0, 56),
    "n56 128->128 1x1 56": (128, 128, 1, 1, 0, 56),
    "n28 256->128 1x1 28": (256, 128, 1, 1, 0, 28),
    "n28b 384->128 1x1 28": (384, 128, 1, 1, 0, 28),
    "z55 128->16 1x1 55": (128, 16, 1, 1, 0, 55),
    "z55b 64->16 1x1 55": (64, 16, 1, 1, 0, 55),
    "x55 16->64 1x1 55": (16, 64, 1, 1, 0, 55),
    "z27 256->32 1x1 27": (256, 32, 1, 1, 0, 27),
    "x27 32->128 1x1 27": (32, 128, 1, 1, 0, 27),
    "z13 384->64 1x1 13": (384, 64, 1, 1, 0, 13),
    "x13 64->256 1x1 13": (64, 256, 1, 1, 0, 13),
    "zf 96->256 5x5 s2 54": (96, 256, 5, 2, 0, 54),
    "ax 3->96 11x11 s4 224": (3, 96, 11, 4, 0, 224),
}


FLUSH_BYTES = 96 * 1024 * 1024   # three times the last-level cache: weights and input start cold
_flush: np.ndarray | None = None


def median_ms(fn, reps: int = 20, cold: bool = False) -> float:
    """Median time of fn after 3 warm-ups; `cold` rewrites FLUSH_BYTES before each timed call, as
    the other ops of a model do between two calls of one conv."""
    global _flush
    if cold and _flush is None:
        _flush = np.zeros(FLUSH_BYTES // 4, np.float32)
    for _ in range(3):
        fn()
    times = []
    for _ in range(reps):
        if cold:
            np.add(_flush, 1.0, out=_flush)
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1e3)


def conv_case(cin: int, cout: int, k: int, s: int, p: int, hw: int, group: int = 1, *, batch: int = 1):
    """One case's input, weights and bias (seeded), its Conv attributes and the ONNX model of it."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, cin, hw, hw), dtype=np.float32)
    w = rng.standard_normal((cout, cin // group, k, k), dtype=np.float32) * 0.05
    b = rng.standard_normal(cout, dtype=np.float32)
    attrs = {"kernel_shape": [k, k], "strides": [s, s], "pads": [p] * 4, "group": group}
    ho = (hw + 2 * p - k) // s + 1
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], **attrs)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, (batch, cout, ho, ho))],
                              [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return x, w, b, attrs, (batch, cout, ho, ho), model


def omrt_conv(x, w, b, attrs, out_shape, *, winograd: bool, constants: dict[str, float] | None = None):
    """(a call running omrt's Conv kernel once, its output array, whether it runs Winograd): the
    weights as the compiler stores them (Winograd only with `winograd`), built with `constants`."""
    spec = OpSpec("Conv", dict(attrs), [TensorSpec(x.shape, np.dtype(np.float32)), TensorSpec(w.shape, w.dtype),
                                        TensorSpec(b.shape, b.dtype)],
                  [TensorSpec(out_shape, np.dtype(np.float32))], {1: w, 2: b})
    with kernel_constants(constants or {}):
        packed = prepack(spec)
        if packed is not None and (winograd or not packed[0].get("_winograd")):
            spec.attrs.update(packed[0])
            spec.consts.update(packed[1])
            spec.inputs[1] = TensorSpec(packed[1][1].shape, packed[1][1].dtype)
        kernel = build_kernel(spec)
        scratch = np.empty(workspace_bytes(spec), np.uint8)
    y = np.empty(out_shape, np.float32)
    inputs = [x, spec.consts[1], b]
    return (lambda: kernel(inputs, [y], scratch)), y, bool(spec.attrs.get("_winograd"))


def bench(*cfg: int, winograd: bool, batch: int = 1, cold: bool = False,
          constants: dict[str, float] | None = None) -> tuple[float, float]:
    x, w, b, attrs, out_shape, model = conv_case(*cfg, batch=batch)
    run, y, is_winograd = omrt_conv(x, w, b, attrs, out_shape, winograd=winograd, constants=constants)
    t_omrt = median_ms(run, cold=cold)
    sess = ort_session(model.SerializeToString())
    # timed after omrt and closed before the next case: idle onnxruntime threads spin
    t_ort = median_ms(lambda: sess.run(None, {"x": x}), cold=cold)
    ref = sess.run(None, {"x": x})[0]
    del sess
    err = float(np.abs(y - ref).max() / (np.abs(ref).max() + 1e-12))
    tag = " winograd" if is_winograd else ""
    print(f"{tag:9s} rel.err {err:.1e}", end="  ")
    return t_omrt, t_ort


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--winograd", action="store_true", help="let prepack choose Winograd where eligible")
    ap.add_argument("--cases", default="", help="comma-separated case keys (first word), default all")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--cold", action="store_true", help="flush the caches before each timed call")
    ap.add_argument("--set", default="", help="K=V,K=V: omrt.kernels module constants while building")
    args = ap.parse_args()
    keys = set(filter(None, args.cases.split(",")))
    constants = parse_constants(args.set)
    for name, cfg in CASES.items():
        if keys and name.split()[0] not in keys:
            continue
        t_omrt, t_ort = bench(*cfg, winograd=args.winograd, batch=args.batch, cold=args.cold, constants=constants)
        print(f"{name:20s} omrt {t_omrt:7.3f} ms  ort {t_ort:7.3f} ms  omrt/ort {t_omrt / t_ort:5.2f}")


if __name__ == "__main__":
    main()
