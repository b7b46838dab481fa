"""Y = clamp(W @ X + bias + residual) with vectors along X's pixels: a batch of 1x1 convs on wide
maps, X and Y in NCHW as they lie, W as the compiler stores it (omrt.kernels.packed_gemm's panels).

Why a second micro-kernel: packed_gemm's vectors run along output channels, so on a wide map each
output is one lane of a scattered store. Over a batch these convs ran on BLAS image by image
(conv._direct_build), which packs both W and X on every call and finishes the bias, residual and
clamp in a second pass over the output. Here an input row's pixels are the vectors, loaded
straight from X, each multiplied by micro_rows weights broadcast from the packed panel (the
weights of one k for a block of rows lie together), and the tile of accumulators goes to Y's
rows with plain vector stores, the clamp applied on the way out. The bias starts the sums; the
residual, which may share Y's bytes, is added as each tile is stored where the reduction is one
K chunk, and otherwise starts the first chunk's sums, so it is read before that tile is written
(at the end rather than the start, its loads off the first FMAs' path; one thread, the kernel
alone: ResNet-50's 64->256 on 56x56 over four images 6.43 -> 6.30 ms, eight 15.2 -> 14.6,
128->512 on 28x28 over four 5.19 -> 5.04). The phase conv (omrt.kernels.phase_conv) runs the
same kind of tile over one image and keeps batch 1 (MIN_IMAGES) and, over a batch, the shallow
convs (MIN_INPUTS).

Four images on one thread (a batch lane), against BLAS (benchmarks/ab_conv.py --batch 4, one
thread, Zen 4 VM): ResNet-50's 64->256 on 56x56 5.16 -> 4.67 ms, 256->1024 on 14x14 4.89 ->
4.58; 1024->256 on 14x14 and 256->128 on 56x56 equal. ResNet-50 at batch 8 (two lanes,
ab_models.py, PIXEL_GEMM=0 against 1, two runs of each) 354.7 / 361.0 -> 335.3 / 332.2 ms,
Inception-v1 135.3 / 131.4 -> 124.3 / 127.9; SqueezeNet and DenseNet-121 equal.

Blocking: a chunk of columns, sized so its K_CHUNK reduction rows of X stay in L2 (CHUNK_BYTES),
is swept by every block of rows before the next; each K chunk's partial sums go back to Y's rows,
the last chunk clamps them.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from omrt.kernels import llvm_jit, native_jobs
from omrt.kernels.conv_common import MIN_PARALLEL_FLOPS, ConvGeom, finish, split_inputs
from omrt.kernels.epilogue import Epilogue
from omrt.kernels.packed_gemm import PANEL_ROWS
from omrt.kernels.parallel import Pool, lead_split

# 1: batches of 1x1 convs on maps of MIN_COLUMNS pixels or more run here (0: on BLAS).
PIXEL_GEMM = 1
MIN_COLUMNS = 64
# Batch 1 keeps the phase conv: ResNet-50 on two threads, this kernel from one image against it
# (benchmarks/ab_models.py, two runs of each) 38.2 / 37.7 against 37.6 / 37.5 ms; per op
# (ab_ops.py, MIN_IMAGES=1) the expanding convs lose (64->256 on 56x56 2.71 -> 2.98 ms, 128->512
# on 28x28 2.39 -> 2.70, 256->1024 on 14x14 3.96 -> 4.15) and the reducing ones gain 0.1 ms or less.
MIN_IMAGES = 2
# Over a batch, 1x1 convs with fewer inputs run as phase convs image by image (omrt.kernels.
# phase_conv: 16 output channels x one vector per tile, the whole reduction in registers); this
# kernel's K chunks win only where the reduction is deep. ResNet-50 at batch 8, one thread, sums
# of per-op medians over both lanes (benchmarks/ab_ops.py, MIN_INPUTS=0 against 512): 672.0 ->
# 662.4 ms (256->1024 on 14x14 62.6 -> 59.0, 128->512 on 28x28 39.9 -> 37.2; the strided 256->512,
# which over a batch ran on BLAS before the phase conv took them, 20.4 -> 19.2); every conv to the
# phases (MIN_INPUTS=100000 against 0, a slower moment): 512->128 on 28x28 29.9 -> 38.8, 512->256
# 18.9 -> 21.8, 1024->256 on 14x14 57.9 -> 60.2.
MIN_INPUTS = 512
VECTORS = 3             # pixel vectors per tile
K_CHUNK = 256           # reduction rows per chunk: a block of rows' weights for it stay in L1
CHUNK_BYTES = 192 * 1024  # X bytes of one column chunk's K chunk (L2 on the hosts measured)
ROW_ALIGN = 8           # rows per micro-tile with AVX-512 (AVX2 takes 4); Y's rows must be a multiple
SLOTS = ("w", "x", "y", "bias", "res", "k", "n", "ldx", "ldy", "x_image", "y_image", "blocks_per_image",
         "column_chunk", "lo", "hi", "with_res", "blocks")


def micro_rows(vl: int) -> int:
    """Rows per tile: 8 x VECTORS accumulators in AVX-512's 32 registers, 4 x VECTORS in AVX2's 16."""
    return ROW_ALIGN if vl == 16 else 4


def _tile_ir(vl: int, nv: int, masked: bool) -> str:
    """One tile: micro_rows rows of Y by nv vectors of pixels over one K chunk. `masked`: the last
    vector holds %tail pixels (the end of a row)."""
    v, mask = f"<{vl} x float>", f"<{vl} x i1>"
    rows = micro_rows(vl)
    name = f"tile{nv}{'m' if masked else ''}"
    out = [f"define internal void @{name}(ptr %wp, ptr %x, ptr %y, ptr %bias, ptr %res, i64 %k_n, i64 %ldx, "
           f"i64 %ldy, i1 %first, i1 %last, i1 %with_res, {v} %lov, {v} %hiv, i32 %tail) alwaysinline {{",
           "entry:", "  %not_last = xor i1 %last, true", "  %early_res = and i1 %with_res, %not_last",
           "  %late_first = and i1 %with_res, %first", "  %late_res = and i1 %late_first, %last"]
    if masked:
        out += llvm_jit.splat("ts", "%tail", vl, "i32")
        out.append(f"  %mask = icmp slt <{vl} x i32> {llvm_jit.lanes32(vl)}, %ts")

    def load(ptr: str, vec: int, tag: str) -> list[str]:
        if masked and vec == nv - 1:
            return [f"  %{tag} = call {v} @llvm.masked.load.v{vl}f32.p0(ptr {ptr}, i32 4, {mask} %mask, "
                    f"{v} zeroinitializer)"]
        return [f"  %{tag} = load {v}, ptr {ptr}, align 4"]

    def store(value: str, ptr: str, vec: int) -> list[str]:
        if masked and vec == nv - 1:
            return [f"  call void @llvm.masked.store.v{vl}f32.p0({v} {value}, ptr {ptr}, i32 4, {mask} %mask)"]
        return [f"  store {v} {value}, ptr {ptr}, align 4"]

    out += llvm_jit.splat("late", "%late_res", vl, "i1")
    for i in range(rows):   # vector j of row i: at offset %o{i}_{j} in Y and in the residual
        out.append(f"  %ro{i} = mul i64 %ldy, {i}")
        for j in range(nv):
            out += [f"  %o{i}_{j} = add i64 %ro{i}, {j * vl}",
                    f"  %rp{i}_{j} = getelementptr float, ptr %res, i64 %o{i}_{j}",
                    f"  %yp{i}_{j} = getelementptr float, ptr %y, i64 %o{i}_{j}"]
    out.append("  br i1 %first, label %from_bias, label %from_y")
    out.append("from_bias:")
    for i in range(rows):
        out += [f"  %bq{i} = getelementptr float, ptr %bias, i64 {i}", f"  %bs{i} = load float, ptr %bq{i}, align 4"]
        out += llvm_jit.splat(f"bv{i}", f"%bs{i}", vl)
    out.append("  br i1 %early_res, label %add_res, label %start")
    out.append("add_res:")
    for i in range(rows):
        for j in range(nv):
            out += load(f"%rp{i}_{j}", j, f"rv{i}_{j}")
            out.append(f"  %br{i}_{j} = fadd {v} %bv{i}, %rv{i}_{j}")
    out.append("  br label %start")
    out.append("from_y:")
    for i in range(rows):
        for j in range(nv):
            out += load(f"%yp{i}_{j}", j, f"yv{i}_{j}")
    out += ["  br label %start", "start:"]
    for i in range(rows):
        for j in range(nv):
            out.append(f"  %s{i}_{j} = phi {v} [%bv{i}, %from_bias], [%br{i}_{j}, %add_res], [%yv{i}_{j}, %from_y]")
    out += llvm_jit.reduction_loop(vl, rows, nv, lambda i, j: f"%s{i}_{j}", "start")
    out.append("  %xo = mul i64 %k, %ldx")
    vectors = []
    for j in range(nv):
        out += [f"  %xvo{j} = add i64 %xo, {j * vl}", f"  %xq{j} = getelementptr float, ptr %x, i64 %xvo{j}"]
        out += load(f"%xq{j}", j, f"xv{j}")
        vectors.append(f"%xv{j}")
    out.append(f"  %wo = mul i64 %k, {PANEL_ROWS}")
    out += llvm_jit.broadcast_fmas(vl, "%wp", "%wo", rows, vectors, "w")
    out += [llvm_jit.next_iteration("k", 1, "%k_n", "loop", "done"), "done:"]
    out.append("  br i1 %last, label %finish, label %partial")
    out.append("partial:")
    for i in range(rows):
        for j in range(nv):
            out += store(f"%n{i}_{j}", f"%yp{i}_{j}", j)
    out += ["  ret void", "finish:"]
    for i in range(rows):
        for j in range(nv):
            lane_mask = "%late"
            if masked and j == nv - 1:
                out.append(f"  %late_tail{i} = and {mask} %late, %mask")
                lane_mask = f"%late_tail{i}"
            out += [f"  %lr{i}_{j} = call {v} @llvm.masked.load.v{vl}f32.p0(ptr %rp{i}_{j}, i32 4, {mask} {lane_mask}, "
                    f"{v} zeroinitializer)", f"  %f{i}_{j} = fadd {v} %n{i}_{j}, %lr{i}_{j}"]
            lines, value = llvm_jit.clamp(vl, f"%f{i}_{j}", "%lov", "%hiv", f"{i}_{j}")
            out += lines + store(value, f"%yp{i}_{j}", j)
    out += ["  ret void", "}"]
    return "\n".join(out)


def _task_ir(vl: int) -> str:
    """task(args, i): image i // blocks_per_image, its rows blocks[i], column chunk by column
    chunk, K chunk by K chunk, each block of micro_rows rows across the chunk's tiles."""
    v = f"<{vl} x float>"
    rows = micro_rows(vl)
    width = VECTORS * vl
    tile_args = ("ptr %wp, ptr {x}, ptr {y}, ptr %br, ptr {r}, i64 %kl, i64 %ldx, i64 %ldy, i1 %is_first, "
                 f"i1 %is_last, i1 %has_res, {v} %lov, {v} %hiv, i32 {{tail}}")
    full = tile_args.format(x="%xj", y="%yj", r="%rj", tail="0")
    tails = []
    for nv in range(1, VECTORS + 1):
        tails.append(f"tail{nv}:\n  call void @tile{nv}m({tile_args.format(x='%xj', y='%yj', r='%rj', tail='%lanes')})"
                     "\n  br label %row_done")
    body = [*llvm_jit.splat("lov", "%lo", vl), *llvm_jit.splat("hiv", "%hi", vl),
            "  %has_res = icmp ne i64 %with_res, 0",
            "  %image = udiv i64 %i, %blocks_per_image",
            "  %xi_at = mul i64 %image, %x_image", "  %x_img = getelementptr float, ptr %x, i64 %xi_at",
            "  %yi_at = mul i64 %image, %y_image", "  %y_img = getelementptr float, ptr %y, i64 %yi_at",
            "  %r_img = getelementptr float, ptr %res, i64 %yi_at",
            "  br label %chunk",
            "chunk:", "  %jc = phi i64 [0, %entry], [%jc_next, %kc_done]",
            "  %jc_far = add i64 %jc, %column_chunk", "  %jc_short = icmp ult i64 %n, %jc_far",
            "  %jc_end = select i1 %jc_short, i64 %n, i64 %jc_far",
            "  br label %kc_head",
            "kc_head:", "  %kc = phi i64 [0, %chunk], [%kc_next, %rows_done]",
            f"  %kc_far = add i64 %kc, {K_CHUNK}", "  %kc_short = icmp ult i64 %k, %kc_far",
            "  %kc_end = select i1 %kc_short, i64 %k, i64 %kc_far", "  %kl = sub i64 %kc_end, %kc",
            "  %is_first = icmp eq i64 %kc, 0", "  %is_last = icmp eq i64 %kc_end, %k",
            "  %xk_at = mul i64 %kc, %ldx", "  %xk = getelementptr float, ptr %x_img, i64 %xk_at",
            "  br label %row",
            "row:", "  %r = phi i64 [%first, %kc_head], [%r_next, %row_done]",
            f"  %panel = udiv i64 %r, {PANEL_ROWS}", f"  %sub = urem i64 %r, {PANEL_ROWS}",
            "  %pk = mul i64 %panel, %k", "  %pkc = add i64 %pk, %kc", f"  %pw = mul i64 %pkc, {PANEL_ROWS}",
            "  %pws = add i64 %pw, %sub", "  %wp = getelementptr float, ptr %w, i64 %pws",
            "  %br = getelementptr float, ptr %bias, i64 %r",
            "  %ry = mul i64 %r, %ldy", "  %yr = getelementptr float, ptr %y_img, i64 %ry",
            "  %rr = getelementptr float, ptr %r_img, i64 %ry",
            "  br label %cols",
            "cols:", "  %j = phi i64 [%jc, %row], [%j_next, %tile]",
            f"  %j_next = add i64 %j, {width}",
            "  %xj = getelementptr float, ptr %xk, i64 %j", "  %yj = getelementptr float, ptr %yr, i64 %j",
            "  %rj = getelementptr float, ptr %rr, i64 %j",
            "  %fits = icmp ule i64 %j_next, %jc_end", "  br i1 %fits, label %tile, label %tail",
            "tile:", f"  call void @tile{VECTORS}({full})", "  br label %cols",
            "tail:", "  %left = sub i64 %jc_end, %j", f"  %nvm = add i64 %left, {vl - 1}",
            f"  %nv = udiv i64 %nvm, {vl}", f"  %full_lanes = mul i64 %nv, {vl}",
            f"  %lanes_off = sub i64 %full_lanes, {vl}", "  %lanes64 = sub i64 %left, %lanes_off",
            "  %lanes = trunc i64 %lanes64 to i32",
            "  switch i64 %nv, label %row_done [" + " ".join(f"i64 {nv}, label %tail{nv}"
                                                         for nv in range(1, VECTORS + 1)) + "]",
            *tails,
            "row_done:", llvm_jit.next_iteration("r", rows, "%last", "row", "rows_done"),
            "rows_done:", llvm_jit.next_iteration("kc", K_CHUNK, "%k", "kc_head", "kc_done"),
            "kc_done:", "  %jc_next = add i64 %jc, %column_chunk",
            "  %more_jc = icmp ult i64 %jc_next, %n", "  br i1 %more_jc, label %chunk, label %done",
            "done:"]
    return native_jobs.task_ir("", SLOTS, {"w", "x", "y", "bias", "res", "blocks"}, {"lo", "hi"}, body)


def _module_ir(vl: int) -> str:
    parts = llvm_jit.masked_declarations(vl, fma=True)
    parts += [_tile_ir(vl, nv, masked) for nv in range(1, VECTORS + 1) for masked in (False, True)]
    parts.append(_task_ir(vl))
    return "\n\n".join(parts)


def _kernel() -> dict[str, Any] | None:
    return llvm_jit.compile_module("pixel_gemm", _module_ir, {"task": native_jobs.TASK_ARGS})


def available() -> bool:
    """Whether the kernel compiles and runs on this host."""
    return _kernel() is not None


def column_chunk(k: int, n: int) -> int:
    """Columns per chunk: a whole number of tiles whose K chunk of X fits CHUNK_BYTES."""
    width = VECTORS * llvm_jit.vector_floats()
    rows = min(k, K_CHUNK)
    tiles = max(1, CHUNK_BYTES // (rows * width * 4))
    return min(n, tiles * width)


class PixelJob:
    """One 1x1 conv's product as a native job: task i computes image i // len(blocks), rows
    blocks[i % len(blocks)] (multiples of ROW_ALIGN) of Y (m, n) = clamp(W @ X + bias + res),
    W as pack_panels stores it."""

    def __init__(self, panels: np.ndarray, bias: np.ndarray | None, m: int, k: int, n: int, images: int,
                 blocks: list[tuple[int, int]]) -> None:
        kernel = _kernel()
        assert kernel is not None and m % ROW_ALIGN == 0
        bias = np.zeros(m, np.float32) if bias is None else np.ascontiguousarray(bias, np.float32).reshape(m)
        self.job = native_jobs.NativeJob(kernel["task"], SLOTS, list(blocks) * images, keep=(panels, bias),
                                         w=panels.ctypes.data, bias=bias.ctypes.data, k=k, n=n,
                                         blocks_per_image=len(blocks), column_chunk=column_chunk(k, n))

    def run(self, pool: Any, x: np.ndarray, y: np.ndarray, res: np.ndarray | None, clamp: tuple[float, float],
            threaded: bool = True) -> None:
        """y = clamp(W @ x + bias + res): x (images, k, n), y and res (images, m, n), each image's
        rows contiguous."""
        y_at = y.ctypes.data
        self.job.set(lo=float(clamp[0]), hi=float(clamp[1]), x=x.ctypes.data, y=y_at,
                     res=y_at if res is None else res.ctypes.data,
                     ldx=x.strides[-2] // 4, ldy=y.strides[-2] // 4, x_image=x.strides[0] // 4,
                     y_image=y.strides[0] // 4, with_res=int(res is not None))
        self.job.run(pool, threaded)


def pixel_shape(g: ConvGeom, dtype: np.dtype, const_weights: bool) -> bool:
    """Group-1 float32 1x1 stride-1 unpadded convs over a batch, with constant weights, a multiple
    of ROW_ALIGN outputs, at least MIN_COLUMNS pixels and MIN_INPUTS inputs: the convs whose
    weights the compiler stores packed for this kernel (conv._conv_prepack). The shape alone
    decides, so a model compiled on one host runs on any."""
    return (bool(PIXEL_GEMM) and g.n >= MIN_IMAGES and g.direct_view and g.group == 1 and g.kernel == (1, 1)
            and const_weights and np.dtype(dtype) == np.float32 and g.m % ROW_ALIGN == 0
            and g.p_size >= MIN_COLUMNS and g.c >= MIN_INPUTS)


def pixel_eligible(g: ConvGeom, dtype: np.dtype, const_weights: bool) -> bool:
    """pixel_shape convs, where the kernel runs."""
    return pixel_shape(g, dtype, const_weights) and available()


def pixel_build(g: ConvGeom, panels: np.ndarray, b_const: np.ndarray | None, epi: Epilogue, pool: Pool):
    """The conv as a PixelJob over the panels the compiler stored (packed_gemm.pack_panels of the
    (m, c) weights): threads take blocks of output channels of one image, or, with at least as
    many images as threads, whole images. The bias, residual and clamp in the kernel where the
    activation is a clamp, no bias comes at run time and the residual is laid out as the output
    (which may be a channel range of a larger tensor); otherwise finished after."""
    clamp = epi.clamp
    in_kernel = clamp is not None
    by_images = g.n >= pool.size
    blocks = [(0, g.m)] if by_images else lead_split(g.m, pool.size, ROW_ALIGN, g.image_flops)
    unclamped = (-np.inf, np.inf)
    job = PixelJob(panels.reshape(panels.shape[-3:]), b_const, g.m, g.c, g.p_size, g.n, blocks)
    threaded = pool.size > 1 and g.image_flops * g.n >= MIN_PARALLEL_FLOPS

    def run(inputs, outputs, scratch):
        x, y = inputs[0], outputs[0]
        bias, res = split_inputs(inputs, epi.residual)
        late_bias = None if b_const is not None or bias is None else bias.reshape(g.m, 1)
        x3, y3 = x.reshape(g.n, g.c, g.p_size), y.reshape(g.n, g.m, g.p_size)
        r3 = None if res is None else res.reshape(y3.shape)
        if late_bias is None and in_kernel and (r3 is None or r3.strides == y3.strides):
            job.run(pool, x3, y3, r3, clamp, threaded)
            return
        job.run(pool, x3, y3, None, unclamped, threaded)
        finish(epi, y3, late_bias, r3)

    run.residual_first = in_kernel
    return run
