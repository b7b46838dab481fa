"""3x3 stride-2 max pooling as one LLVM IR pass per plane: ResNet's, SqueezeNet's, Inception's and
ShuffleNet's max pools all have this window.

Why its own kernel: the general compiled loop (omrt.kernels.window_jit.pool_planes) copies each
plane into a padded, de-interleaved buffer and then makes one pass per tap, 37 us per MB. Here
each vector of outputs takes the maximum of its three input rows over the columns it reads
(unit-stride masked loads, -inf outside the row), then of each column's three neighbours, the
even and odd columns separated with vector shuffles, all in registers: no buffer, no padded copy.
NaN wins, as with numpy's maximum.

Rows outside the image are replaced by the nearest row inside (the maximum is unchanged), so the
windows must each reach one input row (every_window_reads_a_row); columns outside read -inf.
"""
from __future__ import annotations

import ctypes

import numpy as np

from omrt.kernels import llvm_jit, native_jobs


def _clamp_ir(out: str, value: str, lo: str, hi: str) -> list[str]:
    """%out = value clamped to [lo, hi] (signed i64)."""
    return [f"  %{out}_under = icmp slt i64 {value}, {lo}",
            f"  %{out}_a = select i1 %{out}_under, i64 {lo}, i64 {value}",
            f"  %{out}_over = icmp sgt i64 %{out}_a, {hi}", f"  %{out} = select i1 %{out}_over, i64 {hi}, i64 %{out}_a"]


def _max_ir(vl: int, out: str, a: str, b: str) -> list[str]:
    """%out = max(a, b), NaN from either: b where b > a or b is NaN, else a (a NaN stays). Two
    compares and a select, where llvm.maximum (which also orders -0 below +0) expands to twice as
    many instructions on x86."""
    v, mask = f"<{vl} x float>", f"<{vl} x i1>"
    return [f"  %{out}_gt = fcmp ogt {v} {b}, {a}", f"  %{out}_nan = fcmp uno {v} {b}, {b}",
            f"  %{out}_take = or {mask} %{out}_gt, %{out}_nan",
            f"  %{out} = select {mask} %{out}_take, {v} {b}, {v} {a}"]


def _load_ir(vl: int, name: str, offset: int, masked: bool) -> list[str]:
    """%name: the maximum of the three rows' columns base + offset .. + vl, -inf outside the row
    where `masked` (plain loads where the caller knows every column is inside)."""
    v, iv, mask = f"<{vl} x float>", f"<{vl} x i32>", f"<{vl} x i1>"
    out = [f"  %{name}_o = add i64 %base, {offset}"]
    if masked:
        out += [f"  %{name}_c = add {iv} %cols, {llvm_jit.lanes32(vl, offset)}",
                f"  %{name}_lo = icmp sge {iv} %{name}_c, zeroinitializer",
                f"  %{name}_hi = icmp slt {iv} %{name}_c, %ws",
                f"  %{name}_in = and {mask} %{name}_lo, %{name}_hi"]
    for r in range(3):
        out.append(f"  %{name}_p{r} = getelementptr float, ptr %x{r}, i64 %{name}_o")
        if masked:
            out.append(f"  %{name}_{r} = call {v} @llvm.masked.load.v{vl}f32.p0(ptr %{name}_p{r}, i32 4, "
                       f"{mask} %{name}_in, {v} %ninf)")
        else:
            out.append(f"  %{name}_{r} = load {v}, ptr %{name}_p{r}, align 4")
    return (out + _max_ir(vl, f"{name}_01", f"%{name}_0", f"%{name}_1")
            + _max_ir(vl, name, f"%{name}_01", f"%{name}_2"))


def _module_ir(vl: int) -> str:
    """Per output vector j: A, B, C, the row maxima of columns base + [0, vl), [vl, 2vl), [2vl, 3vl)
    (base = 2j - pad_left). C is the next vector's A, so it is carried and each vector loads two
    blocks; the first vector of a row, and any whose B leaves the row, load all three masked."""
    v = f"<{vl} x float>"
    evens = "<" + ", ".join(f"i32 {2 * i}" for i in range(vl)) + ">"
    odds = "<" + ", ".join(f"i32 {2 * i + 1}" for i in range(vl)) + ">"
    shifted = "<" + ", ".join(f"i32 {i + 1}" for i in range(vl)) + ">"

    def blocks(tag: str, names: tuple[tuple[str, int, bool], ...]) -> str:
        lines = []
        for name, offset, masked in names:
            lines += _load_ir(vl, name, offset, masked)
        text = "\n".join(lines)
        for shared in ("x0", "x1", "x2", "base", "cols", "ws", "ninf"):
            text = text.replace(f"%{shared}", f"%@{shared}")
        return text.replace("%", f"%{tag}_").replace(f"%{tag}_@", "%")

    fast = blocks("f", (("b", vl, False), ("c", 2 * vl, True)))
    edge = blocks("e", (("a", 0, True), ("b", vl, True), ("c", 2 * vl, True)))
    horizontal = "\n".join(
        [f"  %left = shufflevector {v} %a, {v} %b, <{vl} x i32> {evens}",
         f"  %mid = shufflevector {v} %a, {v} %b, <{vl} x i32> {odds}",
         f"  %right = shufflevector {v} %left, {v} %c, <{vl} x i32> {shifted}"]
        + _max_ir(vl, "h01", "%left", "%mid") + _max_ir(vl, "hm", "%h01", "%right"))
    # The two input rows the next output row adds, fetched ahead from memory (large batches stream
    # from DRAM, where three row streams and masked loads left the hardware prefetcher behind).
    prefetch = []
    for ahead in (1, 2):
        for half in (0, 1):
            name = f"pf{ahead}_{half}"
            prefetch += [f"  %{name}_r = mul i64 %w, {ahead}",
                         f"  %{name}_o = add i64 %{name}_r, %base",
                         f"  %{name}_q = add i64 %{name}_o, {half * 2 * vl}",
                         f"  %{name}_p = getelementptr float, ptr %x2, i64 %{name}_q",
                         f"  call void @llvm.prefetch.p0(ptr %{name}_p, i32 0, i32 3, i32 1)"]
    prefetch = "\n".join(prefetch)
    rows = "\n".join(_clamp_ir("r0", "%r0s", "0", "%hm1") + _clamp_ir("r2", "%r2s", "0", "%hm1")
                      + _clamp_ir("r1", "%r1s", "%r0", "%r2"))
    return f"""
declare void @llvm.prefetch.p0(ptr, i32, i32, i32)
{chr(10).join(llvm_jit.masked_declarations(vl))}

define void @maxpool3s2(ptr %x_all, ptr %y_all, i64 %planes, i64 %h, i64 %w, i64 %oh, i64 %ow, i64 %pt, i64 %pl) {{
{llvm_jit.pool_loops_head(vl, ["  %hm1 = sub i64 %h, 1"] + llvm_jit.splat("ninf", "0xFFF0000000000000", vl))}
  %top = mul i64 %i, 2
  %r0s = sub i64 %top, %pt
  %r2s = add i64 %r0s, 2
  %r1s = add i64 %r0s, 1
{rows}
  %o0 = mul i64 %r0, %w
  %o1 = mul i64 %r1, %w
  %o2 = mul i64 %r2, %w
  %x0 = getelementptr float, ptr %x, i64 %o0
  %x1 = getelementptr float, ptr %x, i64 %o1
  %x2 = getelementptr float, ptr %x, i64 %o2
  %yrow_o = mul i64 %i, %ow
  %yrow = getelementptr float, ptr %y, i64 %yrow_o
  br label %across
across:
  %j = phi i64 [0, %out_row], [%j_next, %store]
  %carried = phi {v} [%ninf, %out_row], [%c, %store]
  %twice = mul i64 %j, 2
  %base = sub i64 %twice, %pl
  %base32 = trunc i64 %base to i32
{chr(10).join(llvm_jit.splat("cols", "%base32", vl, "i32"))}
{prefetch}
  %later = icmp ugt i64 %j, 0
  %end = add i64 %base, {2 * vl}
  %b_inside = icmp sle i64 %end, %w
  %interior = and i1 %later, %b_inside
  br i1 %interior, label %fast, label %edge
fast:
{fast}
  br label %store
edge:
{edge}
  br label %store
store:
  %a = phi {v} [%carried, %fast], [%e_a, %edge]
  %b = phi {v} [%f_b, %fast], [%e_b, %edge]
  %c = phi {v} [%f_c, %fast], [%e_c, %edge]
{horizontal}
{llvm_jit.row_store_and_loops(vl, "%hm")}
"""


_PADS = ("top", "left")


def _with_task(vl: int) -> str:
    """The kernel and a native job task over blocks of planes (native_jobs.NativeJob)."""
    return _module_ir(vl) + "\n" + native_jobs.plane_task_ir("maxpool3s2", _PADS)


def _kernel():
    return llvm_jit.compile_module("maxpool_jit", _with_task,
                                   {"maxpool3s2": [ctypes.c_void_p] * 2 + [ctypes.c_int64] * 7,
                                    "task": native_jobs.TASK_ARGS})


def job(blocks: list[tuple[int, int]], h: int, w: int, oh: int, ow: int, pad_top: int, pad_left: int):
    """A native job pooling blocks of planes of x (P, h, w) into y (P, oh, ow) as maxpool3s2
    does; set its x and y (addresses) before each run."""
    return native_jobs.NativeJob(_kernel()["task"], native_jobs.plane_slots(_PADS), blocks, h=h, w=w, oh=oh, ow=ow,
                                 top=pad_top, left=pad_left)


def available() -> bool:
    return _kernel() is not None


def every_window_reads_a_row(height: int, out_height: int, pad_top: int) -> bool:
    """Whether each output row's window [2i - pad_top, 2i - pad_top + 2] meets the input rows."""
    return pad_top <= 2 and 2 * (out_height - 1) - pad_top <= height - 1


def maxpool3s2(x: np.ndarray, y: np.ndarray, pad_top: int, pad_left: int) -> None:
    """y (P, OH, OW) = 3x3 stride-2 max pool of x (P, H, W), both C-contiguous float32, padded by
    pad_top rows and pad_left columns (-inf), the rest of the window by y's size. Releases the GIL."""
    planes, h, w = x.shape
    oh, ow = y.shape[1:]
    assert x.dtype == y.dtype == np.float32 and x.flags.c_contiguous and y.flags.c_contiguous
    assert y.shape[0] == planes and every_window_reads_a_row(h, oh, pad_top)
    if planes and oh and ow:
        _kernel()["maxpool3s2"](x.ctypes.data, y.ctypes.data, planes, h, w, oh, ow, pad_top, pad_left)
