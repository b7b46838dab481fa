"""Blocks of output channels of one GEMM as a native job: BLAS's own sgemm called from a compiled
task, then the bias, residual and clamp on the block in the same task.

Why: a 1x1 conv split by output channels ran as Python tasks, each a numpy matmul plus numpy's
epilogue passes, and a worker takes 12 us to start one (omrt.kernels.parallel's hold-off). Here a
polling worker starts its block at once and never takes the GIL (omrt.kernels.native_jobs). The
sgemm is the one numpy itself calls (OpenBLAS, found through threadpoolctl, put in single-thread
mode by the kernel pool), so the products are the same as numpy's matmul gives.
"""
from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

from omrt.kernels import llvm_jit, native_jobs

# cblas_sgemm under the names numpy's OpenBLAS builds export it, with their integer width
_SYMBOLS = (("scipy_cblas_sgemm64_", 64), ("cblas_sgemm64_", 64), ("scipy_cblas_sgemm", 32), ("cblas_sgemm", 32))
_ROW_MAJOR, _NO_TRANS = 101, 111
# 1: convs split by output channels run their blocks as a native job (0: as Python tasks).
NATIVE_BLAS_TASKS = 1
SLOTS = ("sgemm", "w", "x", "y", "bias", "res", "k", "n", "width", "ldw", "ldx", "ldy", "lo", "hi", "with_res",
         "blocks")
# Output bytes of one task's piece of columns: its epilogue rereads them from L2 (1 MB a Zen 4 core),
# not from L3.
PIECE_BYTES = 512 * 1024
_found: list[tuple[int, int] | None] = []


def _sgemm() -> tuple[int, int] | None:
    """(address, integer bits) of numpy's BLAS cblas_sgemm, or None."""
    if not _found:
        found = None
        try:
            from threadpoolctl import threadpool_info

            for info in threadpool_info():
                if info.get("internal_api") != "openblas" or found:
                    continue
                lib = ctypes.CDLL(info["filepath"])
                for name, bits in _SYMBOLS:
                    if hasattr(lib, name):
                        found = (ctypes.cast(getattr(lib, name), ctypes.c_void_p).value, bits)
                        break
        except (ImportError, OSError):
            found = None
        _found.append(found)
    return _found[0]


def _module_ir(vl: int, bits: int) -> str:
    """`task(args, i)`: rows blocks[i] of Y a piece of `width` columns at a time, each piece an
    sgemm (BLAS integers of `bits`) and then, row by row while the piece is in cache, the bias,
    the residual (masked off without one) and the clamp, in place."""
    v, iv, mask, n = f"<{vl} x float>", f"<{vl} x i32>", f"<{vl} x i1>", f"i{bits}"
    dims = [f"  %{name}{bits} = trunc i64 %{name} to {n}" if bits < 64 else f"  %{name}{bits} = add i64 %{name}, 0"
            for name in ("count", "piece", "k", "ldw", "ldx", "ldy")]
    clamped, high = llvm_jit.clamp(vl, "%sum", "%lov", "%hiv", "")
    body = ["  %w_off = mul i64 %first, %ldw", "  %wi = getelementptr float, ptr %w, i64 %w_off",
            "  %y_off = mul i64 %first, %ldy", "  %yi = getelementptr float, ptr %y, i64 %y_off",
            *llvm_jit.splat("lov", "%lo", vl), *llvm_jit.splat("hiv", "%hi", vl),
            "  %has_res = icmp ne i64 %with_res, 0", *llvm_jit.splat("res_on", "%has_res", vl, "i1"),
            "  br label %columns", "columns:", "  %c = phi i64 [0, %entry], [%c_next, %piece_done]",
            "  %left = sub i64 %n, %c", "  %short = icmp ult i64 %left, %width",
            "  %piece = select i1 %short, i64 %left, i64 %width", *dims,
            "  %xc = getelementptr float, ptr %x, i64 %c", "  %yc = getelementptr float, ptr %yi, i64 %c",
            f"  call void %sgemm(i32 {_ROW_MAJOR}, i32 {_NO_TRANS}, i32 {_NO_TRANS}, {n} %count{bits}, "
            f"{n} %piece{bits}, {n} %k{bits}, float 1.0, ptr %wi, {n} %ldw{bits}, ptr %xc, {n} %ldx{bits}, "
            f"float 0.0, ptr %yc, {n} %ldy{bits})",
            "  %n32 = trunc i64 %piece to i32", *llvm_jit.splat("ns", "%n32", vl, "i32"),
            "  %yp0 = getelementptr float, ptr %y, i64 %c", "  %rp0 = getelementptr float, ptr %res, i64 %c",
            "  br label %row", "row:", "  %r = phi i64 [%first, %columns], [%r_next, %row_done]",
            "  %bq = getelementptr float, ptr %bias, i64 %r", "  %b = load float, ptr %bq, align 4",
            *llvm_jit.splat("bs", "%b", vl), "  %ro = mul i64 %r, %ldy",
            "  %yrow = getelementptr float, ptr %yp0, i64 %ro", "  %rrow = getelementptr float, ptr %rp0, i64 %ro",
            "  br label %across", "across:", "  %j = phi i64 [0, %row], [%j_next, %across]",
            "  %j32 = trunc i64 %j to i32", *llvm_jit.splat("js", "%j32", vl, "i32"),
            f"  %cols = add {iv} %js, {llvm_jit.lanes32(vl)}", f"  %in = icmp slt {iv} %cols, %ns",
            f"  %in_res = and {mask} %in, %res_on", "  %yp = getelementptr float, ptr %yrow, i64 %j",
            "  %rp = getelementptr float, ptr %rrow, i64 %j",
            f"  %yv = call {v} @llvm.masked.load.v{vl}f32.p0(ptr %yp, i32 4, {mask} %in, {v} zeroinitializer)",
            f"  %rv = call {v} @llvm.masked.load.v{vl}f32.p0(ptr %rp, i32 4, {mask} %in_res, {v} zeroinitializer)",
            f"  %biased = fadd {v} %yv, %bs", f"  %sum = fadd {v} %biased, %rv",
            *clamped, f"  call void @llvm.masked.store.v{vl}f32.p0({v} {high}, ptr %yp, i32 4, {mask} %in)",
            llvm_jit.next_iteration("j", vl, "%piece", "across", "row_done"), "row_done:",
            llvm_jit.next_iteration("r", 1, "%last", "row", "piece_done"), "piece_done:",
            llvm_jit.next_iteration("c", "%width", "%n", "columns", "done"), "done:"]
    task = native_jobs.task_ir("", SLOTS, {"sgemm", "w", "x", "y", "bias", "res", "blocks"}, {"lo", "hi"}, body)
    return "\n".join([*llvm_jit.masked_declarations(vl), task])


def _kernel() -> dict[str, Any] | None:
    found = _sgemm()
    if found is None:
        return None
    bits = found[1]
    return llvm_jit.compile_module(f"blas_task{bits}", lambda vl: _module_ir(vl, bits),
                                   {"task": native_jobs.TASK_ARGS})


def job(m: int, k: int, n: int, blocks: list[tuple[int, int]]) -> native_jobs.NativeJob | None:
    """A native job computing rows blocks[i] of Y (m, n) = clamp(W (m, k) @ X (k, n) + bias + res)
    per task, or None where no sgemm or no compiled code is found; set w, x, y, bias, res, ldw,
    ldx, ldy, lo, hi and with_res before each run."""
    kernel = _kernel()
    if kernel is None or m == 0 or n == 0 or k == 0:
        return None
    return native_jobs.NativeJob(kernel["task"], SLOTS, blocks, sgemm=_sgemm()[0], k=k, n=n,
                                 width=piece_columns(max(b - a for a, b in blocks), n))


def piece_columns(rows: int, n: int) -> int:
    """Columns of each piece a task multiplies and finishes before the next: equal pieces, a whole
    number of vectors wide, whose output rows fit in PIECE_BYTES."""
    pieces = max(1, -(-rows * n * 4 // PIECE_BYTES))
    per_piece = -(-n // pieces)
    return min(n, -(-per_piece // 16) * 16)


def fits(w: np.ndarray, x: np.ndarray, y: np.ndarray, bias: np.ndarray, res: np.ndarray | None) -> bool:
    """Float32 operands with contiguous rows, a contiguous bias, a residual laid out as y."""
    arrays = (w, x, y) if res is None else (w, x, y, res)
    return (all(a.dtype == np.float32 and a.ndim == 2 and a.strides[1] == 4 for a in arrays)
            and bias.dtype == np.float32 and bias.flags.c_contiguous and (res is None or res.strides == y.strides))


class ChannelJob:
    """One conv's blocks of output channels as a native job, for an epilogue that is a clamp."""

    def __init__(self, job: native_jobs.NativeJob, clamp: tuple[float, float], m: int) -> None:
        self.job, self.clamp = job, clamp
        self.zeros = np.zeros(m, np.float32)   # the bias of a conv without one

    def run(self, pool: Any, w: np.ndarray, x: np.ndarray, y: np.ndarray, bias: np.ndarray | None,
            res: np.ndarray | None) -> bool:
        """y = clamp(w @ x + bias + res) on the pool's threads; False (nothing done) where the
        operands do not fit."""
        b1 = self.zeros if bias is None else bias.reshape(-1)
        if not fits(w, x, y, b1, res):
            return False
        lo, hi = self.clamp
        y_at = y.ctypes.data
        self.job.set(w=w.ctypes.data, x=x.ctypes.data, y=y_at, bias=b1.ctypes.data,
                     res=y_at if res is None else res.ctypes.data, ldw=w.strides[0] // 4, ldx=x.strides[0] // 4,
                     ldy=y.strides[0] // 4, lo=float(lo), hi=float(hi), with_res=int(res is not None))
        self.job.run(pool)
        return True


def channel_job(g: Any, epi: Any, depth: int, ranges: list[tuple[int, int]]) -> ChannelJob | None:
    """The native job of a group-1 float32 conv split into `ranges` of output channels whose
    epilogue is a clamp (omrt.kernels.conv.channel_blocks), or None."""
    if not NATIVE_BLAS_TASKS or g.group != 1 or g.itemsize != 4 or epi.clamp is None:
        return None
    built = job(g.m, depth, g.p_size, ranges)
    return None if built is None else ChannelJob(built, epi.clamp, g.m)
