"""Constant padding of planes as one LLVM IR pass: the padded copies convs and pools read from.

Why its own kernel: numpy copies a padded image as one strided copy of the interior plus a fill
of each border slab, and pays per row of the interior: DenseNet's 128 channels of 14x14 took
13 us, as long as a fifth of the conv after it. Here each vector of an output row is one masked
load of the input row (lanes left of, right of, above or below the image take the fill) and one
store.
"""
from __future__ import annotations

import ctypes
import functools
import math
from typing import Callable

import numpy as np

from omrt.kernels import llvm_jit, native_jobs


def _pad_ir(vl: int, step: int) -> str:
    """`pad{step}`: y[p, i, j] = x[p, rows * i - top, step * j - left], or fill outside x."""
    v, iv, mask = f"<{vl} x float>", f"<{vl} x i32>", f"<{vl} x i1>"
    loads = []
    for half in range(step):
        loads += [f"  %cols{half} = add {iv} %cs, {llvm_jit.lanes32(vl, half * vl)}",
                  f"  %col_in{half} = icmp ult {iv} %cols{half}, %ws",
                  f"  %inside{half} = and {mask} %col_in{half}, %rows_in",
                  f"  %xp{half} = getelementptr float, ptr %xrow, i64 %x_at{half}",
                  f"  %part{half} = call {v} @llvm.masked.load.v{vl}f32.p0(ptr %xp{half}, i32 4, {mask} %inside{half}, "
                  f"{v} %fills)"]
    if step == 1:
        value = "%part0"
    else:
        evens = "<" + ", ".join(f"i32 {2 * t}" for t in range(vl)) + ">"
        loads.append(f"  %value = shufflevector {v} %part0, {v} %part1, <{vl} x i32> {evens}")
        value = "%value"
    return f"""
define void @pad{step}(ptr %x_all, ptr %y_all, i64 %planes, i64 %h, i64 %w, i64 %oh, i64 %ow, i64 %top,
                       i64 %left, i64 %rows, float %fill) {{
{llvm_jit.pool_loops_head(vl, llvm_jit.splat("fills", "%fill", vl))}
  %ri = mul i64 %i, %rows
  %r = sub i64 %ri, %top
  %row_in = icmp ult i64 %r, %h
{chr(10).join(llvm_jit.splat("rows_in", "%row_in", vl, "i1"))}
  %xo = mul i64 %r, %w
  %xo_left = sub i64 %xo, %left
  %xrow = getelementptr float, ptr %x, i64 %xo_left
  %yo = mul i64 %i, %ow
  %yrow = getelementptr float, ptr %y, i64 %yo
  %left32 = trunc i64 %left to i32
  br label %across
across:
  %j = phi i64 [0, %out_row], [%j_next, %across]
  %x_at0 = mul i64 %j, {step}
  %x_at1 = add i64 %x_at0, {vl}
  %jl = trunc i64 %x_at0 to i32
  %c0 = sub i32 %jl, %left32
{chr(10).join(llvm_jit.splat("cs", "%c0", vl, "i32"))}
{chr(10).join(loads)}
{llvm_jit.row_store_and_loops(vl, value)}
"""


# Slots of the phase-padding tasks (phase_pad_job): `phase` is the floats from one stride phase to
# the next, the blocks are of channels.
PHASE_SLOTS = ("x", "y", "h", "w", "oh", "ow", "top", "left", "phase", "blocks")


def _phases_task_ir(step: int) -> str:
    """`phases{step}`(args, i): channel block i of one image padded into its stride phases (one
    phase with step 1, the four of a 2x2 stride with step 2), as conv_common.pad_phases does."""
    body = ["  %plane_in = mul i64 %h, %w", "  %x_off = mul i64 %first, %plane_in",
            "  %xp = getelementptr float, ptr %x, i64 %x_off", "  %plane_out = mul i64 %oh, %ow",
            "  %y_off = mul i64 %first, %plane_out"]
    for k, (i, j) in enumerate([(0, 0)] if step == 1 else [(i, j) for i in range(2) for j in range(2)]):
        body += [f"  %phase{k} = mul i64 %phase, {k}", f"  %y_at{k} = add i64 %y_off, %phase{k}",
                 f"  %yp{k} = getelementptr float, ptr %y, i64 %y_at{k}",
                 f"  %top{k} = sub i64 %top, {i}", f"  %left{k} = sub i64 %left, {j}",
                 f"  call void @pad{step}(ptr %xp, ptr %yp{k}, i64 %count, i64 %h, i64 %w, i64 %oh, i64 %ow, "
                 f"i64 %top{k}, i64 %left{k}, i64 {step}, float 0.0)"]
    return native_jobs.task_ir("", PHASE_SLOTS, {"x", "y", "blocks"}, body=body, name=f"phases{step}")


def _module_ir(vl: int) -> str:
    return "\n".join([*llvm_jit.masked_declarations(vl), _pad_ir(vl, 1), _pad_ir(vl, 2), _phases_task_ir(1),
                      _phases_task_ir(2)])


_ARGS = [ctypes.c_void_p] * 2 + [ctypes.c_int64] * 8 + [ctypes.c_float]


def _kernel():
    return llvm_jit.compile_module("pad_jit", _module_ir, {
        "pad1": _ARGS, "pad2": _ARGS, "phases1": native_jobs.TASK_ARGS, "phases2": native_jobs.TASK_ARGS})


def phase_pad_job(x: np.ndarray, phases: np.ndarray, pb, strides, blocks) -> native_jobs.NativeJob | None:
    """Padding one image x (C, H, W) into its stride phases (C-contiguous, (sh, sw, C, hq, wq)) as
    a native job over `blocks` of channels, its x and y slots set to these arrays (set them again
    for others of the same shapes); None where the kernel does not take it (strides other than 1
    and 2x2, or arrays fits() refuses). The threads then pad without the GIL, where Python tasks
    hand it back and forth."""
    (sh, sw) = strides
    if (sh, sw) not in ((1, 1), (2, 2)) or not fits(x, phases[0, 0]):
        return None
    step, (h, w), (oh, ow) = sh, x.shape[-2:], phases.shape[-2:]
    return native_jobs.NativeJob(_kernel()[f"phases{step}"], PHASE_SLOTS, blocks, x=x.ctypes.data,
                                 y=phases.ctypes.data, h=h, w=w, oh=oh, ow=ow, top=int(pb[0]), left=int(pb[1]),
                                 phase=int(np.prod(phases.shape[2:])))


class SplitPad:
    """The phase_pad_job of a kernel that pads the same shapes on every run: made on the first run
    the kernel takes, rebound to the arrays of each later one."""

    def __init__(self, pb, strides, blocks) -> None:
        self._pb, self._strides, self._blocks = pb, tuple(strides), blocks
        self._job: native_jobs.NativeJob | None = None

    def job(self, x: np.ndarray, phases: np.ndarray) -> native_jobs.NativeJob | None:
        """The job padding x into phases (as phase_pad_job takes them), bound to both; None where
        the kernel does not take them (the caller pads another way)."""
        if self._strides not in ((1, 1), (2, 2)) or not fits(x, phases[0, 0]):
            return None
        if self._job is None:
            self._job = phase_pad_job(x, phases, self._pb, self._strides, self._blocks)
        else:
            self._job.set(x=x.ctypes.data, y=phases.ctypes.data)
        return self._job


def fits(x: np.ndarray, y: np.ndarray) -> bool:
    """Pads this kernel takes: float32 planes, both C-contiguous, where the kernel runs."""
    return (x.ndim >= 2 and x.ndim == y.ndim and x.dtype == y.dtype == np.float32 and x.flags.c_contiguous
            and y.flags.c_contiguous and x.shape[:-2] == y.shape[:-2] and _kernel() is not None)


def pad_planes(x: np.ndarray, y: np.ndarray, top: int, left: int, fill: float = 0.0, step: int = 1) -> None:
    """y[..., i, j] = x[..., step * i - top, step * j - left] where that is inside x, else fill
    (fits(x, y)); step 1 or 2 (one stride phase of a padded image per call). Releases the GIL."""
    bound_pad(x, y, top, left, fill, step)()


def bound_pad(x: np.ndarray, y: np.ndarray, top: int, left: int, fill: float = 0.0,
              step: int = 1) -> Callable[[], None]:
    """pad_planes(x, y, ...) as a call bound to the arrays' addresses, for a kernel that pads the
    same planned buffers on every run (fits(x, y); the caller keeps both arrays alive)."""
    h, w = x.shape[-2:]
    oh, ow = y.shape[-2:]
    planes = math.prod(y.shape[:-2])
    if not (planes and oh and ow):
        return _nothing
    return functools.partial(_kernel()[f"pad{step}"], x.ctypes.data, y.ctypes.data, planes, h, w, oh, ow, top, left,
                             step, fill)


def pad_address() -> int | None:
    """The entry address of the step-1 pad (pad_planes' arguments: x, y, planes, h, w, oh, ow, top,
    left, step, fill), for compiled callers (omrt.kernels.winograd_native); None where the kernel
    does not run."""
    kernel = _kernel()
    return None if kernel is None else native_jobs.address(kernel["pad1"])


def _nothing() -> None:
    pass
