"""What every Conv path shares: geometry, padding, window views, work splitting, epilogue helpers.

Work splitting: tasks own whole images, blocks of output channels (group-1 GEMMs of one image),
or output columns (pixels). Bias, residual and activation (omrt.kernels.epilogue) run on whole
images, on channel blocks or row bands while still in cache, or, after column pieces, as a second
pass over contiguous channel blocks (numpy's elementwise loops are slow on column slices).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
from numpy.lib.stride_tricks import as_strided

from omrt.kernels import pad_jit
from omrt.kernels.base import OpSpec
from omrt.kernels.epilogue import Epilogue
from omrt.kernels.parallel import split

def compute_itemsize(dtype: Any) -> int:
    """Bytes per element the kernel computes in (float16 is computed in float32)."""
    dt = np.dtype(dtype)
    return 4 if dt == np.float16 else dt.itemsize


def same_pads(in_sp: Sequence[int], k_eff: Sequence[int], strides: Sequence[int],
              auto_pad: str, pads: Sequence[int] | None) -> tuple[list[int], list[int]]:
    """(begin, end) pads per spatial axis under ONNX auto_pad rules for Conv and pooling."""
    nd = len(in_sp)
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        pb, pe = [], []
        for i in range(nd):
            out = -(-in_sp[i] // strides[i])
            total = max(0, (out - 1) * strides[i] + k_eff[i] - in_sp[i])
            small, big = total // 2, total - total // 2
            pb.append(small if auto_pad == "SAME_UPPER" else big)
            pe.append(big if auto_pad == "SAME_UPPER" else small)
        return pb, pe
    if auto_pad == "VALID" or not pads:
        return [0] * nd, [0] * nd
    return list(pads[:nd]), list(pads[nd:])


def pad_into(x: np.ndarray, buf: np.ndarray, pb: Sequence[int], fill: float = 0.0) -> None:
    """Copy x (lead dims + spatial) into the interior of buf and fill only the border slabs (in one
    compiled pass over 2-D planes where omrt.kernels.pad_jit takes them)."""
    if len(pb) == 2 and pad_jit.fits(x, buf):
        pad_jit.pad_planes(x, buf, pb[0], pb[1], fill)
        return
    lead = x.ndim - len(pb)
    interior = tuple(slice(None) for _ in range(lead)) + tuple(slice(p, p + n) for p, n in zip(pb, x.shape[lead:]))
    np.copyto(buf[interior], x)
    for d, p in enumerate(pb):
        ax = lead + d
        n = x.shape[ax]
        idx: list[Any] = [slice(None)] * buf.ndim
        if p > 0:
            idx[ax] = slice(0, p)
            buf[tuple(idx)] = fill
        if buf.shape[ax] > p + n:
            idx[ax] = slice(p + n, None)
            buf[tuple(idx)] = fill


def pad_phases(x: np.ndarray, phases: np.ndarray, pb: Sequence[int], strides: Sequence[int]) -> None:
    """Pad one image x (C, H, W) with zeros straight into its stride phases: phases[i, j, c, a, b]
    is padded pixel (i + sh*a, j + sw*b), so every tap of a strided window reads one contiguous
    run of a phase instead of every other pixel of a row."""
    calls = phase_pads(x, phases, pb, strides)
    if calls is not None:
        for call in calls:
            call()
        return
    sh, sw = strides
    if (sh, sw) == (1, 1):
        pad_into(x, phases[0, 0], pb[:2])
        return
    (pt, pl), (h, w) = pb[:2], x.shape[1:]
    hq, wq = phases.shape[3:]
    phases.fill(0)
    for i in range(sh):
        a0 = -(-(pt - i) // sh) if pt > i else 0        # first phase row holding an input row
        h0 = i + sh * a0 - pt
        na = min(hq - a0, len(range(h0, h, sh)))
        for j in range(sw):
            b0 = -(-(pl - j) // sw) if pl > j else 0
            w0 = j + sw * b0 - pl
            nb = min(wq - b0, len(range(w0, w, sw)))
            if na > 0 and nb > 0:
                np.copyto(phases[i, j, :, a0:a0 + na, b0:b0 + nb], x[:, h0::sh, w0::sw][:, :na, :nb])


def phase_pads(x: np.ndarray, phases: np.ndarray, pb: Sequence[int],
               strides: Sequence[int]) -> list[Callable[[], None]] | None:
    """pad_phases(x, phases, pb, strides) as compiled calls bound to these arrays' addresses
    (omrt.kernels.pad_jit: stride 1, or 2 with a call per phase), or None where it does not take
    them."""
    sh, sw = strides
    if (sh, sw) not in ((1, 1), (2, 2)) or not pad_jit.fits(x, phases[0, 0]):
        return None
    pt, pl = pb[:2]
    if (sh, sw) == (1, 1):
        return [pad_jit.bound_pad(x, phases[0, 0], pt, pl)]
    return [pad_jit.bound_pad(x, phases[i, j], pt - i, pl - j, step=2) for i in range(2) for j in range(2)]


def windows(buf: np.ndarray, kernel: Sequence[int], out_sp: Sequence[int],
            strides: Sequence[int], dilations: Sequence[int]) -> np.ndarray:
    """Read-only view (lead..., *kernel, *out) of buf's sliding windows."""
    nd = len(kernel)
    lead = buf.shape[:-nd]
    sp_strides = buf.strides[-nd:]
    shape = tuple(lead) + tuple(kernel) + tuple(out_sp)
    st = (tuple(buf.strides[:-nd]) + tuple(s * d for s, d in zip(sp_strides, dilations))
          + tuple(s * t for s, t in zip(sp_strides, strides)))
    return as_strided(buf, shape=shape, strides=st, writeable=False)


@dataclass
class WindowGeom:
    """Sliding-window geometry shared by convolution and pooling, fixed at build time."""

    n: int
    c: int
    in_sp: tuple[int, ...]
    out_sp: tuple[int, ...]
    kernel: tuple[int, ...]
    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    pb: tuple[int, ...]
    pe: tuple[int, ...]
    itemsize: int

    @property
    def padded(self) -> bool:
        return any(self.pb) or any(self.pe)

    @property
    def pad_sp(self) -> tuple[int, ...]:
        """Padded extent, large enough for every window the output reads."""
        return tuple(max(i + b + e, (o - 1) * s + (k - 1) * d + 1)
                     for i, b, e, o, s, k, d in zip(self.in_sp, self.pb, self.pe, self.out_sp,
                                                    self.strides, self.kernel, self.dilations))


def window_geom(spec: OpSpec, kernel: tuple[int, ...]) -> WindowGeom:
    """Strides, dilations and pads (explicit or auto_pad) of a Conv or pooling op."""
    x, y = spec.inputs[0], spec.outputs[0]
    nd = len(x.shape) - 2
    strides = tuple(spec.attr("strides") or [1] * nd)
    dil = tuple(spec.attr("dilations") or [1] * nd)
    k_eff = [(k - 1) * d + 1 for k, d in zip(kernel, dil)]
    pb, pe = same_pads(x.shape[2:], k_eff, strides, spec.attr("auto_pad", "NOTSET"), spec.attr("pads"))
    return WindowGeom(x.shape[0], x.shape[1], tuple(x.shape[2:]), tuple(y.shape[2:]), kernel, strides, dil,
                      tuple(pb), tuple(pe), compute_itemsize(y.dtype))


@dataclass
class ConvGeom(WindowGeom):
    """Everything about a Conv that does not change between calls."""

    m: int = 0
    group: int = 1

    @property
    def direct_view(self) -> bool:
        """1x1, stride 1, unpadded (any group): the input already is the GEMM operand."""
        return all(k == 1 for k in self.kernel) and all(s == 1 for s in self.strides) and not self.padded

    @property
    def pointwise(self) -> bool:
        return self.group == 1 and self.direct_view

    @property
    def depthwise(self) -> bool:
        return self.group == self.c == self.m and self.group > 1

    @property
    def k_size(self) -> int:
        return int(np.prod(self.kernel))

    @property
    def p_size(self) -> int:
        return int(np.prod(self.out_sp))

    @property
    def same_3x3(self) -> bool:
        """3x3, stride 1, dilation 1, one pixel of padding on every side: output size = input size,
        the shape the compiled loops read in place (omrt.kernels.window_jit, *_same3x3)."""
        return (self.kernel == (3, 3) and self.strides == (1, 1) and self.dilations == (1, 1)
                and self.pb == (1, 1) and self.pe == (1, 1) and self.out_sp == self.in_sp)

    @property
    def padded_elems(self) -> int:
        """Elements of one padded image (0 when the conv needs no padding)."""
        return self.c * int(np.prod(self.pad_sp)) if self.padded else 0

    @property
    def image_flops(self) -> float:
        """Flops of the direct convolution of one image (2 per multiply-add): what every path's
        threading and path thresholds are measured against."""
        return 2.0 * self.m * (self.c // self.group) * self.k_size * self.p_size


def conv_geom(spec: OpSpec) -> ConvGeom:
    if spec.attr("_winograd"):
        kernel = tuple(spec.attr("kernel_shape") or (3, 3))
    else:
        kernel = tuple(spec.attr("kernel_shape") or spec.inputs[1].shape[2:])
    window = window_geom(spec, kernel)
    return ConvGeom(**vars(window), m=spec.outputs[0].shape[1], group=int(spec.attr("group", 1)))


def edge_masks(g: ConvGeom) -> tuple[np.ndarray, np.ndarray]:
    """(left, right) for the *_same3x3 loops: 0 where an output is in its plane's first / last
    column, else 1."""
    column = np.arange(g.p_size) % g.in_sp[1]
    return (column != 0).astype(np.uint8), (column != g.in_sp[1] - 1).astype(np.uint8)


def split_inputs(inputs: Sequence[np.ndarray | None], residual: bool, first_bias: int = 2):
    """(bias or None, residual or None) from a producer's input list."""
    n = len(inputs)
    res = inputs[n - 1] if residual else None
    nb = n - 1 if residual else n
    bias = inputs[first_bias] if nb > first_bias else None
    return bias, res


CHUNK_BYTES = 512 * 1024   # output bytes per task: the epilogue then runs on data still in L2
# Below this, handing half a conv to a second thread costs more than it saves. Since the pool's
# workers poll for the next job between ops (omrt.kernels.parallel), a hand-off costs 10-20 us
# rather than a 40-60 us wake-up, so 1e7 flops (40 us on one Zen 5 core) repays it. Two threads,
# batch 1 (benchmarks/ab_models.py, MIN_PARALLEL_FLOPS=4e7 against 1e7): DenseNet-121 22.36 ->
# 21.61 ms, SqueezeNet-1.1 3.80 -> 3.71 (5e6 no faster). In the VM's slow state, where every
# hand-off costs more, 4e7 was the faster (DenseNet-121 33.1 against 34.1 ms).
MIN_PARALLEL_FLOPS = 1e7
MIN_COLS = 16              # narrower GEMM pieces lose more to packing than threads gain
# Smaller epilogues run on the calling thread: a memory-bound pass gains little from a second
# thread on this class of machine, and waking one costs more than a small pass.
EPILOGUE_PARALLEL_BYTES = 4 * 1024 * 1024
BAND_MIN_COLS = 512        # im2col row bands narrower than this multiply channel blocks instead
CHANNEL_ALIGN = 16         # channel blocks start on multiples of this
# Scratch slots a batch can be spread over (whole-image tasks, each in a slot of its own): a count
# that depends only on the batch, so work memory planned at compile time fits any thread count.
IMAGE_SLOTS = 8


def task_parts(total_bytes: float, threads: int, flops: float, min_flops: float = MIN_PARALLEL_FLOPS,
               chunk: int = CHUNK_BYTES) -> int:
    """How many pieces to cut an op into: a multiple of the thread count, each about `chunk` bytes."""
    if threads == 1 or flops < min_flops:
        return 1
    by_cache = -(-int(total_bytes) // chunk)
    return threads * max(1, -(-by_cache // threads))


def col_ranges(p: int, parts: int) -> list[tuple[int, int]]:
    parts = max(1, min(parts, p // MIN_COLS))
    return split(p, parts, 16 if p >= 16 * parts else 1)


def finish(epi: Epilogue, y: np.ndarray, bias: np.ndarray | None, res: np.ndarray | None) -> None:
    """Bias, residual and activation on one piece of the output, right after it was computed."""
    if epi.fused(y, bias, res):
        return
    if bias is not None:
        np.add(y, bias, out=y)
    epi(y, res)


def finish_staged(epi: Epilogue, out: np.ndarray, valid: np.ndarray, bias: np.ndarray | None,
                  res: np.ndarray | None) -> None:
    """Move `valid` (a view of a staging buffer) into out with the bias added in the same pass,
    then the residual and activation."""
    if bias is not None:
        np.add(valid, bias, out=out)
    else:
        np.copyto(out, valid)
    epi(out, res)


def res_view(res: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray | None:
    return None if res is None else res.reshape(shape)


def finish_blocks(pool, epi: Epilogue, y2: np.ndarray, bias2: np.ndarray | None, res2: np.ndarray | None,
                   ranges: list[tuple[int, int]]) -> None:
    """Bias, residual and activation over contiguous channel blocks of one image's (M, P) output.

    GEMM tasks own column slices (see the note on work splitting); on a column slice numpy's
    elementwise loops pay per row and cost more than the GEMM itself, so the epilogue runs as a
    second pass over whole channels, which is elementwise and so exact on any split.
    """
    if y2.nbytes < EPILOGUE_PARALLEL_BYTES:
        finish(epi, y2, bias2, res2)
        return

    def task(i: int) -> None:
        a, b = ranges[i]
        finish(epi, y2[a:b], None if bias2 is None else bias2[a:b], None if res2 is None else res2[a:b])

    pool.run(task, len(ranges))
