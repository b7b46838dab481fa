"""Gemm and MatMul: BLAS calls writing into the output view, then the fused epilogue in place.

Large products are split over the kernel thread pool (omrt.kernels.parallel) so that all output
features of a row come out of one code path: a single-row product (batch-1 fully connected layer,
memory-bound, run by BLAS as a GEMV) is split along output features on FEATURE_ALIGN boundaries,
which gives bit-for-bit what one call gives and lets every core stream its share of the weights;
several rows are split along rows. Each task applies bias and epilogue to its own slice while it
is in cache.
"""
from __future__ import annotations

import numpy as np

from omrt.kernels.base import OpSpec, check, register
from omrt.kernels.epilogue import Epilogue, float16_via_float32
from omrt.kernels.parallel import FEATURE_ALIGN, get_pool, split

# Smaller products stay on the calling thread. ShuffleNet's 544->1000 layer at batch 1 (1.1e6
# flops, 2.2 MB of weights) took 0.13-0.18 ms split over two threads and 0.06-0.08 ms on one;
# ResNet-50's 2048->1000 (4.1e6) was even either way.
MIN_PARALLEL_FLOPS = 1e7


def _operand(x: np.ndarray, trans: bool) -> np.ndarray:
    return x.T if trans else x


def work_split(m: int, n: int, k: int, threads: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(row ranges, feature ranges) tiling an (m, k) x (k, n) product into tasks."""
    if threads == 1 or 2.0 * m * n * k < MIN_PARALLEL_FLOPS:
        return [(0, m)], [(0, n)]
    if m == 1:
        return [(0, 1)], split(n, threads, FEATURE_ALIGN)
    return split(m, threads), [(0, n)]


def _tile(arr: np.ndarray | None, m: int, n: int, rows: tuple[int, int], cols: tuple[int, int]):
    """arr's part for output rows x features of one task; arr broadcasts to (m, n)."""
    if arr is None or arr.ndim == 0:
        return arr
    if arr.shape[-1] == n and n > 1:
        arr = arr[..., cols[0]:cols[1]]
    if arr.ndim >= 2 and arr.shape[-2] == m and m > 1:
        arr = arr[..., rows[0]:rows[1], :]
    return arr


def _tasks(m: int, n: int, k: int, threads: int) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    rows, cols = work_split(m, n, k, threads)
    return [(r, c) for r in rows for c in cols]


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
    tasks = _tasks(m, n, k, pool.size)

    def run(inputs, outputs, scratch):
        y = outputs[0]
        a = _operand(inputs[0], ta)
        b = b_op if b_op is not None else _operand(inputs[1], tb)
        c = None
        if has_c:
            c = c_scaled if c_scaled is not None else (inputs[2] if beta == 1.0 else inputs[2] * beta)
        res = inputs[-1] if epi.residual else None

        def task(i: int) -> None:
            (r0, r1), (c0, c1) = tasks[i]
            out = y[r0:r1, c0:c1]
            np.matmul(a[r0:r1], b[:, c0:c1], out=out)
            if alpha != 1.0:
                out *= alpha
            if c is not None:
                np.add(out, _tile(c, m, n, (r0, r1), (c0, c1)), out=out)
            epi(out, _tile(res, m, n, (r0, r1), (c0, c1)))

        pool.run(task, len(tasks))
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
    tasks = _tasks(rows, n, k, pool.size) if two_d and (flat or len(a_spec.shape) == 2) else [((0, rows), (0, n))]

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
        jobs = tasks if a2.ndim == 2 and y2.ndim == 2 else tasks[:1]

        def task(i: int) -> None:
            if len(jobs) == 1:
                out = y2
                np.matmul(a2, b, out=out)
                rt = r2
                if bias is not None:
                    np.add(out, bias, out=out)
            else:
                (r0, r1), (c0, c1) = jobs[i]
                out = y2[r0:r1, c0:c1]
                np.matmul(a2[r0:r1], b[:, c0:c1], out=out)
                if bias is not None:
                    np.add(out, _tile(bias, rows, n, (r0, r1), (c0, c1)), out=out)
                rt = _tile(r2, rows, n, (r0, r1), (c0, c1))
            if per_task:
                epi(out, rt)

        pool.run(task, len(jobs))
        if not per_task:
            epi(y, res)
    return run
