"""Gemm and MatMul: BLAS calls writing into the output view, then the fused epilogue in place.

Large products are split over the kernel thread pool (omrt.kernels.parallel) along output features
on FEATURE_ALIGN boundaries, so each feature is computed exactly as one single BLAS call would,
and each task applies bias and epilogue to its own slice while it is in cache. Batch-1 fully
connected layers are memory-bound, so the split lets every core stream its share of the weights.
"""
from __future__ import annotations

import numpy as np

from omrt.kernels.base import OpSpec, check, register
from omrt.kernels.epilogue import Epilogue, float16_via_float32
from omrt.kernels.parallel import FEATURE_ALIGN, get_pool, split

MIN_PARALLEL_FLOPS = 1e6


def _operand(x: np.ndarray, trans: bool) -> np.ndarray:
    return x.T if trans else x


def feature_ranges(m: int, n: int, k: int, threads: int) -> list[tuple[int, int]]:
    """Column (output feature) ranges for an (m, k) x (k, n) product; one range when not worth splitting."""
    if threads == 1 or 2.0 * m * n * k < MIN_PARALLEL_FLOPS or n < 2 * FEATURE_ALIGN:
        return [(0, n)]
    return split(n, threads, FEATURE_ALIGN)


def _cols(arr: np.ndarray | None, n: int, a: int, b: int) -> np.ndarray | None:
    """arr's slice for output features [a, b) when it varies along them, else arr itself."""
    if arr is None or arr.ndim == 0 or arr.shape[-1] != n or n == 1:
        return arr
    return arr[..., a:b]


@register("Gemm")
@float16_via_float32
def gemm(spec: OpSpec):
    """Y = alpha * A' B' + beta * C, C broadcast to (M, N); beta * C is precomputed when C is constant."""
    alpha = float(spec.attr("alpha", 1.0))
    beta = float(spec.attr("beta", 1.0))
    ta, tb = bool(spec.attr("transA", 0)), bool(spec.attr("transB", 0))
    epi = Epilogue(spec.attrs)
    dtype = np.dtype(spec.outputs[0].dtype)
    n_plain = len(spec.inputs) - (1 if epi.residual else 0)
    has_c = n_plain > 2 and spec.inputs[2] is not None and beta != 0.0
    c_const = spec.consts.get(2)
    c_scaled = (c_const * beta).astype(dtype) if has_c and c_const is not None else None
    b_const = spec.consts.get(1)
    b_op = _operand(b_const, tb) if b_const is not None else None
    pool = get_pool()
    m, n = spec.outputs[0].shape
    k = spec.inputs[0].shape[0 if ta else 1]
    ranges = feature_ranges(m, n, k, pool.size)

    def run(inputs, outputs, scratch):
        y = outputs[0]
        a = _operand(inputs[0], ta)
        b = b_op if b_op is not None else _operand(inputs[1], tb)
        c = None
        if has_c:
            c = c_scaled if c_scaled is not None else (inputs[2] if beta == 1.0 else inputs[2] * beta)
        res = inputs[-1] if epi.residual else None

        def task(i: int) -> None:
            lo, hi = ranges[i]
            out = y[:, lo:hi]
            np.matmul(a, b[:, lo:hi], out=out)
            if alpha != 1.0:
                out *= alpha
            if c is not None:
                np.add(out, _cols(c, n, lo, hi), out=out)
            epi(out, _cols(res, n, lo, hi))

        pool.run(task, len(ranges))
    return run


@register("MatMul")
@float16_via_float32
def matmul(spec: OpSpec):
    """numpy matmul semantics (batched, broadcast, 1-D operands) plus the `_bias` epilogue.

    A batched A times a 2-D B is run as one (batch*M, K) x (K, N) GEMM when A is contiguous.
    """
    epi = Epilogue(spec.attrs)
    has_bias = bool(spec.attr("_bias", 0))
    a_spec, b_spec = spec.inputs[0], spec.inputs[1]
    check(a_spec is not None and b_spec is not None, f"MatMul {spec.name}: missing operand")
    b_const = spec.consts.get(1)
    bias_const = spec.consts.get(2) if has_bias else None
    flat = len(a_spec.shape) > 2 and len(b_spec.shape) == 2
    k = a_spec.shape[-1]
    pool = get_pool()
    y_shape = tuple(spec.outputs[0].shape)
    two_d = len(b_spec.shape) == 2 and len(a_spec.shape) >= 2
    n = y_shape[-1] if y_shape else 1
    rows = int(np.prod(y_shape[:-1])) if len(y_shape) > 1 else 1
    ranges = feature_ranges(rows, n, k, pool.size) if two_d else [(0, n)]

    def run(inputs, outputs, scratch):
        a, y = inputs[0], outputs[0]
        b = b_const if b_const is not None else inputs[1]
        bias = (bias_const if bias_const is not None else inputs[2]) if has_bias else None
        res = inputs[-1] if epi.residual else None
        if flat and a.flags.c_contiguous and y.flags.c_contiguous:
            a2, y2 = a.reshape(-1, k), y.reshape(-1, y.shape[-1])
        else:
            a2, y2 = a, y
        r2 = res.reshape(y2.shape) if res is not None and res.shape == y.shape else None
        per_task = res is None or r2 is not None  # else the broadcast residual needs the whole output

        def task(i: int) -> None:
            lo, hi = ranges[i]
            whole = len(ranges) == 1
            out = y2 if whole else y2[..., lo:hi]
            np.matmul(a2, b if whole else b[..., lo:hi], out=out)
            if bias is not None:
                np.add(out, bias if whole else _cols(bias, n, lo, hi), out=out)
            if per_task:
                epi(out, r2 if whole or r2 is None else r2[..., lo:hi])

        pool.run(task, len(ranges))
        if not per_task:
            epi(y, res)
    return run
