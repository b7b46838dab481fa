"""Convs over few input channels (image stems, narrow 3x3 and 5x5 convs) without im2col: a
micro-kernel that reads each tap straight from the padded image's stride phases.

An image stem (3 channels, 7x7/2 or 3x3/2) has a tiny reduction (147 or 27) over many pixels, so
im2col writes and reads a column matrix 49x the size of the image for a GEMM that is over almost
as soon as it starts. Here the image is padded once into its stride phases
(conv_common.pad_phases), where tap (kh, kw) of the outputs of one row is a contiguous run of one
phase row; a table gives each tap's offset. The micro-kernel (LLVM IR, omrt.kernels.llvm_jit)
keeps 8 output channels (4 with AVX2) x VECTORS vectors of an output row in registers, loads the
tap's pixels as vectors (masked at the row's end), broadcasts one weight per output channel, and
adds the residual and applies Relu or Clip as it stores. Each kernel keeps its weights regrouped
by 8 output channels, a copy of its own: these convs' weights are small (37 KB for ResNet-50's
stem, 590 KB for its 128->128 3x3/2, the largest in the light models).

One Zen 5 thread, batch 1, against onnxruntime's 0.99 / 0.13 / 0.24 ms: ResNet-50's 3->64 7x7/2
on 224x224 2.12 ms (phases, im2col, GEMM) -> 1.10, ShuffleNet's 3->24 3x3/2 0.31 -> 0.14,
SqueezeNet's 3->64 3x3/2 0.46 -> 0.26. Threads take blocks of output rows.
"""
from __future__ import annotations

import ctypes

import numpy as np

from omrt.kernels import llvm_jit, packed_gemm
from omrt.kernels.conv_common import (
    MIN_PARALLEL_FLOPS, ConvGeom, finish, finish_staged, pad_phases, split_inputs,
)
from omrt.kernels.epilogue import Epilogue
from omrt.kernels.parallel import Pool, split

# Input channels up to which a conv reads its taps from the phases, and output columns from
# which it does (a tile is VECTORS vectors of one output row, 32 floats with AVX-512: on 14-wide
# rows half of it idles). One thread against im2col + GEMM: SqueezeNet's 16->64 3x3 on 55x55
# 0.34 -> 0.27 ms, Inception-v1's 16->32 5x5 on 28x28 0.19 -> 0.10, ResNet-50's 128->128 3x3/2
# on 56x56 1.35 -> 1.24 (batch 8: 11.1 -> 9.9); on 14-wide rows 16->48 5x5 0.08 either way and
# 256->256 3x3/2 1.16 -> 2.12.
MAX_CHANNELS = 128
MIN_COLUMNS = 28
FLAT_ROWS = 1
PAD_SPLIT_BYTES = 1 << 20
VECTORS = 2            # vectors of one output row per tile


def _rows(vl: int) -> int:
    """Output channels per tile: 8 x 2 accumulators of 16 floats (AVX-512), 4 x 2 of 8 (AVX2)."""
    return 8 if vl == 16 else 4


def _tile_ir(vl: int, with_res: bool, clamped: bool) -> str:
    """One tile: `rows` output channels x VECTORS*vl outputs of a row, the whole reduction; the
    residual added and the clamp applied on the way out where the variant has them."""
    v, m1 = f"<{vl} x float>", f"<{vl} x i1>"
    mr = _rows(vl)
    out = [f"define internal void @tile{int(with_res)}{int(clamped)}(ptr %wp, ptr %x, ptr %off, ptr %y, ptr %res, "
           "ptr %bias, i64 %k_n, i64 %ldy, i64 %rows, i64 %cols, float %lo, float %hi) alwaysinline {", "entry:"]
    out += llvm_jit.splat("cs", "%cols", vl, "i64") + llvm_jit.splat("lov", "%lo", vl)
    out += llvm_jit.splat("hiv", "%hi", vl)
    for j in range(VECTORS):
        out.append(f"  %mk{j} = icmp slt <{vl} x i64> {llvm_jit.lanes(vl, j * vl)}, %cs")
    for r in range(mr):
        out += [f"  %bq{r} = getelementptr float, ptr %bias, i64 {r}", f"  %bs{r} = load float, ptr %bq{r}, align 4"]
        out += llvm_jit.splat(f"bv{r}", f"%bs{r}", vl)
    out += ["  br label %loop", "loop:", "  %k = phi i64 [0, %entry], [%k_next, %loop]"]
    for r in range(mr):
        for j in range(VECTORS):
            out.append(f"  %a{r}_{j} = phi {v} [%bv{r}, %entry], [%n{r}_{j}, %loop]")
    out += ["  %oq = getelementptr i64, ptr %off, i64 %k", "  %xo = load i64, ptr %oq, align 8"]
    for j in range(VECTORS):
        out += [f"  %xo{j} = add i64 %xo, {j * vl}", f"  %xq{j} = getelementptr float, ptr %x, i64 %xo{j}",
                f"  %xv{j} = call {v} @llvm.masked.load.v{vl}f32.p0(ptr %xq{j}, i32 4, {m1} %mk{j}, "
                f"{v} zeroinitializer)"]
    out.append(f"  %wo = mul i64 %k, {mr}")
    out += llvm_jit.broadcast_fmas(vl, "%wp", "%wo", mr, [f"%xv{j}" for j in range(VECTORS)], "w")
    out += [llvm_jit.next_iteration("k", 1, "%k_n", "loop", "done"),
            "done:"]
    for r in range(mr):
        out += [f"  %dr{r} = mul i64 {r}, %ldy", f"  %ok{r} = icmp slt i64 {r}, %rows",
                f"  br i1 %ok{r}, label %store{r}, label %next{r}", f"store{r}:"]
        for j in range(VECTORS):
            t = f"{r}_{j}"
            out += [f"  %do{t} = add i64 %dr{r}, {j * vl}", f"  %dq{t} = getelementptr float, ptr %y, i64 %do{t}"]
            value = f"%n{t}"
            if with_res:
                out += [f"  %rq{t} = getelementptr float, ptr %res, i64 %do{t}",
                        f"  %rv{t} = call {v} @llvm.masked.load.v{vl}f32.p0(ptr %rq{t}, i32 4, {m1} %mk{j}, "
                        f"{v} zeroinitializer)",
                        f"  %sum{t} = fadd {v} {value}, %rv{t}"]
                value = f"%sum{t}"
            if clamped:
                # compare-and-select keeps NaN (both compares are false for it), as np.clip does
                out += [f"  %under{t} = fcmp olt {v} {value}, %lov",
                        f"  %lo{t} = select <{vl} x i1> %under{t}, {v} %lov, {v} {value}",
                        f"  %over{t} = fcmp ogt {v} %lo{t}, %hiv",
                        f"  %hi{t} = select <{vl} x i1> %over{t}, {v} %hiv, {v} %lo{t}"]
                value = f"%hi{t}"
            out.append(f"  call void @llvm.masked.store.v{vl}f32.p0({v} {value}, ptr %dq{t}, i32 4, {m1} %mk{j})")
        out += [f"  br label %next{r}", f"next{r}:"]
    out += ["  ret void", "}"]
    return "\n".join(out)


def _module_ir(vl: int) -> str:
    """`conv`: output rows r0:r1 of one image, every panel of output channels, tile by tile."""
    v, m1 = f"<{vl} x float>", f"<{vl} x i1>"
    mr, width = _rows(vl), VECTORS * vl
    tile_calls = "\n".join(
        f"t{r}{c}:\n  call void @tile{r}{c}(ptr %wpp, ptr %xc, ptr %off, ptr %yc, ptr %rc, ptr %bq, i64 %k, i64 %ldy, "
        f"i64 %rows, i64 %cols, float %lo, float %hi)\n  br label %tile_done" for r in (0, 1) for c in (0, 1))
    return "\n\n".join([
        f"declare {v} @llvm.fma.v{vl}f32({v}, {v}, {v})",
        f"declare {v} @llvm.masked.load.v{vl}f32.p0(ptr, i32, {m1}, {v})",
        f"declare void @llvm.masked.store.v{vl}f32.p0({v}, ptr, i32, {m1})",
        *[_tile_ir(vl, r, c) for r in (False, True) for c in (False, True)],
        f"""define void @conv(ptr %wp, ptr %x, ptr %off, ptr %y, ptr %res, ptr %bias, i64 %panels, i64 %m, i64 %k,
                  i64 %r0, i64 %r1, i64 %ow, i64 %wq, i64 %ldy, i64 %variant, float %lo, float %hi) {{
entry:
  br label %out_row
out_row:
  %oh = phi i64 [%r0, %entry], [%oh_next, %row_done]
  %xro = mul i64 %oh, %wq
  %xr = getelementptr float, ptr %x, i64 %xro
  %yro = mul i64 %oh, %ow
  br label %panel
panel:
  %p = phi i64 [0, %out_row], [%p_next, %panel_done]
  %row0 = mul i64 %p, {mr}
  %left = sub i64 %m, %row0
  %few = icmp slt i64 %left, {mr}
  %rows = select i1 %few, i64 %left, i64 {mr}
  %pk = mul i64 %p, %k
  %wo = mul i64 %pk, {mr}
  %wpp = getelementptr float, ptr %wp, i64 %wo
  %bq = getelementptr float, ptr %bias, i64 %row0
  %yo0 = mul i64 %row0, %ldy
  %yo = add i64 %yo0, %yro
  %yr = getelementptr float, ptr %y, i64 %yo
  %rr = getelementptr float, ptr %res, i64 %yo
  br label %tiles
tiles:
  %c = phi i64 [0, %panel], [%c_next, %tile_done]
  %cols = sub i64 %ow, %c
  %xc = getelementptr float, ptr %xr, i64 %c
  %yc = getelementptr float, ptr %yr, i64 %c
  %rc = getelementptr float, ptr %rr, i64 %c
  switch i64 %variant, label %t00 [i64 1, label %t01 i64 2, label %t10 i64 3, label %t11]
{tile_calls}
tile_done:
{llvm_jit.next_iteration("c", width, "%ow", "tiles", "panel_done")}
panel_done:
{llvm_jit.next_iteration("p", 1, "%panels", "panel", "row_done")}
row_done:
{llvm_jit.next_iteration("oh", 1, "%r1", "out_row", "exit")}
exit:
  ret void
}}"""])


_ARGS = [ctypes.c_void_p] * 6 + [ctypes.c_int64] * 9 + [ctypes.c_float] * 2


def _kernel():
    return llvm_jit.compile_module("phase_conv", _module_ir, {"conv": _ARGS})


def phase_shape(g: ConvGeom) -> tuple[int, ...]:
    """(sh, sw, C, rows, cols) of one image's padded stride phases (conv_common.pad_phases)."""
    (sh, sw), (hp, wp) = g.strides, g.pad_sp
    return (sh, sw, g.c, -(-hp // sh), -(-wp // sw))


def flat_rows(g: ConvGeom) -> bool:
    """Output rows narrower than MIN_COLUMNS: the kernel runs over all of them as one row."""
    return g.out_sp[1] < MIN_COLUMNS


def phase_shaped(g: ConvGeom, dtype: np.dtype, const_weights: bool) -> bool:
    """2-D group-1 convs over at most MAX_CHANNELS inputs with constant weights and kernels of 3x3
    or more, float32 or float16 (computed in float32), at least MIN_COLUMNS outputs per row or,
    under FLAT_ROWS, any. The shape alone decides the planned workspace, so it does not depend on
    whether the micro-kernel runs where the model is compiled."""
    return (len(g.kernel) == 2 and g.group == 1 and g.c <= MAX_CHANNELS and min(g.kernel) >= 3
            and (FLAT_ROWS or not flat_rows(g))
            and np.dtype(dtype) in (np.float16, np.float32) and const_weights)


def phase_eligible(g: ConvGeom, dtype: np.dtype, const_weights: bool) -> bool:
    """phase_shaped float32 convs, where the micro-kernel runs."""
    return np.dtype(dtype) == np.float32 and phase_shaped(g, dtype, const_weights) and _kernel() is not None


def _flat_floats(g: ConvGeom) -> int:
    """One image's output in rows as wide as the phases', where flat_rows."""
    return g.m * g.out_sp[0] * phase_shape(g)[4] if flat_rows(g) else 0


def phase_workspace(g: ConvGeom) -> int:
    """One image's phases (images go through one after another) and, where flat_rows, its output
    in rows as wide as theirs."""
    return (int(np.prod(phase_shape(g))) + _flat_floats(g)) * g.itemsize


def tap_offsets(g: ConvGeom) -> np.ndarray:
    """Each tap's (c, kh, kw order, as the weights) offset into the phases from output (0, 0)."""
    (sh, sw), (dh, dw), (kh_n, kw_n) = g.strides, g.dilations, g.kernel
    _, _, c, hq, wq = phase_shape(g)
    off = np.empty((c, kh_n, kw_n), np.int64)
    for kh in range(kh_n):
        for kw in range(kw_n):
            r, q = kh * dh, kw * dw
            phase = (r % sh) * sw + q % sw
            off[:, kh, kw] = phase * c * hq * wq + np.arange(c) * hq * wq + (r // sh) * wq + q // sw
    return off.reshape(-1)


def phase_build(g: ConvGeom, w_const: np.ndarray, b_const: np.ndarray | None, epi: Epilogue, pool: Pool):
    vl = llvm_jit.vector_floats()
    mr = _rows(vl)
    depth = g.c * g.k_size
    weights = packed_gemm.pack_panels(w_const.reshape(g.m, depth), mr)[0]
    panels = weights.shape[0]
    bias = packed_gemm.panel_bias(b_const, g.m, panels, mr)
    offsets = tap_offsets(g)
    shape = phase_shape(g)
    (oh_n, ow_n), wq = g.out_sp, shape[4]
    conv = _kernel()["conv"]
    parts = pool.size if g.image_flops >= MIN_PARALLEL_FLOPS else 1
    flat = flat_rows(g)
    # Narrow rows run as one row of (oh_n - 1) * wq + ow_n outputs into a staging output as wide
    # as the phases (stride-phase row r + kh // sh holds the taps of output row r, whatever the
    # row), the columns past ow_n computed and dropped; threads take blocks of panels and move
    # their channels out. Wide rows: threads take blocks of output rows.
    blocks = split(panels, parts) if flat else split(oh_n, parts)
    # Padding into the phases is a numpy pass on the caller; from PAD_SPLIT_BYTES of phases the
    # threads pad channel ranges each (the conv alone on two threads: ResNet-50's 128->128 3x3/2 on
    # 56x56 0.733 -> 0.680 ms, DenseNet's 128->32 on 56x56 0.641 -> 0.612; on SqueezeNet's 16
    # channels of 55x55, 0.2 MB, a split cost 5 us).
    phase_floats = int(np.prod(shape))
    channel_pieces = split(g.c, parts if phase_floats * 4 >= PAD_SPLIT_BYTES else 1)
    # The kernel adds the residual and applies the activation as it stores, where the activation
    # is a clamp (Relu, Clip or none) and no bias comes at run time (that must go first, in finish).
    clamp = epi.clamp
    # Constant arrays' addresses taken once: ndarray.ctypes costs about 0.8 us a call.
    w_at, off_at, bias_at = weights.ctypes.data, offsets.ctypes.data, bias.ctypes.data
    weight_panel, span = mr * depth * 4, (oh_n - 1) * wq + ow_n

    def run(inputs, outputs, scratch):
        x, y = inputs[0], outputs[0]
        b_in, res = split_inputs(inputs, epi.residual)
        b3 = None if b_in is None or b_const is not None else b_in.reshape(g.m, 1, 1)
        in_kernel = clamp is not None and b3 is None and (res is None or (res.flags.c_contiguous and not flat))
        lo, hi = clamp if in_kernel else (-np.inf, np.inf)
        variant = 2 * int(in_kernel and res is not None) + int(in_kernel and (lo, hi) != (-np.inf, np.inf))
        work = scratch.view(np.float32)
        phases = work[:phase_floats].reshape(shape)
        staged = work[phase_floats:phase_floats + _flat_floats(g)].reshape(g.m, oh_n, wq) if flat else None
        phases_at = phases.ctypes.data
        staged_at = staged.ctypes.data if flat else 0
        for n in range(g.n):
            xn = x[n]

            def pad(i: int) -> None:
                c0, c1 = channel_pieces[i]
                pad_phases(xn[c0:c1], phases[:, :, c0:c1], g.pb, g.strides)

            pool.run(pad, len(channel_pieces))
            yn = y[n]
            rn = res[n] if res is not None else None
            y_at = yn.ctypes.data
            res_at = rn.ctypes.data if in_kernel and rn is not None else y_at

            def rows(i: int) -> None:
                r0, r1 = blocks[i]
                conv(w_at, phases_at, off_at, y_at, res_at, bias_at, panels, g.m, depth, r0, r1, ow_n, wq,
                     oh_n * ow_n, variant, lo, hi)
                if not in_kernel:
                    finish(epi, yn[:, r0:r1], b3, None if rn is None else rn[:, r0:r1])

            def channels(i: int) -> None:
                p0, p1 = blocks[i]
                m0, m1 = p0 * mr, min(g.m, p1 * mr)
                out_at = staged_at + m0 * oh_n * wq * 4
                conv(w_at + p0 * weight_panel, phases_at, off_at, out_at, out_at, bias_at + m0 * 4, p1 - p0,
                     m1 - m0, depth, 0, 1, span, 0, oh_n * wq, variant, lo, hi)
                valid = staged[m0:m1, :, :ow_n]
                if in_kernel:
                    np.copyto(yn[m0:m1], valid)
                else:
                    finish_staged(epi, yn[m0:m1], valid, None if b3 is None else b3[m0:m1],
                                  None if rn is None else rn[m0:m1])

            pool.run(channels if flat else rows, len(blocks))

    run.arrays = (weights, offsets, bias)  # what w_at, off_at and bias_at point into
    return run
