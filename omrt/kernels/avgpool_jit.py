"""2x2 stride-2 average pooling without padding as one LLVM IR pass per plane: DenseNet's
transition layers.

Why its own kernel: the general compiled loop (omrt.kernels.window_jit.pool_planes) copies each
plane into a de-interleaved buffer and makes one pass per tap. Here each vector of outputs adds
its two input rows over the columns it reads (unit-stride loads, masked at the row's end), then
each pair of neighbouring columns, separated with even/odd vector shuffles, and scales by 1/4.
The four terms are added as (top-left + bottom-left) + (top-right + bottom-right): the same sum
as the taps in row order up to float rounding.
"""
from __future__ import annotations

import ctypes

import numpy as np

from omrt.kernels import llvm_jit, native_jobs


def _module_ir(vl: int) -> str:
    v, iv, mask = f"<{vl} x float>", f"<{vl} x i32>", f"<{vl} x i1>"
    evens = "<" + ", ".join(f"i32 {2 * i}" for i in range(vl)) + ">"
    odds = "<" + ", ".join(f"i32 {2 * i + 1}" for i in range(vl)) + ">"
    loads = []
    for half in (0, 1):
        loads += [f"  %c{half} = add {iv} %cols, {llvm_jit.lanes32(vl, half * vl)}",
                  f"  %in{half} = icmp slt {iv} %c{half}, %ws",
                  f"  %at{half} = add i64 %base, {half * vl}"]
        for r in (0, 1):
            loads += [f"  %p{r}{half} = getelementptr float, ptr %x{r}, i64 %at{half}",
                      f"  %l{r}{half} = call {v} @llvm.masked.load.v{vl}f32.p0(ptr %p{r}{half}, i32 4, "
                      f"{mask} %in{half}, {v} zeroinitializer)"]
        loads.append(f"  %s{half} = fadd {v} %l0{half}, %l1{half}")
    return f"""
{chr(10).join(llvm_jit.masked_declarations(vl))}

define void @avgpool2s2(ptr %x_all, ptr %y_all, i64 %planes, i64 %h, i64 %w, i64 %oh, i64 %ow) {{
{llvm_jit.pool_loops_head(vl, llvm_jit.splat("quarter", "0x3FD0000000000000", vl))}
  %r0 = mul i64 %i, 2
  %o0 = mul i64 %r0, %w
  %x0 = getelementptr float, ptr %x, i64 %o0
  %x1 = getelementptr float, ptr %x0, i64 %w
  %yo = mul i64 %i, %ow
  %yrow = getelementptr float, ptr %y, i64 %yo
  br label %across
across:
  %j = phi i64 [0, %out_row], [%j_next, %across]
  %base = mul i64 %j, 2
  %base32 = trunc i64 %base to i32
{chr(10).join(llvm_jit.splat("cols", "%base32", vl, "i32"))}
{chr(10).join(loads)}
  %left = shufflevector {v} %s0, {v} %s1, <{vl} x i32> {evens}
  %right = shufflevector {v} %s0, {v} %s1, <{vl} x i32> {odds}
  %sum = fadd {v} %left, %right
  %mean = fmul {v} %sum, %quarter
{llvm_jit.row_store_and_loops(vl, "%mean")}
"""


def _with_task(vl: int) -> str:
    """The kernel and a native job task over blocks of planes (native_jobs.NativeJob)."""
    return _module_ir(vl) + "\n" + native_jobs.plane_task_ir("avgpool2s2")


def _kernel():
    return llvm_jit.compile_module("avgpool_jit", _with_task,
                                   {"avgpool2s2": [ctypes.c_void_p] * 2 + [ctypes.c_int64] * 5,
                                    "task": native_jobs.TASK_ARGS})


def job(blocks: list[tuple[int, int]], h: int, w: int, oh: int, ow: int):
    """A native job pooling blocks of planes of x (P, h, w) into y (P, oh, ow) as avgpool2s2
    does; set its x and y (addresses) before each run."""
    return native_jobs.NativeJob(_kernel()["task"], native_jobs.plane_slots(), blocks, h=h, w=w, oh=oh, ow=ow)


def available() -> bool:
    return _kernel() is not None


def avgpool2s2(x: np.ndarray, y: np.ndarray) -> None:
    """y (P, OH, OW) = mean of each 2x2 stride-2 window of x (P, H, W), unpadded, with
    2*OH <= H and 2*OW <= W; both C-contiguous float32. Releases the GIL."""
    planes, h, w = x.shape
    oh, ow = y.shape[1:]
    assert x.dtype == y.dtype == np.float32 and x.flags.c_contiguous and y.flags.c_contiguous
    assert y.shape[0] == planes and 2 * oh <= h and 2 * ow <= w
    if planes and oh and ow:
        _kernel()["avgpool2s2"](x.ctypes.data, y.ctypes.data, planes, h, w, oh, ow)
