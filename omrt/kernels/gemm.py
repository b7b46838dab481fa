"""Gemm and MatMul: BLAS calls writing into the output view, then the fused epilogue in place.

Large products are split over the kernel thread pool (omrt.kernels.parallel) so that all output
features of a row come out of one code path: a single-row product (batch-1 fully connected layer,
memory-bound, run by BLAS as a GEMV) is split along output features on FEATURE_ALIGN boundaries,
which gives bit-for-bit what one call gives and lets every core stream its share of the weights;
several rows are split along rows. Each task applies bias and epilogue to its own slice while it
is in cache. A fully connected layer of several rows runs instead on weights the compiler packed
(_packable, omrt.kernels.packed_gemm), split along output features.
"""
from __future__ import annotations

import numpy as np

from omrt.kernels import packed_gemm
from omrt.kernels.base import OpSpec, check, register
from omrt.kernels.epilogue import Epilogue, float16_via_float32
from omrt.kernels.parallel import FEATURE_ALIGN, get_pool, lead_split, split

# Smaller products stay on the calling thread. Batch 1 inside each model, weights coming from
# memory (two threads, one thread -> split): ShuffleNet's 544->1000 layer (1.1e6 flops, 2.2 MB of
# weights) 0.24 -> 0.41 ms; Inception-v1's 1024->1000 (2.0e6) 0.40 -> 0.37 in one run, left on
# one thread; ResNet-50's 2048->1000 (4.1e6, 8 MB) 0.52 -> 0.41-0.44, two cores streaming more.
MIN_PARALLEL_FLOPS = 3e6


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


def _bias_row(spec: OpSpec) -> np.ndarray | None:
    """beta * C as one row of N where C is a constant that broadcasts along rows (none where C is
    absent or zeroed by beta); raises LookupError where C is not such a constant."""
    beta = float(spec.attr("beta", 1.0))
    plain = len(spec.inputs) - (1 if spec.attr("_residual") else 0)
    if plain < 3 or spec.inputs[2] is None or beta == 0.0:
        return None
    c = spec.consts.get(2)
    n = spec.outputs[0].shape[1]
    if c is None or c.size not in (1, n) or (c.ndim == 2 and c.shape[0] != 1):
        raise LookupError
    return np.broadcast_to(np.asarray(c, np.float32).reshape(-1), (n,)) * np.float32(beta)


def _packable(spec: OpSpec) -> bool:
    """A float32 fully connected layer of PACKED_MIN_ROWS rows or more: A (m, K) untransposed
    times constant weights, alpha 1, C absent or a constant row. Its product runs on the packed
    micro-kernel (packed_gemm) over weights packed at compile time, where BLAS packs them again on
    every call, slowly from a transposed view: ResNet-50's 2048->1000 layer on two threads (the
    layer alone, hot / caches flushed) 4 rows 1.56 / 1.98 -> 0.47 / 0.63 ms, 8 rows 2.22 / 2.76 ->
    0.67 / 0.87; ResNet-50 at batch 8 (two lanes of four) 3.7 -> 1.4 ms of Gemm a run."""
    if spec.attr("transA", 0) or float(spec.attr("alpha", 1.0)) != 1.0 or 1 not in spec.consts:
        return False
    if spec.outputs[0].shape[0] < PACKED_MIN_ROWS:
        return False
    if np.dtype(spec.outputs[0].dtype) != np.float32 or spec.consts[1].dtype != np.float32:
        return False
    try:
        _bias_row(spec)
    except LookupError:
        return False
    return True


def _gemm_prepack(spec: OpSpec):
    """Weights (N, K) stored as packed_gemm panels where _packable."""
    if spec.attr("_packed") or not _packable(spec):
        return None
    b = spec.consts[1]
    w = b if spec.attr("transB", 0) else b.T
    return {"_packed": 1}, {1: packed_gemm.pack_panels(np.ascontiguousarray(w))}


def _packed_build(spec: OpSpec, panels: np.ndarray, epi: Epilogue):
    """Y = A @ W.T + bias on the packed micro-kernel: A's rows are its columns, read in place
    (packed_gemm.Gather), Y stored row by row as the kernel's vectors run (transposed), blocks of
    output features over the threads, then the activation and residual on each block."""
    m, n = spec.outputs[0].shape
    k = spec.inputs[0].shape[1]
    weights = packed_gemm.packed(panels, n, _bias_row(spec))
    tables = packed_gemm.Gather(np.arange(k, dtype=np.int64), np.arange(m, dtype=np.int64) * k)
    pool = get_pool()
    flops = 2.0 * m * n * k
    # the weights stream from memory once per call: two threads stream them faster from fewer flops
    parts = pool.size if flops >= PACKED_MIN_PARALLEL_FLOPS else 1
    blocks = lead_split(weights.count, parts, 1, flops)
    rows = packed_gemm.PANEL_ROWS

    def run(inputs, outputs, scratch):
        a, y = np.ascontiguousarray(inputs[0], np.float32), outputs[0]
        res = inputs[-1] if epi.residual else None

        def task(i: int) -> None:
            first, last = blocks[i]
            c0, c1 = first * rows, min(n, last * rows)
            out = y[:, c0:c1]
            packed_gemm.multiply(weights, a, out, np.empty(packed_gemm.accumulator_floats(m), np.float32),
                                 first, last, transposed=True, gather=tables)
            epi(out, _tile(res, m, n, (0, m), (c0, c1)))

        pool.run(task, len(blocks))
    return run


# Rows of A from which a layer runs on packed weights: one row (a batch of one) is a matrix-vector
# product that BLAS streams as fast (2048->1000 with caches flushed 0.56 ms against 0.63 packed;
# 544->1000 0.27 against 0.25, hot 0.05 against 0.07).
PACKED_MIN_ROWS = 2
# Flops from which the packed product splits over the threads (Python tasks, as the plain one).
PACKED_MIN_PARALLEL_FLOPS = MIN_PARALLEL_FLOPS


@register("Gemm", prepack=_gemm_prepack)
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
    if spec.attr("_packed"):
        want = packed_gemm.panels_shape(1, spec.outputs[0].shape[1], spec.inputs[0].shape[1])
        check(b_const is not None and b_const.shape == want and b_const.dtype == np.float32,
              f"Gemm {spec.name}: packed weights of shape {None if b_const is None else b_const.shape}, "
              f"expected {want} float32")
        if packed_gemm.available():
            return _packed_build(spec, b_const, epi)
        b_const = packed_gemm.unpack_panels(b_const, spec.outputs[0].shape[1])[0]   # (N, K)
        tb = True
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
