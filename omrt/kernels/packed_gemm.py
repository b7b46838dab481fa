"""Y = W @ X + bias with W packed ahead of time: omrt's own GEMM micro-kernel, compiled by LLVM.

Why not numpy's BLAS for every conv: BLAS packs W on each call. A conv's weights are used once per
call against few columns (49 pixels on a 7x7 map), so the packing costs about as much as the
multiply, and the weights arrive from memory as many strided rows. Here W is packed once, when
the model is compiled (the Conv prepack hook stores it so in the weights), into panels of
PANEL_ROWS output rows, each panel's K x rows block contiguous, and the loop streams it in order
with software prefetch. Measured on one Zen 5 thread against OpenBLAS 0.3.31 (AVX-512 kernels),
hot caches / caches flushed before each call (benchmarks/bench_packed_gemm.py):
512x4608 @ 4608x49 1.31 / 1.68 ms -> 1.06 / 1.19, 2048x512 @ 512x49 0.57 / 0.78 -> 0.53 / 0.66,
256x2304 @ 2304x196 1.03 / 1.22 -> 0.97 / 1.21.

The micro-kernel holds a panel's rows as vectors (two with AVX-512) x a group of columns of X
(six), broadcast one element at a time, in registers. K runs in chunks of K_CHUNK so a chunk of
the panel stays in L1 across a row of column groups; partial sums between chunks go to a
per-call accumulator buffer (accumulator_floats), and the last chunk stores through a masked
scatter into Y's rows, or, for a caller that takes Y transposed, with plain vector stores; the
bias starts the sums. `gemm_gather` is the same loop with X read through offset tables
(Gather): element (k, j) at koff[k] + coff[j], so a conv's columns come straight from its padded
image. It is LLVM IR compiled for the host (omrt.kernels.llvm_jit); where that
cannot run, `available()` is false and callers keep numpy's matmul on unpacked weights.
"""
from __future__ import annotations

import ctypes
import hashlib
import threading
import weakref
from dataclasses import dataclass, field

import numpy as np

from omrt.kernels import llvm_jit, native_jobs

# Output rows per packed panel: fixed, so weights packed when a model is compiled run on any
# host (two 16-float vectors with AVX-512, four 8-float ones with AVX2).
PANEL_ROWS = 32
COLUMN_GROUP = 6         # columns per group with AVX-512 (12 accumulators); AVX2 takes 2 (8 of 16 registers)
K_CHUNK = 128
# The weights are prefetched into L2 (prefetcht1) one K chunk ahead: the chunk read next, which
# then has a whole chunk's column groups to arrive from memory, and stays out of L1 until it is
# read. Was 4 KB ahead into L1, so the chunk's first column group waited on the rest. One Zen 4
# thread, weights from memory (shapes interleaved in one process): 2048x512 by 49 columns 1.31 ->
# 1.19 ms, 512x2048 by 49 1.26 -> 1.11, 512x4608 by 49 2.64 -> 2.45, 1024x256 by 196 1.20 ->
# 1.17; Winograd's 36 products of 512x512 by 16 tiles 4.10 -> 3.07, 256x256 by 16 1.03 -> 0.82,
# 128x128 by 49 0.79 -> 0.68. ResNet-50 at batch 1 on two threads, its packed convs
# alone (benchmarks/ab_models.py) 41.48 / 41.68 -> 41.06 / 40.73 ms; with Winograd's products,
# against onnxruntime (bench_models.py, runs alternated): 1.032 / 1.048 -> 0.998 / 0.994,
# DenseNet-121 0.910 / 0.895 -> 0.886 / 0.886, Inception-v1 0.719 / 0.698 -> 0.679 / 0.691.
# Past the last panel of a thread's range, the chunk read next is the first panel's of the next
# matrix, not the memory that follows (another thread's panels): half the panels of Winograd's
# 36 products, one thread, weights from memory, 256x256 by 16 tiles 0.52-0.54 -> 0.49-0.50 ms,
# 512x512 by 16 1.75-1.80 -> 1.64-1.73, 128x128 by 49 0.42-0.45 -> 0.39-0.41.


def _column_group(vl: int) -> int:
    return COLUMN_GROUP if vl == 16 else 2


def _group_ir(vl: int, nb: int, gather: bool = False) -> str:
    """One column group of nb columns over one K chunk of one panel, as an LLVM function. With
    `gather`, X is not a matrix: the element (k, column j) lies at x + koff[k] + coff[j]."""
    v = f"<{vl} x float>"
    iv = f"<{vl} x i64>"
    pw = PANEL_ROWS
    vectors = PANEL_ROWS // vl
    name, tables = (f"ggroup{nb}", ", ptr %koff, ptr %coff, ptr %ycoff") if gather else (f"group{nb}", "")
    out = [f"define internal void @{name}(ptr %wp, ptr %pf, ptr %x, ptr %y, ptr %bias, ptr %acc, i64 %k_n, "
           f"i64 %ldx, i64 %ldy, i64 %row0, i64 %m, i64 %col0, i1 %first, i1 %last, i1 %trans, ptr %res, "
           f"float %lo, float %hi, i64 %variant{tables}) alwaysinline {{", "entry:"]
    if gather:
        for j in range(nb):
            out += [f"  %cq{j} = getelementptr i64, ptr %coff, i64 {j}", f"  %co{j} = load i64, ptr %cq{j}, align 8",
                    f"  %xc{j} = getelementptr float, ptr %x, i64 %co{j}"]
    out += ["  br i1 %first, label %from_bias, label %from_acc", "from_bias:"]
    for p in range(vectors):
        out += [f"  %bp{p} = getelementptr float, ptr %bias, i64 {p * vl}", f"  %b{p} = load {v}, ptr %bp{p}, align 4"]
    out += ["  br label %start", "from_acc:"]
    for j in range(nb):
        for p in range(vectors):
            out += [f"  %ap{j}_{p} = getelementptr float, ptr %acc, i64 {j * pw + p * vl}",
                    f"  %al{j}_{p} = load {v}, ptr %ap{j}_{p}, align 4"]
    out += ["  br label %start", "start:"]
    for j in range(nb):
        for p in range(vectors):
            out.append(f"  %s{j}_{p} = phi {v} [%b{p}, %from_bias], [%al{j}_{p}, %from_acc]")
    out += llvm_jit.reduction_loop(vl, nb, vectors, lambda j, p: f"%s{j}_{p}", "start")
    out.append(f"  %wo = mul i64 %k, {pw}")
    for line in range(pw * 4 // 64):
        out += [f"  %pfo{line} = add i64 %wo, {line * 16}",
                f"  %pfp{line} = getelementptr float, ptr %pf, i64 %pfo{line}",
                f"  call void @llvm.prefetch.p0(ptr %pfp{line}, i32 0, i32 2, i32 1)"]
    for p in range(vectors):
        out += [f"  %wo{p} = add i64 %wo, {p * vl}", f"  %wq{p} = getelementptr float, ptr %wp, i64 %wo{p}",
                f"  %w{p} = load {v}, ptr %wq{p}, align 4"]
    w_vectors = [f"%w{p}" for p in range(vectors)]
    if gather:
        out += ["  %kq = getelementptr i64, ptr %koff, i64 %k", "  %ko = load i64, ptr %kq, align 8"]
        out += [f"  %xg{j} = getelementptr float, ptr %xc{j}, i64 %ko" for j in range(nb)]
        out += llvm_jit.broadcast_fmas_at(vl, [f"%xg{j}" for j in range(nb)], w_vectors, "x")
    else:
        out.append("  %xo = mul i64 %k, %ldx")
        out += llvm_jit.broadcast_fmas(vl, "%x", "%xo", nb, w_vectors, "x")
    out += [llvm_jit.next_iteration("k", 1, "%k_n", "loop", "done"),
            "done:", "  br i1 %last, label %to_y, label %to_acc", "to_acc:"]
    for j in range(nb):
        for p in range(vectors):
            out += [f"  %tp{j}_{p} = getelementptr float, ptr %acc, i64 {j * pw + p * vl}",
                    f"  store {v} %n{j}_{p}, ptr %tp{j}_{p}, align 4"]
    out += ["  ret void", "to_y:"]
    out += llvm_jit.splat("r0", "%row0", vl, "i64") + llvm_jit.splat("ms", "%m", vl, "i64")
    out += llvm_jit.splat("ls", "%ldy", vl, "i64")
    for p in range(vectors):
        out += [f"  %rows{p} = add {iv} %r0, {llvm_jit.lanes(vl, p * vl)}",
                f"  %ok{p} = icmp slt {iv} %rows{p}, %ms",
                f"  %ro{p} = mul {iv} %rows{p}, %ls"]
    out += ["  br i1 %trans, label %to_t, label %to_s", "to_t:"]
    for j in range(nb):
        out += [f"  %tc{j} = add i64 %col0, {j}", f"  %tr{j} = mul i64 %tc{j}, %ldy",
                f"  %tb{j} = add i64 %tr{j}, %row0"]
        for p in range(vectors):
            out += [f"  %to{j}_{p} = add i64 %tb{j}, {p * vl}",
                    f"  %tq{j}_{p} = getelementptr float, ptr %y, i64 %to{j}_{p}",
                    f"  call void @llvm.masked.store.v{vl}f32.p0({v} %n{j}_{p}, ptr %tq{j}_{p}, i32 4, "
                    f"<{vl} x i1> %ok{p})"]
    out += ["  ret void", "to_s:"]
    for j in range(nb):
        if gather:
            out += [f"  %ycq{j} = getelementptr i64, ptr %ycoff, i64 {j}", f"  %c{j} = load i64, ptr %ycq{j}, align 8"]
        else:
            out.append(f"  %c{j} = add i64 %col0, {j}")
        out += llvm_jit.splat(f"cs{j}", f"%c{j}", vl, "i64")
        for p in range(vectors):
            out.append(f"  %yi{j}_{p} = add {iv} %ro{p}, %cs{j}")
    out += llvm_jit.splat("lov", "%lo", vl) + llvm_jit.splat("hiv", "%hi", vl)
    out.append("  switch i64 %variant, label %s00 [i64 1, label %s01 i64 2, label %s10 i64 3, label %s11]")
    for with_res in (0, 1):
        for clamped in (0, 1):
            out.append(f"s{with_res}{clamped}:")
            for j in range(nb):
                for p in range(vectors):
                    t = f"{with_res}{clamped}_{j}_{p}"
                    out.append(f"  %yq{t} = getelementptr float, ptr %y, {iv} %yi{j}_{p}")
                    value = f"%n{j}_{p}"
                    if with_res:
                        out += [f"  %rq{t} = getelementptr float, ptr %res, {iv} %yi{j}_{p}",
                                f"  %rv{t} = call {v} @llvm.masked.gather.v{vl}f32.v{vl}p0(<{vl} x ptr> %rq{t}, i32 4, "
                                f"<{vl} x i1> %ok{p}, {v} zeroinitializer)", f"  %sum{t} = fadd {v} {value}, %rv{t}"]
                        value = f"%sum{t}"
                    if clamped:
                        lines, value = llvm_jit.clamp(vl, value, "%lov", "%hiv", t)
                        out += lines
                    out.append(f"  call void @llvm.masked.scatter.v{vl}f32.v{vl}p0({v} {value}, <{vl} x ptr> %yq{t}, "
                               f"i32 4, <{vl} x i1> %ok{p})")
            out.append("  ret void")
    out.append("}")
    return "\n".join(out)


def _module_ir(vl: int) -> str:
    """The whole module: column groups of 1.._column_group columns, and `gemm` looping over panels,
    K chunks and column groups; the same with X gathered through offset tables (`gemm_gather`)."""
    v = f"<{vl} x float>"
    group = _column_group(vl)
    parts = [f"declare {v} @llvm.fma.v{vl}f32({v}, {v}, {v})",
             "declare void @llvm.prefetch.p0(ptr, i32, i32, i32)",
             f"declare void @llvm.masked.scatter.v{vl}f32.v{vl}p0({v}, <{vl} x ptr>, i32, <{vl} x i1>)",
             f"declare {v} @llvm.masked.gather.v{vl}f32.v{vl}p0(<{vl} x ptr>, i32, <{vl} x i1>, {v})",
             f"declare void @llvm.masked.store.v{vl}f32.p0({v}, ptr, i32, <{vl} x i1>)"]
    parts += [_group_ir(vl, nb, gather) for gather in (False, True) for nb in range(1, group + 1)]
    parts += [_gemm_ir(group, False), _gemm_ir(group, True)]
    return "\n\n".join(parts)


def _gemm_ir(group: int, gather: bool) -> str:
    """`gemm` (X a matrix of row stride ldx) or `gemm_gather` (X at x + koff[k] + coff[column],
    the two tables its last arguments): W's panels p0:p1 times X into Y, for each matrix of the
    batch."""
    pw = PANEL_ROWS
    if gather:
        name, tables, callee = "gemm_gather", ", ptr %koff_all, ptr %coff_all, ptr %ycoff_all", "ggroup"
        chunk_x = "  %xk = getelementptr i64, ptr %koff_all, i64 %kb"
        x_arg, table_args = "ptr %x", ", ptr %xk, ptr %xc, ptr %yc"
        column = "getelementptr i64, ptr %coff_all, i64 %c0"
        y_columns = ("\n  %yc = getelementptr i64, ptr %ycoff_all, i64 %c0",
                     "\n  %yt = getelementptr i64, ptr %ycoff_all, i64 %c0")
    else:
        name, tables, callee = "gemm", "", "group"
        chunk_x = "  %xo = mul i64 %kb, %ldx\n  %xk = getelementptr float, ptr %x, i64 %xo"
        x_arg, table_args = "ptr %xc", ""
        column = "getelementptr float, ptr %xk, i64 %c0"
        y_columns = ("", "")   # plain groups store at col0 + j
    args = (f"ptr %wq, ptr %pf, {x_arg}, ptr %y, ptr %bq, ptr %ac, i64 %kl, i64 %ldx, i64 %ldy, i64 %row0, i64 %m, "
            "i64 %c0")
    epilogue = f"ptr %res, float %lo, float %hi, i64 %variant{table_args}"
    tail_cases = " ".join(f"i64 {r}, label %tail{r}" for r in range(1, group))
    tail_args = args.replace("ptr %xc", "ptr %xt").replace("ptr %ac", "ptr %at")
    tails = "\n".join(
        f"tail{r}:\n  call void @{callee}{r}({tail_args}, i1 %first, i1 %last, i1 %trans, "
        f"{epilogue.replace('ptr %xc', 'ptr %xt').replace('ptr %yc', 'ptr %yt')})\n  br label %chunk_done"
        for r in range(1, group))
    strided = "\n".join(llvm_jit.strided_pointers("%b", [("wp", "%w_all", "%w_step"), ("x", "%x_all", "%x_step"),
                                                       ("y", "%y_all", "%y_step"), ("res", "%res_all", "%y_step")]))
    return f"""define void @{name}(ptr %w_all, ptr %x_all, ptr %y_all, ptr %bias, ptr %acc, i64 %p0, i64 %p1,
                  i64 %m, i64 %k, i64 %n, i64 %ldx, i64 %ldy, i64 %trans_flag, i64 %batch, i64 %w_step, i64 %x_step,
                  i64 %y_step, ptr %res_all, float %lo, float %hi, i64 %variant{tables}) {{
entry:
  %trans = icmp ne i64 %trans_flag, 0
  br label %item
item:
  %b = phi i64 [0, %entry], [%b_next, %panel_done_all]
{strided}
  br label %panel
panel:
  %p = phi i64 [%p0, %item], [%p_next, %panel_done]
  %row0 = mul i64 %p, {pw}
  %bq = getelementptr float, ptr %bias, i64 %row0
  %pk = mul i64 %p, %k
  br label %chunk
chunk:
  %kb = phi i64 [0, %panel], [%kb_next, %chunk_done]
  %left = sub i64 %k, %kb
  %short = icmp ult i64 %left, {K_CHUNK}
  %kl = select i1 %short, i64 %left, i64 {K_CHUNK}
  %kb_next = add i64 %kb, %kl
  %first = icmp eq i64 %kb, 0
  %last = icmp uge i64 %kb_next, %k
{chunk_x}
  %pkb = add i64 %pk, %kb
  %wo = mul i64 %pkb, {pw}
  %wq = getelementptr float, ptr %wp, i64 %wo
  ; the chunk read next: the one after this (this panel's next, or the next panel's first), or
  ; past the last panel of the range, the first panel's first chunk of the next matrix
  %klw = mul i64 %kl, {pw}
  %pf_on = getelementptr float, ptr %wq, i64 %klw
  %p_after = add i64 %p, 1
  %range_end = icmp uge i64 %p_after, %p1
  %wrap = and i1 %last, %range_end
  %p0k = mul i64 %p0, %k
  %p0w = mul i64 %p0k, {pw}
  %next_item = add i64 %w_step, %p0w
  %pf_wrap = getelementptr float, ptr %wp, i64 %next_item
  %pf = select i1 %wrap, ptr %pf_wrap, ptr %pf_on
  br label %cols
cols:
  %c0 = phi i64 [0, %chunk], [%c_next, %full]
  %c_next = add i64 %c0, {group}
  %fits = icmp ule i64 %c_next, %n
  br i1 %fits, label %full, label %tail
full:
  %xc = {column}{y_columns[0]}
  %ao = mul i64 %c0, {pw}
  %ac = getelementptr float, ptr %acc, i64 %ao
  call void @{callee}{group}({args}, i1 %first, i1 %last, i1 %trans, {epilogue})
  br label %cols
tail:
  %r = sub i64 %n, %c0
  %xt = {column}{y_columns[1]}
  %ato = mul i64 %c0, {pw}
  %at = getelementptr float, ptr %acc, i64 %ato
  switch i64 %r, label %chunk_done [{tail_cases}]
{tails}
chunk_done:
  %more_k = icmp ult i64 %kb_next, %k
  br i1 %more_k, label %chunk, label %panel_done
panel_done:
{llvm_jit.next_iteration("p", 1, "%p1", "panel", "panel_done_all")}
panel_done_all:
{llvm_jit.next_iteration("b", 1, "%batch", "item", "out")}
out:
  ret void
}}"""


_ARGS = ([ctypes.c_void_p] * 5 + [ctypes.c_int64] * 12
         + [ctypes.c_void_p, ctypes.c_float, ctypes.c_float, ctypes.c_int64])  # res, lo, hi, variant


# `task`'s argument slots (native_jobs.NativeJob): task i multiplies panels blocks[i] of one
# matrix, with its own partial sums at acc + i * acc_floats; `task_gather`'s also the offset tables.
SLOTS = ("w", "x", "y", "bias", "acc", "acc_floats", "m", "k", "n", "ldx", "ldy", "res", "lo", "hi", "variant",
         "blocks")
GATHER_SLOTS = SLOTS[:-1] + ("koff", "coff", "ycoff", "blocks")


def _task_ir(gather: bool) -> str:
    name, tables, slots = (("gemm_gather", ", ptr %koff, ptr %coff, ptr %ycoff", GATHER_SLOTS) if gather
                           else ("gemm", "", SLOTS))
    return native_jobs.task_ir(
        f"@{name}(ptr %w, ptr %x, ptr %y, ptr %bias, ptr %acc_i, i64 %first, i64 %last, i64 %m, i64 %k, i64 %n, "
        f"i64 %ldx, i64 %ldy, i64 0, i64 1, i64 0, i64 0, i64 0, ptr %res, float %lo, float %hi, i64 %variant{tables})",
        slots, {"w", "x", "y", "bias", "acc", "res", "koff", "coff", "ycoff", "blocks"}, {"lo", "hi"},
        ["  %acc_off = mul i64 %i, %acc_floats", "  %acc_i = getelementptr float, ptr %acc, i64 %acc_off"],
        name="task_gather" if gather else "task")


def _with_task(vl: int) -> str:
    return "\n\n".join([_module_ir(vl), _task_ir(False), _task_ir(True)])


def _kernel():
    return llvm_jit.compile_module("packed_gemm", _with_task, {
        "gemm": _ARGS, "gemm_gather": _ARGS + [ctypes.c_void_p] * 3,
        "task": native_jobs.TASK_ARGS, "task_gather": native_jobs.TASK_ARGS})


@dataclass(frozen=True)
class Gather:
    """X read where it lies instead of from a matrix: element (k, j) at koff[k] + coff[j] floats
    from the start of the array passed as x (for a conv: the input channel, tap and pixel of
    reduction row k and output column j). Output column j goes to ycoff[j] floats past its row's
    start (default j: Y a matrix; several images' columns in one product: each image's own place).
    Offsets int64, read-only."""

    koff: np.ndarray
    coff: np.ndarray
    ycoff: np.ndarray | None = None

    addresses: tuple[int, int, int] = field(init=False)

    def __post_init__(self) -> None:
        if self.ycoff is None:
            object.__setattr__(self, "ycoff", np.arange(self.coff.size, dtype=np.int64))
        for table in (self.koff, self.coff, self.ycoff):
            assert table.dtype == np.int64 and table.ndim == 1 and table.flags.c_contiguous
            table.flags.writeable = False
        assert self.ycoff.size == self.coff.size
        object.__setattr__(self, "addresses", (self.koff.ctypes.data, self.coff.ctypes.data, self.ycoff.ctypes.data))

    @property
    def reach(self) -> int:
        """Floats past x's start the furthest element lies at, plus one: x must hold that many."""
        return int(self.koff.max(initial=0) + self.coff.max(initial=0)) + 1


def job(w: PackedWeights, n: int, blocks: list[tuple[int, int]], gather: Gather | None = None) -> native_jobs.NativeJob:
    """A native job multiplying blocks of panels of w by n columns, one block per task, each with
    its own partial-sum buffer (held by the job); set x, y, ldx, ldy, res, lo, hi and variant (as
    multiply would pass them) before each run. With `gather`, X is read through its tables (x:
    the array they index; ldx unused)."""
    floats = accumulator_floats(n)
    acc = np.empty(max(1, len(blocks)) * floats, np.float32)
    panels_at, bias_at = w.addresses
    keep: tuple[np.ndarray, ...] = (w.panels, w.bias, acc)
    tables = {}
    if gather is not None:
        assert gather.koff.size == w.k and gather.coff.size == n
        keep += (gather.koff, gather.coff, gather.ycoff)
        tables = dict(zip(("koff", "coff", "ycoff"), gather.addresses))
    task, slots = (_kernel()["task_gather"], GATHER_SLOTS) if gather is not None else (_kernel()["task"], SLOTS)
    return native_jobs.NativeJob(task, slots, blocks, keep, w=panels_at, bias=bias_at,
                                 acc=acc.ctypes.data, acc_floats=floats, m=w.m, k=w.k, n=n, ldx=0, **tables)


def available() -> bool:
    """Whether packed GEMMs run here (llvm_jit.compile_module)."""
    return _kernel() is not None


def gemm_address() -> int:
    """The entry address of `gemm` (its arguments as multiply passes them), for compiled callers
    (omrt.kernels.winograd_native); available() first."""
    return native_jobs.address(_kernel()["gemm"])


@dataclass(frozen=True)
class PackedWeights:
    """W (batch, m, k) as (batch, panels, k, PANEL_ROWS) (pack_panels); bias (panels * PANEL_ROWS,)
    zero where absent, the same for every matrix."""

    panels: np.ndarray
    bias: np.ndarray
    m: int
    k: int

    addresses: tuple[int, int] = field(init=False)

    def __post_init__(self) -> None:
        # taken once: ndarray.ctypes costs about 0.8 us a call, and multiply runs once per task
        object.__setattr__(self, "addresses", (self.panels.ctypes.data, self.bias.ctypes.data))

    @property
    def count(self) -> int:
        return self.panels.shape[1]


_shared: "weakref.WeakValueDictionary[tuple, np.ndarray]" = weakref.WeakValueDictionary()
_shared_lock = threading.Lock()


def pack_panels(w: np.ndarray, rows: int = PANEL_ROWS) -> np.ndarray:
    """W (m, k), or a batch of them (b, m, k), as (b, panels, k, rows) float32, each panel's rows
    of every k contiguous and zero rows past m: the layout a compiled model stores (with
    PANEL_ROWS), and the one omrt.kernels.phase_conv regroups its weights into (with its own)."""
    batch = w.reshape((-1,) + w.shape[-2:])
    b_n, m, k = batch.shape
    _, count, _, _ = panels_shape(b_n, m, k, rows)
    padded = np.zeros((b_n, count * rows, k), np.float32)
    padded[:, :m] = batch
    return np.ascontiguousarray(padded.reshape(b_n, count, rows, k).transpose(0, 1, 3, 2))


def shared_panels(w: np.ndarray, rows: int = PANEL_ROWS) -> np.ndarray:
    """pack_panels(w, rows) as one read-only copy for every kernel that packs the same weights at
    build time: each lane of a plan in batch lanes builds its own kernels, and each session that
    shares a model's weight memory. DenseNet-121 at batch 8 (eight lanes) took 179 MB to load
    with a copy per lane, 145 MB with one (SqueezeNet 64 -> 59); run times equal. Keyed by the
    weights' contents (never their address, which another model may reuse), kept while a kernel
    holds it."""
    w = np.ascontiguousarray(w, np.float32)
    key = (w.shape, rows, hashlib.blake2b(w, digest_size=16).digest())
    with _shared_lock:
        packed = _shared.get(key)
        if packed is None:
            packed = pack_panels(w, rows)
            packed.flags.writeable = False
            _shared[key] = packed
    return packed


def panels_shape(batch: int, m: int, k: int, rows: int = PANEL_ROWS) -> tuple[int, int, int, int]:
    """The shape pack_panels gives a batch of (m, k) matrices."""
    return (batch, -(-m // rows), k, rows)


def panel_bias(bias: np.ndarray | None, m: int, count: int, rows: int = PANEL_ROWS) -> np.ndarray:
    """A bias (m,), or none, as float32 over `count` panels of `rows`, zero past m (read-only)."""
    b = np.zeros(count * rows, np.float32)
    if bias is not None:
        b[:m] = bias.reshape(m)
    b.flags.writeable = False
    return b


def unpack_panels(panels: np.ndarray, m: int) -> np.ndarray:
    """pack_panels undone: (b, m, k), for hosts where the kernel does not run."""
    b_n, count, k, rows = panels.shape
    return np.ascontiguousarray(panels.transpose(0, 1, 3, 2).reshape(b_n, count * rows, k)[:, :m])


def packed(panels: np.ndarray, m: int, bias: np.ndarray | None = None) -> PackedWeights:
    """PackedWeights over panels already packed (a compiled model's weights: no copy), with a
    bias (m,) or none."""
    return PackedWeights(panels, panel_bias(bias, m, panels.shape[1]), m, panels.shape[2])


def pack(w: np.ndarray, bias: np.ndarray | None = None) -> PackedWeights:
    """Pack W (m, k), or a batch of them (b, m, k), with an optional bias (m,)."""
    panels = pack_panels(w)
    panels.flags.writeable = False
    return packed(panels, w.shape[-2], bias)


def variant(residual: bool, clamped: bool) -> int:
    """The kernel's store variant: the residual added, the clamp applied."""
    return 2 * int(residual) + int(clamped)


def accumulator_floats(n: int) -> int:
    """Floats of the partial-sum buffer `multiply` needs for n columns."""
    return -(-n // COLUMN_GROUP) * COLUMN_GROUP * PANEL_ROWS


def multiply(w: PackedWeights, x: np.ndarray, y: np.ndarray, acc: np.ndarray, first: int = 0,
             last: int | None = None, transposed: bool = False, res: np.ndarray | None = None,
             clamp: tuple[float, float] | None = None, gather: Gather | None = None) -> None:
    """Rows of panels first:last of W @ x + bias, for each matrix of the batch; then, not
    transposed, + res (same shape and strides as y) and clamped to [lo, hi] where given.

    x: (k, n), or (batch, k, n) for a packed batch; with `gather`, a contiguous array its tables
    index (one matrix; y's columns where its ycoff puts them). y: (m, n) likewise, or with
    `transposed` (n, rows) where rows are the output rows of panels first:last (clipped to m),
    the layout the kernel's vectors already have, stored without a scatter. Every array float32
    with contiguous rows (any row stride); acc: scratch of accumulator_floats(n) floats. Releases
    the GIL.
    """
    batch = w.panels.shape[0]
    if gather is not None:
        assert batch == 1 and x.flags.c_contiguous and x.size >= gather.reach and gather.koff.size == w.k
        k, n = w.k, gather.coff.size
        x3 = x.reshape(1, 1, -1)
    else:
        x3 = x[None] if x.ndim == 2 else x
        k, n = x3.shape[1:]
        assert x3.shape == (batch, w.k, n) and (x3.strides[2] == 4 or n == 1)
    y3 = y[None] if y.ndim == 2 else y
    if n == 0:
        return
    last = w.count if last is None else last
    first_row = first * PANEL_ROWS
    want = (n, min(w.m, last * PANEL_ROWS) - first_row) if transposed else (w.m, n)
    assert w.k > 0 and y3.shape == (batch,) + want, (x3.shape, y3.shape, want)
    assert x.dtype == y.dtype == acc.dtype == np.float32 and acc.size >= accumulator_floats(n)
    assert y3.strides[2] == 4 or y3.shape[2] == 1
    if first >= last:
        return
    y_ptr = y3.ctypes.data - (4 * first_row if transposed else 0)
    panels_at, bias_at = w.addresses
    assert not transposed or (res is None and clamp is None)
    assert res is None or (res.shape == y.shape and res.strides == y.strides and res.dtype == np.float32)
    lo, hi = clamp if clamp is not None else (-np.inf, np.inf)
    args = (panels_at, x3.ctypes.data, y_ptr, bias_at, acc.ctypes.data,
            first, last, w.m, k, n, x3.strides[1] // 4, y3.strides[1] // 4, int(transposed), batch,
            w.panels[0].size, x3.strides[0] // 4, y3.strides[0] // 4,
            y_ptr if res is None else res.ctypes.data, lo, hi, variant(res is not None, clamp is not None))
    if gather is not None:
        _kernel()["gemm_gather"](*args, *gather.addresses)
    else:
        _kernel()["gemm"](*args)
