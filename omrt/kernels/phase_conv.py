"""Convs over few input channels (image stems, narrow 3x3 and 5x5 convs) without im2col: a
micro-kernel that reads each tap straight from the padded image's stride phases.

An image stem (3 channels, 7x7/2 or 3x3/2) has a tiny reduction (147 or 27) over many pixels, so
im2col writes and reads a column matrix 49x the size of the image for a GEMM that is over almost
as soon as it starts. Here the image is padded once into its stride phases
(conv_common.pad_phases), where tap (kh, kw) of the outputs of one row is a contiguous run of one
phase row; a table gives each tap's offset. The micro-kernel (LLVM IR, omrt.kernels.llvm_jit)
runs along a flat row of outputs, row after row with the phase rows' extra columns in between (a
phase row holds the taps of any output row), so a 14-wide map fills its vectors as well as a
wide one. It keeps 8 output channels (4 with AVX2) x VECTORS vectors of that row in registers (a
1x1 conv over enough outputs: 16 x one vector, POINTWISE_ROWS), loads the tap's pixels as
vectors, broadcasts one weight per output channel, and stores each vector as one masked store
per output row it covers, the extra columns left out, adding the residual and applying Relu or
Clip on the way. The flat row's last few outputs take a tile of one vector or half of one
(NARROW_TILES), so a 14x14 map, 4 outputs past six full tiles, runs 6.5 tiles' FMAs rather than
7: one Zen 4 thread, ResNet-50's 256->1024 1x1 on 14x14 1.128 -> 1.022 ms, 512->128 on 28x28
(chunks of 7 rows) 1.108 -> 1.012; ResNet-50 on two threads 47.97 -> 46.36 ms
(benchmarks/ab_models.py, TAIL_TILES=0 against 1). The kernels keep the weights regrouped by
their tiles' output channels, one copy for all that build the same conv
(packed_gemm.shared_panels): these convs' weights are small (37 KB for ResNet-50's stem, 590 KB
for its 128->128 3x3/2, the largest in the light models).

One Zen 5 thread, batch 1, against onnxruntime's 0.99 / 0.13 / 0.24 ms: ResNet-50's 3->64 7x7/2
on 224x224 2.12 ms (phases, im2col, GEMM) -> 1.10, ShuffleNet's 3->24 3x3/2 0.31 -> 0.14,
SqueezeNet's 3->64 3x3/2 0.46 -> 0.26. Running flat rather than row by row (each row's tiles
part-empty at its end), one thread: ResNet-50's stem 1.12 -> 1.04 ms, DenseNet-121's 128->32 on
56x56 1.10 -> 1.04, on 14x14 0.084 -> 0.078, SqueezeNet's 64->256 on 13x13 0.28 -> 0.27.
Threads take blocks of output channels, or of chunks of output rows on large maps (work_split).

A 1x1 unpadded conv is the same kernel with one tap per input channel: its one "phase" is the
input itself (stride 1, read where it lies) or every stride-th pixel, sampled into scratch: it
takes the 1x1 convs the packed kernel does not (POINTWISE_MAX_CHANNELS), over a batch those the
pixel GEMM does not either (omrt.kernels.pixel_gemm.MIN_INPUTS), image by image.
"""
from __future__ import annotations

import ctypes
import functools
from typing import Callable

import numpy as np

from omrt.kernels import llvm_jit, native_jobs, packed_gemm, pad_jit
from omrt.kernels.conv_common import ConvGeom, finish, pad_phases, phase_pads, split_inputs
from omrt.kernels.epilogue import Epilogue
from omrt.kernels.packed_conv import packed_shape, strided_gather
from omrt.kernels.parallel import Pool, split, task_blocks
from omrt.kernels.pixel_gemm import pixel_shape

# Input channels up to which a conv reads its taps from the phases. One thread against im2col +
# GEMM: SqueezeNet's 16->64 3x3 on 55x55 0.34 -> 0.27 ms, Inception-v1's 16->32 5x5 on 28x28
# 0.19 -> 0.10, ResNet-50's 128->128 3x3/2 on 56x56 1.35 -> 1.24 (batch 8: 11.1 -> 9.9), where
# 256->256 3x3/2 took 1.16 -> 2.12.
MAX_CHANNELS = 128
# 1x1 stride-1 unpadded convs of one image (read_in_place; strided ones from the sampled pixels)
# over up to POINTWISE_MAX_CHANNELS inputs, where the packed kernel does not take them: BLAS packs
# the whole input on each call, and runs its epilogue as a second pass. One conv on two threads
# against numpy's OpenBLAS (Zen 5 VM): SqueezeNet's 128->16 on 55x55 0.067 -> 0.038 ms, 256->32 on
# 27x27 0.061 -> 0.035, 16->64 on 55x55 0.048 -> 0.039, ResNet-50's 64->256 on 56x56 0.293 ->
# 0.263. Deep and large ones measured alone there took longer (ResNet-50's 256->64 on 56x56 0.284
# -> 0.321, 512->128 on 28x28 0.254 -> 0.278, the strided 256->512 0.515 -> 0.572) and were kept
# on BLAS; inside the models on a Zen 4 VM they gain (benchmarks/ab_ops.py, per-op medians, two
# threads, batch 1): ResNet-50's six 256->1024 on 14x14 4.09 -> 3.75 ms, 256->64 on 56x56 1.39 ->
# 1.08, the strided 256->512 1.47 -> 1.21, DenseNet-121's 1x1 convs on 56x56 0.8-1.2 -> 0.7-1.1
# each; ResNet-50 47.9 -> 47.0 ms, DenseNet-121 42.7 -> 41.2 (benchmarks/ab_models.py), SqueezeNet,
# Inception-v1 and ShuffleNet equal.
POINTWISE_MAX_CHANNELS = 2048
# Phase rows narrower than this would let one vector's lanes fall in more than SEGMENTS output rows.
MIN_PHASE_COLUMNS = 8
# Phase bytes a chunk of output rows reads, at most: they stay in the core's L2 across its panels.
# Half of it (256 KB) sped up ResNet-50's 64->256 1x1 convs on 56x56 in the model (benchmarks/
# ab_ops.py on a loaded Zen 4 VM, one thread 7.52 -> 6.68 ms for the four, two threads 6.92 ->
# 5.63) and slowed its 128->512 on 28x28 and 512->128 (+0.3 to +0.8); the whole model was no faster
# (benchmarks/ab_models.py, 66.3 against 67.1 ms).
PHASE_CHUNK_BYTES = 512 * 1024
PAD_SPLIT_BYTES = 512 * 1024
# 1: where the kernel finishes the output itself, its blocks run as one native job (0: as Python
# tasks, each calling the kernel).
NATIVE_TASKS = 1
# Flops of one image from which threads share a conv (conv_common.MIN_PARALLEL_FLOPS is 1e7 for the
# paths whose tasks go through Python): as a native job a split pays from far less. Two threads,
# batch 1 (benchmarks/ab_models.py, MIN_SPLIT_FLOPS=1e7 against 2e6, three runs): SqueezeNet
# 3.05 / 3.04 / 3.16 -> 2.82 / 2.76 / 2.90 ms (its expand 1x1 convs and 13x13 squeeze convs split);
# DenseNet-121 19.65 -> 19.31, Inception-v1 11.00 -> 10.80, ShuffleNet 2.72 -> 2.67.
MIN_SPLIT_FLOPS = 2e6
# Vectors of the flat row per tile. Three (24 accumulators with AVX-512) measured no better in
# ResNet-50 on one thread (benchmarks/ab_ops.py, VECTORS=2 -> 3: 95.4 -> 95.8 ms, 256->1024 on
# 14x14 8.39 -> 9.38, most other 1x1 convs 0.1-0.25 faster).
VECTORS = 2
# Output channels of an unpadded 1x1 conv's tiles, one vector wide, where its outputs are
# POINTWISE_MIN_PANELS or more panels of them exactly (AVX-512; 0: 8 x VECTORS as other convs):
# each pixel vector loaded serves 16 broadcast weights rather than 8, and a flat row ends on
# a narrower last tile. ResNet-50 at batch 1 (benchmarks/ab_ops.py, POINTWISE_ROWS=0 against 16):
# one thread, sums of per-op medians 101.4 -> 97.9 ms (256->1024 on 14x14 8.36 -> 7.80, 128->512
# on 28x28 5.45 -> 4.97, 64->256 on 56x56 6.34 -> 5.94); two threads 64->256 on 56x56 3.27 -> 2.96,
# 256->512 1x1/2 1.91 -> 1.66, 128->512 on 28x28 2.90 -> 2.69, 256->64 on 56x56 1.55 -> 1.63; the
# whole model (ab_models.py) 42.49 -> 41.22 and 44.80 -> 44.03 ms, DenseNet-121 39.57 -> 39.28.
# SqueezeNet's squeeze convs (1-4 panels of 16) lost 0.02-0.06 ms each, hence the minimum.
POINTWISE_ROWS = 16
POINTWISE_MIN_PANELS = 8
# 1: where the rows have no gap (1x1 stride-1 convs, read in place), tiles store each vector
# whole, its lanes being consecutive outputs (0: split at the output rows as with a gap, two or
# three masked stores and residual loads per vector on 14x14 maps). ResNet-50 on two threads,
# batch 1 (benchmarks/ab_ops.py, FLAT_TILES=0 against 1, two runs): 256->1024 on 14x14 4.00 ->
# 3.65 / 3.35 -> 3.18 ms, 64->256 on 56x56 2.39 -> 2.29 / 2.11 -> 2.03, 128->512 on 28x28 2.06
# -> 2.00 in the second; sums of per-op medians 43.35 -> 42.84 / 37.74 -> 37.31.
FLAT_TILES = 1
SEGMENTS = 3           # output rows one vector's lanes may fall in (phase rows of MIN_PHASE_COLUMNS or more)


def _rows(vl: int) -> int:
    """Output channels per tile: 8 x 2 accumulators of 16 floats (AVX-512), 4 x 2 of 8 (AVX2)."""
    return 8 if vl == 16 else 4


def tile_shape(g: ConvGeom | None, vl: int) -> tuple[int, int]:
    """(output channels, vectors) of g's tiles: POINTWISE_ROWS x one vector for an unpadded 1x1
    conv whose outputs are POINTWISE_MIN_PANELS or more panels of POINTWISE_ROWS exactly (AVX-512),
    else _rows x VECTORS."""
    rows = int(POINTWISE_ROWS)
    if (vl == 16 and rows and g is not None and _unpadded_1x1(g) and g.m % rows == 0
            and g.m // rows >= POINTWISE_MIN_PANELS):
        return rows, 1
    return _rows(vl), int(VECTORS)


def _tile_name(shape: str, with_res: bool, clamped: bool, flat: bool) -> str:
    return f"tile_{shape}{int(with_res)}{int(clamped)}{int(flat)}"


# Tile shapes as (name, vectors, lanes per vector given the host's vector floats): the full tile,
# and the narrower ones a flat row's last few outputs take (output maps of 14x14 leave 4 of a
# 32-wide tile; the full tile would run all of its FMAs for them).
NARROW_TILES = (("one", 1, 1), ("half", 1, 2))
# 1: the flat row's last outputs take the narrowest tile that holds them (0: the full tile).
TAIL_TILES = 1


def _tile_shapes(vectors: int) -> tuple[tuple[str, int, int], ...]:
    """The tile shapes a kernel of full tiles `vectors` wide is built with, widest first."""
    full = ("full", vectors, 1)
    narrow = tuple(shape for shape in NARROW_TILES if shape[1] < vectors * shape[2])
    return (full, *narrow) if int(TAIL_TILES) else (full,)


def _tile_ir(vl: int, mr: int, shape: str, vectors: int, with_res: bool, clamped: bool, flat: bool) -> str:
    """One tile: mr output channels x vectors*vl consecutive outputs of the flat row, the whole
    reduction; the residual added and the clamp applied on the way out where the variant has
    them. Flat position p (output row p // wq, column p % wq) is output element
    p - (p // wq) * gap, so a vector's lanes go out as up to SEGMENTS masked stores, one per
    output row it touches, the columns past the row's end (gap of them) left out. `flat`: the
    rows have no gap (wq == ow: 1x1 stride-1 convs read in place), so each vector is one store."""
    v, m1, iv = f"<{vl} x float>", f"<{vl} x i1>", f"<{vl} x i32>"
    segments = 1 if flat else SEGMENTS
    name = _tile_name(shape, with_res, clamped, flat)
    out = [f"define internal void @{name}(ptr %wp, ptr %x, ptr %off, ptr %y, ptr %res, "
           "ptr %bias, i64 %k_n, i64 %ldy, i64 %rows, i64 %cols, i64 %pos, i64 %wq, i64 %ow, float %lo, "
           "float %hi) alwaysinline {", "entry:"]
    # masks compare 32-bit lanes: one 16-lane compare, where 64-bit lanes take two and the loop
    # re-joined their halves on every step
    out += ["  %cols32 = trunc i64 %cols to i32"] + llvm_jit.splat("cs", "%cols32", vl, "i32")
    out += llvm_jit.splat("lov", "%lo", vl)
    out += llvm_jit.splat("hiv", "%hi", vl)
    out += ["  %gap = sub i64 %wq, %ow", "  %ow32 = trunc i64 %ow to i32", "  %wq32 = trunc i64 %wq to i32"]
    for j in range(vectors):
        out.append(f"  %mk{j} = icmp slt <{vl} x i32> {llvm_jit.lanes32(vl, j * vl)}, %cs")
        if flat:
            continue
        # lanes of segment s: [start, start + valid) with start = 0 / wq - x0 + (s - 1) * wq and
        # valid = ow - x0 / ow, where the vector starts at column x0 of output row r0
        out += [f"  %p{j} = add i64 %pos, {j * vl}", f"  %r0_{j} = udiv i64 %p{j}, %wq",
                f"  %x0_{j} = urem i64 %p{j}, %wq", f"  %x0s_{j} = trunc i64 %x0_{j} to i32"]
        for seg in range(SEGMENTS):
            t = f"{j}_{seg}"
            if seg == 0:
                start = "0"
                out.append(f"  %hi{t} = sub i32 %ow32, %x0s_{j}")
            else:
                start = f"%lo{t}"
                out += [f"  %rows_before{t} = mul i32 {seg - 1}, %wq32", f"  %rest{t} = sub i32 %wq32, %x0s_{j}",
                        f"  %lo{t} = add i32 %rows_before{t}, %rest{t}", f"  %hi{t} = add i32 %lo{t}, %ow32"]
            out += llvm_jit.splat(f"los{t}", start, vl, "i32") + llvm_jit.splat(f"his{t}", f"%hi{t}", vl, "i32")
            out += [f"  %ge{t} = icmp sge {iv} {llvm_jit.lanes32(vl)}, %los{t}",
                    f"  %lt{t} = icmp slt {iv} {llvm_jit.lanes32(vl)}, %his{t}",
                    f"  %in{t} = and {m1} %ge{t}, %lt{t}", f"  %sm{t} = and {m1} %in{t}, %mk{j}",
                    f"  %row{t} = add i64 %r0_{j}, {seg}", f"  %back{t} = mul i64 %row{t}, %gap",
                    f"  %so{t} = sub i64 {j * vl}, %back{t}"]
    for r in range(mr):
        out += [f"  %bq{r} = getelementptr float, ptr %bias, i64 {r}", f"  %bs{r} = load float, ptr %bq{r}, align 4"]
        out += llvm_jit.splat(f"bv{r}", f"%bs{r}", vl)
    out += llvm_jit.reduction_loop(vl, mr, vectors, lambda r, j: f"%bv{r}", "entry")
    out += ["  %oq = getelementptr i64, ptr %off, i64 %k", "  %xo = load i64, ptr %oq, align 8"]
    for j in range(vectors):
        out += [f"  %xo{j} = add i64 %xo, {j * vl}", f"  %xq{j} = getelementptr float, ptr %x, i64 %xo{j}",
                f"  %xv{j} = call {v} @llvm.masked.load.v{vl}f32.p0(ptr %xq{j}, i32 4, {m1} %mk{j}, "
                f"{v} zeroinitializer)"]
    out.append(f"  %wo = mul i64 %k, {mr}")
    out += llvm_jit.broadcast_fmas(vl, "%wp", "%wo", mr, [f"%xv{j}" for j in range(vectors)], "w")
    out += [llvm_jit.next_iteration("k", 1, "%k_n", "loop", "done"),
            "done:"]
    # one block per (vector, segment), skipped where none of its lanes is an output; within it
    # every channel's store, masked to the channels that exist
    for r in range(mr):
        out += [f"  %dr{r} = mul i64 {r}, %ldy", f"  %ok{r} = icmp slt i64 {r}, %rows"]
        out += llvm_jit.splat(f"oks{r}", f"%ok{r}", vl, "i1")
    ints = f"i{vl}"
    for j in range(vectors):
        for seg in range(segments):
            sj = f"{j}_{seg}"
            # a flat tile's vector is one segment: its lanes' mask, at its own offset in the row
            mask, offset = (f"%mk{j}", str(j * vl)) if flat else (f"%sm{sj}", f"%so{sj}")
            out += [f"  %bits{sj} = bitcast {m1} {mask} to {ints}", f"  %any{sj} = icmp ne {ints} %bits{sj}, 0",
                    f"  br i1 %any{sj}, label %store{sj}, label %next{sj}", f"store{sj}:"]
            for r in range(mr):
                t = f"{r}_{j}_{seg}"
                out += [f"  %do{t} = add i64 %dr{r}, {offset}", f"  %dq{t} = getelementptr float, ptr %y, i64 %do{t}",
                        f"  %cm{t} = and {m1} {mask}, %oks{r}"]
                value = f"%n{r}_{j}"
                if with_res:
                    out += [f"  %rq{t} = getelementptr float, ptr %res, i64 %do{t}",
                            f"  %rv{t} = call {v} @llvm.masked.load.v{vl}f32.p0(ptr %rq{t}, i32 4, {m1} %cm{t}, "
                            f"{v} zeroinitializer)",
                            f"  %sum{t} = fadd {v} {value}, %rv{t}"]
                    value = f"%sum{t}"
                if clamped:
                    lines, value = llvm_jit.clamp(vl, value, "%lov", "%hiv", t)
                    out += lines
                out.append(f"  call void @llvm.masked.store.v{vl}f32.p0({v} {value}, ptr %dq{t}, i32 4, {m1} %cm{t})")
            out += [f"  br label %next{sj}", f"next{sj}:"]
    out += ["  ret void", "}"]
    return "\n".join(out)


def _module_ir(vl: int, mr: int, vectors: int) -> str:
    """`conv`: chunks r0:r1 of `chunk` output rows of one image (the last one may be shorter),
    panels p0:p1 of mr output channels, tile by tile (vectors wide) along each chunk's flat row."""
    width = vectors * vl
    shapes = _tile_shapes(vectors)
    variants = [(r, c, f) for f in (False, True) for r in (False, True) for c in (False, True)]
    tile_calls = "\n".join(
        f"{_tile_name(shape, r, c, f)}:\n  call void @{_tile_name(shape, r, c, f)}(ptr %wpp, ptr %xc, ptr %off, "
        "ptr %yp, ptr %rp, ptr %bq, i64 %k, i64 %ldy, i64 %rows, i64 %cols, i64 %c, i64 %wq, i64 %ow, float %lo, "
        "float %hi)\n"
        "  br label %tile_done"
        for shape, _, _ in shapes for r, c, f in variants)
    # the tile for what is left of the flat row: half a vector, one, or the full tile
    cases = " ".join(f"i64 {8 * i + 4 * f + 2 * r + c}, label %{_tile_name(shape, r, c, f)}"
                     for i, (shape, _, _) in enumerate(shapes) for r, c, f in variants)
    pick, which = [], "0"
    for i, (_, narrow, per) in enumerate(shapes[1:], 1):
        pick += [f"  %left{i} = icmp ule i64 %cols, {narrow * vl // per}",
                 f"  %which{i} = select i1 %left{i}, i64 {8 * i}, i64 {which}"]
        which = f"%which{i}"
    pick += [f"  %which = add i64 {which}, %flat_variant",
             f"  switch i64 %which, label %{_tile_name('full', False, False, False)} [{cases}]"]
    declared = [line for lanes in sorted({vl // per for _, _, per in shapes})
                for line in llvm_jit.masked_declarations(lanes, fma=True)]
    return "\n\n".join([
        *declared,
        *[_tile_ir(vl // per, mr, shape, n, r, c, f) for shape, n, per in shapes for r, c, f in variants],
        f"""define void @conv(ptr %wp, ptr %x, ptr %off, ptr %y, ptr %res, ptr %bias, i64 %p0, i64 %p1, i64 %m, i64 %k,
                  i64 %r0, i64 %r1, i64 %chunk, i64 %oh, i64 %ow, i64 %wq, i64 %ldy, i64 %variant, float %lo,
                  float %hi) {{
entry:
  %no_gap = icmp eq i64 %wq, %ow
  %flat_on = and i1 %no_gap, {"true" if int(FLAT_TILES) else "false"}
  %flat_add = select i1 %flat_on, i64 4, i64 0
  %flat_variant = add i64 %variant, %flat_add
  br label %chunk_top
chunk_top:
  %q = phi i64 [%r0, %entry], [%q_next, %chunk_done]
  %row0 = mul i64 %q, %chunk
  %rows_left = sub i64 %oh, %row0
  %short = icmp slt i64 %rows_left, %chunk
  %chunk_rows = select i1 %short, i64 %rows_left, i64 %chunk
  %last_row = sub i64 %chunk_rows, 1
  %span0 = mul i64 %last_row, %wq
  %span = add i64 %span0, %ow
  %base = mul i64 %row0, %wq
  %xr = getelementptr float, ptr %x, i64 %base
  %ybase = mul i64 %row0, %ow
  br label %panel
panel:
  %p = phi i64 [%p0, %chunk_top], [%p_next, %panel_done]
  %ch0 = mul i64 %p, {mr}
  %left = sub i64 %m, %ch0
  %few = icmp slt i64 %left, {mr}
  %rows = select i1 %few, i64 %left, i64 {mr}
  %pk = mul i64 %p, %k
  %wo = mul i64 %pk, {mr}
  %wpp = getelementptr float, ptr %wp, i64 %wo
  %bq = getelementptr float, ptr %bias, i64 %ch0
  %yo0 = mul i64 %ch0, %ldy
  %yo = add i64 %yo0, %ybase
  %yr = getelementptr float, ptr %y, i64 %yo
  %rr = getelementptr float, ptr %res, i64 %yo
  br label %tiles
tiles:
  %c = phi i64 [0, %panel], [%c_next, %tile_done]
  %cols = sub i64 %span, %c
  %xc = getelementptr float, ptr %xr, i64 %c
  %yp = getelementptr float, ptr %yr, i64 %c
  %rp = getelementptr float, ptr %rr, i64 %c
{chr(10).join(pick)}
{tile_calls}
tile_done:
{llvm_jit.next_iteration("c", width, "%span", "tiles", "panel_done")}
panel_done:
{llvm_jit.next_iteration("p", 1, "%p1", "panel", "chunk_done")}
chunk_done:
{llvm_jit.next_iteration("q", 1, "%r1", "chunk_top", "exit")}
exit:
  ret void
}}""", _task_ir()])


# `task`'s argument slots (native_jobs.NativeJob): task i runs block i of panels or of chunks.
SLOTS = ("w", "x", "off", "y", "res", "bias", "m", "k", "chunk", "oh", "ow", "wq", "ldy", "variant", "lo", "hi",
         "by_panels", "panels", "chunks", "blocks")


def _task_ir() -> str:
    return native_jobs.task_ir(
        "@conv(ptr %w, ptr %x, ptr %off, ptr %y, ptr %res, ptr %bias, i64 %p0, i64 %p1, i64 %m, i64 %k, i64 %r0, "
        "i64 %r1, i64 %chunk, i64 %oh, i64 %ow, i64 %wq, i64 %ldy, i64 %variant, float %lo, float %hi)",
        SLOTS, {"w", "x", "off", "y", "res", "bias", "blocks"}, {"lo", "hi"},
        ["  %across = icmp ne i64 %by_panels, 0", "  %p0 = select i1 %across, i64 %first, i64 0",
         "  %p1 = select i1 %across, i64 %last, i64 %panels", "  %r0 = select i1 %across, i64 0, i64 %first",
         "  %r1 = select i1 %across, i64 %chunks, i64 %last"])


_ARGS = [ctypes.c_void_p] * 6 + [ctypes.c_int64] * 12 + [ctypes.c_float] * 2


def _kernel(shape: tuple[int, int] | None = None):
    """The compiled module for tiles of `shape` (tile_shape; by default other convs' shape)."""
    mr, vectors = shape or tile_shape(None, llvm_jit.vector_floats())
    return llvm_jit.compile_module(f"phase_conv{int(TAIL_TILES)}_{vectors}_{int(FLAT_TILES)}_{mr}",
                                   lambda vl: _module_ir(vl, mr, vectors),
                                   {"conv": _ARGS, "task": native_jobs.TASK_ARGS})


def phase_shape(g: ConvGeom) -> tuple[int, ...]:
    """(sh, sw, C, rows, cols) of one image's padded stride phases (conv_common.pad_phases); for an
    unpadded 1x1 conv, the one phase its taps read: (1, 1, C, *output size)."""
    if _unpadded_1x1(g):
        return (1, 1, g.c) + tuple(g.out_sp)
    (sh, sw), (hp, wp) = g.strides, g.pad_sp
    return (sh, sw, g.c, -(-hp // sh), -(-wp // sw))


def _unpadded_1x1(g: ConvGeom) -> bool:
    return len(g.kernel) == 2 and g.kernel == (1, 1) and not g.padded


def read_in_place(g: ConvGeom) -> bool:
    """1x1 stride-1 unpadded convs: the input itself is the one phase, read where it lies."""
    return _unpadded_1x1(g) and g.strides == (1, 1)


def _fill_phases(g: ConvGeom, x: np.ndarray, phases: np.ndarray) -> None:
    """One image (or channel range of it) into its phases: padded and split by stride, or, for a
    strided 1x1 conv, every stride-th pixel."""
    if not _unpadded_1x1(g):
        pad_phases(x, phases, g.pb, g.strides)
        return
    calls = _phase_fills(g, x, phases)
    if calls is None:
        np.copyto(phases[0, 0], x[:, ::g.strides[0], ::g.strides[1]][:, :g.out_sp[0], :g.out_sp[1]])
    for call in calls or ():
        call()


def _phase_fills(g: ConvGeom, x: np.ndarray, phases: np.ndarray) -> list[Callable[[], None]] | None:
    """_fill_phases as compiled calls bound to these arrays (omrt.kernels.pad_jit; a strided 1x1
    conv's pixels by its every-other-one pass), or None where numpy does it."""
    if not _unpadded_1x1(g):
        return phase_pads(x, phases, g.pb, g.strides)
    if g.strides == (2, 2) and pad_jit.fits(x, phases[0, 0]):
        return [pad_jit.bound_pad(x, phases[0, 0], 0, 0, step=2)]
    return None


def phase_shaped(g: ConvGeom, dtype: np.dtype, const_weights: bool) -> bool:
    """2-D group-1 convs with constant weights, float32 or float16 (computed in float32), on phase
    rows of MIN_PHASE_COLUMNS or more: kernels of 3x3 or more over at most MAX_CHANNELS inputs, and
    unpadded 1x1 ones (stride 1 read in place, strided ones from their sampled pixels) over at
    most POINTWISE_MAX_CHANNELS inputs, where the packed kernel does not take them, nor, over a
    batch, the pixel GEMM. The shape alone decides the planned workspace, so it does not depend
    on whether the micro-kernel runs where the model is compiled."""
    if len(g.kernel) != 2 or g.group != 1 or not const_weights or np.dtype(dtype) not in (np.float16, np.float32):
        return False
    if phase_shape(g)[4] < MIN_PHASE_COLUMNS:
        return False
    if _unpadded_1x1(g):
        return (g.c <= POINTWISE_MAX_CHANNELS and not packed_shape(g, dtype, const_weights)
                and (g.n == 1 or not pixel_shape(g, dtype, const_weights)))
    deep_strided = strided_gather(g) and packed_shape(g, dtype, const_weights)   # the packed kernel's
    return g.c <= MAX_CHANNELS and min(g.kernel) >= 3 and not deep_strided


def phase_eligible(g: ConvGeom, dtype: np.dtype, const_weights: bool) -> bool:
    """phase_shaped float32 convs, where the micro-kernel runs."""
    return (np.dtype(dtype) == np.float32 and phase_shaped(g, dtype, const_weights)
            and _kernel(tile_shape(g, llvm_jit.vector_floats())) is not None)


def phase_workspace(g: ConvGeom) -> int:
    """One image's phases (images go through one after another); none where the kernel reads the
    input in place."""
    return 0 if read_in_place(g) else int(np.prod(phase_shape(g))) * g.itemsize


def _chunk_bytes(g: ConvGeom, rows: int) -> int:
    """Phase bytes `rows` output rows read: every phase's rows under them and the taps' reach."""
    sh, sw, c, _, wq = phase_shape(g)
    reach = -(-((g.kernel[0] - 1) * g.dilations[0] + 1) // sh)
    return sh * sw * c * (rows + reach) * wq * 4


def work_split(g: ConvGeom, panels: int, parts: int) -> tuple[int, bool]:
    """(output rows per chunk, whether threads take blocks of panels rather than of chunks).

    A chunk's flat row runs through every tile of every panel, so its phase rows should stay in
    L2 (PHASE_CHUNK_BYTES), and the fewer chunks, the fewer part-empty tiles at chunk ends. A
    map whose phases fit runs as one chunk with threads on blocks of panels; a larger one as equal
    chunks, a multiple of the threads, threads on blocks of them."""
    oh = g.out_sp[0]
    if _chunk_bytes(g, oh) <= PHASE_CHUNK_BYTES and (panels >= parts or parts == 1):
        return oh, parts > 1
    pieces = parts
    while True:
        rows = -(-oh // pieces)
        if rows == 1 or _chunk_bytes(g, rows) <= PHASE_CHUNK_BYTES:
            return rows, False
        pieces += parts


def tile_fill(g: ConvGeom) -> float:
    """Share of the tiles' lanes that hold outputs on a map that runs as one chunk (the rest are
    the gaps between output rows and the last tile's unused lanes): 13x13 outputs on 15-wide
    phase rows, 169 of 200 lanes with AVX-512 (six full tiles and half a vector)."""
    vl = llvm_jit.vector_floats()
    if not vl:
        return 1.0
    wq = phase_shape(g)[4]
    oh, ow = g.out_sp
    span = (oh - 1) * wq + ow
    vectors = tile_shape(g, vl)[1]
    width = vectors * vl
    full, left = divmod(span, width)
    last = min((lanes for lanes in (n * vl // per for _, n, per in _tile_shapes(vectors)) if lanes >= left),
               default=width)
    return oh * ow / (full * width + (last if left else 0))


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
    tiles = tile_shape(g, llvm_jit.vector_floats())
    mr = tiles[0]
    depth = g.c * g.k_size
    weights = packed_gemm.shared_panels(w_const.reshape(g.m, depth), mr)[0]
    panels = weights.shape[0]
    bias = packed_gemm.panel_bias(b_const, g.m, panels, mr)
    offsets = tap_offsets(g)
    shape = phase_shape(g)
    (oh_n, ow_n), wq = g.out_sp, shape[4]
    kernel = _kernel(tiles)
    conv = kernel["conv"]
    parts = pool.size if g.image_flops >= MIN_SPLIT_FLOPS else 1
    chunk, by_panels = work_split(g, panels, parts)
    chunks = -(-oh_n // chunk)
    blocks = task_blocks(panels if by_panels else chunks, parts)
    # Padding into the phases runs on the caller; from PAD_SPLIT_BYTES of phases the
    # threads pad channel ranges each (the conv alone on two threads: ResNet-50's 128->128 3x3/2 on
    # 56x56 0.733 -> 0.680 ms, DenseNet's 128->32 on 56x56 0.641 -> 0.612; on SqueezeNet's 16
    # channels of 55x55, 0.2 MB, a split cost 5 us; from 512 KB rather than 1 MB, ResNet-50's
    # 0.6 MB stem 1.52 -> 1.46 ms). A strided 1x1 conv's pixels are sampled on the caller by
    # their compiled pass whatever their size: split, numpy samples them (ResNet-50's 256->512
    # 1x1/2 in the model 1.23 -> 1.33 ms).
    phase_floats = int(np.prod(shape))
    split_pad_ok = phase_floats * 4 >= PAD_SPLIT_BYTES and not _unpadded_1x1(g)
    channel_pieces = split(g.c, parts if split_pad_ok else 1)
    # The kernel adds the residual and applies the activation as it stores, where the activation
    # is a clamp (Relu, Clip or none) and no bias comes at run time (that must go first, in finish).
    clamp = epi.clamp
    # Constant arrays' addresses taken once: ndarray.ctypes costs about 0.8 us a call.
    w_at, off_at, bias_at = weights.ctypes.data, offsets.ctypes.data, bias.ctypes.data
    plane = oh_n * ow_n
    # The tasks as a native job (omrt.kernels.native_jobs) where the kernel finishes the output
    # itself: threads run them without the GIL.
    job = native_jobs.NativeJob(kernel["task"], SLOTS, blocks, (weights, offsets, bias), w=w_at, off=off_at,
                                bias=bias_at, m=g.m, k=depth, chunk=chunk, oh=oh_n, ow=ow_n, wq=wq, ldy=plane,
                                by_panels=int(by_panels), panels=panels, chunks=chunks)
    native = bool(NATIVE_TASKS)
    in_place = read_in_place(g)
    # A batch-1 conv that pads on one thread and finishes in the kernel runs the same calls on the
    # same planned buffers every time: the (inputs, outputs, scratch) it was last set up for and
    # its bound padding calls, so a repeat run is those calls and the job (omrt's per-op cost
    # matters on models of many small convs).
    repeat: list = [None, ()]
    # A pad split over the threads runs as a native job (omrt.kernels.pad_jit.phase_pad_job), made
    # on the first run that can take it, where Python tasks would hand the GIL between the threads:
    # ResNet-50's 128->128 3x3/2 on 56x56 alone on two threads 0.730 -> 0.626 ms (ResNet-50 and
    # DenseNet-121 as a whole equal: 21.40 / 21.40 and 17.87 / 17.90 ms).
    split_pad = pad_jit.SplitPad(g.pb, g.strides, channel_pieces)

    def pad_calls(xn: np.ndarray, phases: np.ndarray) -> list[Callable[[], None]] | None:
        """The compiled calls that pad image xn into the phases, bound to both: on the caller, or
        as one job over the threads' channel ranges; None where numpy pads."""
        if len(channel_pieces) == 1:
            return _phase_fills(g, xn, phases)
        job = split_pad.job(xn, phases)
        return None if job is None else [functools.partial(job.run, pool)]

    def run(inputs, outputs, scratch):
        last = repeat[0]
        if (last is not None and last[0] is scratch and len(inputs) == len(last[1])
                and all(a is b for a, b in zip(inputs, last[1])) and all(a is b for a, b in zip(outputs, last[2]))):
            for call in repeat[1]:
                call()
            job.run(pool)
            return
        repeat[0] = None
        x, y = inputs[0], outputs[0]
        b_in, res = split_inputs(inputs, epi.residual)
        b3 = None if b_in is None or b_const is not None else b_in.reshape(g.m, 1, 1)
        in_kernel = clamp is not None and b3 is None and (res is None or res.flags.c_contiguous)
        lo, hi = clamp if in_kernel else (-np.inf, np.inf)
        variant = 2 * int(in_kernel and res is not None) + int(in_kernel and (lo, hi) != (-np.inf, np.inf))
        phases = None if in_place else scratch.view(np.float32)[:phase_floats].reshape(shape)
        phases_at = 0 if in_place else phases.ctypes.data
        for n in range(g.n):
            xn = x[n]

            def pad(i: int) -> None:
                c0, c1 = channel_pieces[i]
                _fill_phases(g, xn[c0:c1], phases[:, :, c0:c1])

            if in_place:
                xn = np.ascontiguousarray(xn)  # planned tensors are; held until the job is done
                phases_at = xn.ctypes.data
                fills: list | tuple | None = ()
            else:
                fills = pad_calls(xn, phases)
                if fills is None:
                    pool.run(pad, len(channel_pieces))
                for call in fills or ():
                    call()
            yn = y[n]
            rn = res[n] if res is not None else None
            y_at = yn.ctypes.data
            res_at = rn.ctypes.data if in_kernel and rn is not None else y_at

            if in_kernel and native:
                job.set(x=phases_at, y=y_at, res=res_at, variant=variant, lo=float(lo), hi=float(hi))
                job.run(pool)
                if g.n == 1 and fills is not None and x.flags.c_contiguous:
                    repeat[:] = [(scratch, list(inputs), list(outputs)), fills]
                continue

            def task(i: int) -> None:
                a, b = blocks[i]
                p0, p1, r0, r1 = (a, b, 0, chunks) if by_panels else (0, panels, a, b)
                conv(w_at, phases_at, off_at, y_at, res_at, bias_at, p0, p1, g.m, depth, r0, r1, chunk, oh_n, ow_n,
                     wq, plane, variant, lo, hi)
                if not in_kernel:
                    m0, m1 = p0 * mr, min(g.m, p1 * mr)
                    rows = slice(r0 * chunk, r1 * chunk)
                    finish(epi, yn[m0:m1, rows], None if b3 is None else b3[m0:m1],
                           None if rn is None else rn[m0:m1, rows])

            pool.run(task, len(blocks))

    # With a clamp for activation (and no bias at run time, conv._bias_fixed) the kernel reads
    # each residual element just before it writes the output element in its place, so the two may
    # share bytes (conv._conv_overwrites).
    run.residual_first = clamp is not None
    return run
