"""Winograd's stages (omrt.kernels.winograd) as native jobs: compiled tasks the pool's threads run
without the GIL (omrt.kernels.native_jobs).

Why: as Python tasks, each of a Winograd conv's jobs (pad, then tile bands; or pad, input
transform by input channels, then GEMM and output by output channels) waits for a worker to take
the GIL and pays a Python call per task, and in this kind of virtual machine's slow state the
convs doubled where the native ones grew by a fifth (ResNet-50's three 64->64 on 56x56: 2.70 ->
5.39 ms). Here each job is one compiled `task(args, i)`: a numba cfunc over the same compiled
passes (omrt.kernels.winograd_jit) that calls the packed GEMM and the pad kernel at their entry
addresses. Figures at omrt.kernels.winograd.NATIVE_JOBS.

A kernel's arguments are one int64 array (the slots below), its tables of tasks beside it; the
addresses of input, output, residual and bias are rewritten on each run.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from omrt.kernels import jit, native_jobs, packed_gemm, pad_jit, winograd_jit

# The argument slots; the tables follow them in the same array, at the offsets their slots hold.
(LENGTH, X, Y, RES, BIAS, BUF, WORK_A, WORK_B, WORK_O, N, C, M, H, W, HO, WO, HP, WP, TOP, LEFT, TH, TW,
 IN_PLACE, PANELS, PANEL_BIAS, W_STEP, ACC, ACC_FLOATS, GEMM, PAD, ACT, LO, HI, HAS_RES, FIRST_TABLE,
 SECOND_TABLE, TASKS, A_W, B_W, TILES_IN, TILES_OUT, SLOT_COUNT) = range(42)

if jit.numba is not None:
    import numba
    from llvmlite import ir
    from numba import types
    from numba.core import cgutils
    from numba.extending import intrinsic

    @intrinsic
    def _floats_at(typingctx, address):
        """A float32 pointer from an address held as int64 (for numba.carray)."""
        sig = types.CPointer(types.float32)(types.int64)

        def codegen(context, builder, signature, args):
            return builder.inttoptr(args[0], context.get_value_type(signature.return_type))
        return sig, codegen

    @intrinsic
    def _call_at(typingctx, function, arguments):
        """Call the C function at an address (int64) with a tuple of int64 and float32 arguments
        (on x86-64 a pointer parameter takes an int64 in the same register)."""
        sig = types.void(function, arguments)

        def codegen(context, builder, signature, args):
            address, packed = args
            values = cgutils.unpack_tuple(builder, packed, len(arguments))
            fnty = ir.FunctionType(ir.VoidType(), [context.get_value_type(t) for t in arguments.types])
            builder.call(builder.inttoptr(address, fnty.as_pointer()), values)
            return context.get_dummy_value()
        return sig, codegen
else:  # pragma: no cover - the kernels then keep their Python tasks
    numba = None

_MINUS_INF, _PLUS_INF, _ZERO = np.float32(-np.inf), np.float32(np.inf), np.float32(0)


@jit.inlined
def _slots(a):
    """The arguments and tables of a job, as int64."""
    head = numba.carray(a, SLOT_COUNT, dtype=np.int64)
    return numba.carray(a, head[LENGTH], dtype=np.int64)


@jit.inlined
def _pad(s, first, last):
    """Planes first:last of the batch (image-major, then channel) into the padded buffer."""
    h, w, hp, wp = s[H], s[W], s[HP], s[WP]
    _call_at(s[PAD], (s[X] + 4 * first * h * w, s[BUF] + 4 * first * hp * wp, last - first, h, w, hp, wp,
                      s[TOP], s[LEFT], np.int64(1), _ZERO))


def tiles_in(a, v_at, d_at, n0, ni, r0, rb, c0, c1):
    """B^T d B of the tiles of images n0.. and tile rows r0.. (input channels c0:c1) into
    (36, C, columns) at v_at: read in place, or gathered into (36, C, columns) at d_at first."""
    s = _slots(a)
    c, tw = s[C], s[TW]
    cols = ni * rb * tw
    buf = numba.carray(_floats_at(s[BUF]), (s[N], c, s[HP], s[WP]))
    v = numba.carray(_floats_at(v_at), (36, c, cols))
    if s[IN_PLACE] != 0:
        winograd_jit.transform_in_tiles(buf, v, n0, ni, r0, rb, tw, c0, c1)
        return
    d = numba.carray(_floats_at(d_at), (36, c, cols))
    winograd_jit.gather_tiles(buf, d, n0, ni, r0, rb, tw, c0, c1)
    winograd_jit.transform_in(d.reshape(36, c * cols), v.reshape(36, c * cols), c0 * cols, c1 * cols)


@jit.inlined
def _gemm(s, v_at, mo_at, cols, lo, hi, acc_at):
    """Output channels lo:hi (from a panel's first row) of the 36 products U V, V (36, C, cols)
    at v_at, into (36, cols, hi - lo) at mo_at: the packed GEMM's transposed output."""
    rows = packed_gemm.PANEL_ROWS
    first, last, mb, c = lo // rows, (hi + rows - 1) // rows, hi - lo, s[C]
    y_at = mo_at - 4 * first * rows
    _call_at(s[GEMM], (s[PANELS], v_at, y_at, s[PANEL_BIAS], acc_at, first, last, s[M], c, cols, cols, mb,
                       np.int64(1), np.int64(36), s[W_STEP], c * cols, cols * mb, y_at, _MINUS_INF, _PLUS_INF,
                       np.int64(0)))


def tiles_out(a, mo_at, o_at, cols, lo, hi, n0, r0, rb):
    """A^T M A of (36, cols, hi - lo) at mo_at, through (16, ...) at o_at, into output channels
    lo:hi of the tiles of images n0.. and tile rows r0..: bias, residual and activation on the way."""
    s = _slots(a)
    mb = hi - lo
    shape = (s[N], s[M], s[HO], s[WO])
    mo = numba.carray(_floats_at(mo_at), (36, cols * mb))
    o = numba.carray(_floats_at(o_at), (16, cols * mb))
    winograd_jit.transform_out(mo, o, 0, cols * mb)
    y = numba.carray(_floats_at(s[Y]), shape)
    res = numba.carray(_floats_at(s[RES]), shape)
    bias = numba.carray(_floats_at(s[BIAS] + 4 * lo), (mb,))
    floats = s.view(np.float32)
    winograd_jit.scatter_out(o.reshape(16, cols, mb).transpose(0, 2, 1), y, lo, n0, r0, rb, s[TW], bias, res,
                             s[HAS_RES] != 0, s[ACT], floats[2 * LO], floats[2 * HI])


def pad_task(a, i):
    """Task i: the planes of pair i of the first table padded."""
    s = _slots(a)
    at = s[FIRST_TABLE] + 2 * i
    _pad(s, s[at], s[at + 1])


def band_task(a, i):
    """Task i: run i of the second table (first task, end task, first tile column), each task in
    turn (its images and tile rows in the task table) transformed, multiplied and put out in the
    run's part of the scratch."""
    s = _slots(a)
    at = s[SECOND_TABLE] + 3 * i
    col0 = s[at + 2]
    a_at, b_at = s[WORK_A] + 4 * s[A_W] * col0, s[WORK_B] + 4 * s[B_W] * col0
    acc_at = s[ACC] + 4 * i * s[ACC_FLOATS]
    for t in range(s[at], s[at + 1]):
        q = s[TASKS] + 4 * t
        n0, r0 = s[q], s[q + 2]
        ni, rb = s[q + 1] - n0, s[q + 3] - r0
        cols = ni * rb * s[TW]
        _call_at(s[TILES_IN], (a, b_at, a_at, n0, ni, r0, rb, np.int64(0), s[C]))
        _gemm(s, b_at, a_at, cols, np.int64(0), s[M], acc_at)
        _call_at(s[TILES_OUT], (a, a_at, b_at, cols, np.int64(0), s[M], n0, r0, rb))


def channel_in_task(a, i):
    """Task i: the input channels of pair i of the first table, of every image, padded and
    transformed."""
    s = _slots(a)
    at = s[FIRST_TABLE] + 2 * i
    c0, c1 = s[at], s[at + 1]
    for n in range(s[N]):
        _pad(s, n * s[C] + c0, n * s[C] + c1)
    _call_at(s[TILES_IN], (a, s[WORK_B], s[WORK_A], np.int64(0), s[N], np.int64(0), s[TH], c0, c1))


def channel_out_task(a, i):
    """Task i: the output channels of pair i of the second table, multiplied over every tile and
    put out."""
    s = _slots(a)
    at = s[SECOND_TABLE] + 2 * i
    lo, hi = s[at], s[at + 1]
    cols = s[N] * s[TH] * s[TW]
    mo_at = s[WORK_A] + 4 * 36 * lo * cols
    _gemm(s, s[WORK_B], mo_at, cols, lo, hi, s[ACC] + 4 * i * s[ACC_FLOATS])
    _call_at(s[TILES_OUT], (a, mo_at, s[WORK_O] + 4 * 16 * lo * cols, cols, lo, hi, np.int64(0), np.int64(0), s[TH]))


_TASKS = {"pad": pad_task, "band": band_task, "channel_in": channel_in_task, "channel_out": channel_out_task}
# The transforms, compiled once each and called by the tasks at their addresses: linked into every
# task instead, they were compiled and optimized again for each (12.3 s on a cold cache, not 7.4).
_STAGES = {"tiles_in": tiles_in, "tiles_out": tiles_out}
_compiled: dict[str, int] | None = None


def _cfunc(fn, signature) -> int:
    """The entry address of fn compiled as a C function (kept in numba's disk cache)."""
    try:
        return numba.cfunc(signature, nopython=True, cache=True)(fn).address
    except RuntimeError:  # numba found nowhere to keep its cache
        return numba.cfunc(signature, nopython=True)(fn).address


def _task_addresses() -> dict[str, int] | None:
    """Each task's and stage's entry address, compiled once per process; None where numba or the
    LLVM kernels they call are missing."""
    global _compiled
    if _compiled is None and numba is not None and packed_gemm.available() and native_jobs.functions():
        stage = types.void(types.voidptr, *[types.int64] * 8)
        task = types.void(types.voidptr, types.int64)
        compiled = {name: _cfunc(fn, stage) for name, fn in _STAGES.items()}
        compiled.update({name: _cfunc(fn, task) for name, fn in _TASKS.items()})
        _compiled = compiled
    return _compiled


def available() -> bool:
    return _task_addresses() is not None


class WinogradJobs:
    """A Winograd conv's jobs over planned scratch: (pad, bands) or (channel_in, channel_out).

    `first`: pairs for the first job (plane ranges to pad, or input channel ranges); `second`:
    (first task, end task, first tile column) runs over `tasks` (image, end image, tile row, end
    tile row), or output channel ranges on panel bounds when `tasks` is empty. `columns`: the most
    tile columns one GEMM takes; `offsets`: where in the scratch (floats) the padded buffer and the
    three tile buffers lie."""

    def __init__(self, geometry: dict[str, int], weights: packed_gemm.PackedWeights, activation: tuple,
                 first: Sequence[tuple[int, int]], second: Sequence[tuple[int, ...]],
                 tasks: Sequence[tuple[int, int, int, int]], columns: int, offsets: Sequence[int]) -> None:
        addresses = _task_addresses()
        assert addresses is not None
        names = ("pad", "band") if tasks else ("channel_in", "channel_out")
        self._tasks = tuple(addresses[name] for name in names)
        self._counts = (len(first), len(second))
        first_at = SLOT_COUNT
        second_at = first_at + 2 * len(first)
        tasks_at = second_at + sum(len(entry) for entry in second)
        length = tasks_at + 4 * len(tasks)
        args = np.zeros(length, np.int64)
        args[first_at:second_at] = np.array(first, np.int64).reshape(-1)
        args[second_at:tasks_at] = np.array(second, np.int64).reshape(-1)
        args[tasks_at:] = np.array(tasks, np.int64).reshape(-1)
        acc_floats = packed_gemm.accumulator_floats(columns)
        self._acc = np.empty(max(1, len(second)) * acc_floats, np.float32)
        self._zeros = np.zeros(weights.m, np.float32)
        self._weights = weights
        code, lo, hi = activation
        values = dict(geometry, LENGTH=length, FIRST_TABLE=first_at, SECOND_TABLE=second_at, TASKS=tasks_at,
                      PANELS=weights.addresses[0], PANEL_BIAS=weights.addresses[1], W_STEP=weights.panels[0].size,
                      ACC=self._acc.ctypes.data, ACC_FLOATS=acc_floats, GEMM=packed_gemm.gemm_address(),
                      PAD=pad_jit.pad_address(), ACT=int(code), TILES_IN=addresses["tiles_in"],
                      TILES_OUT=addresses["tiles_out"])
        for name, value in values.items():
            args[globals()[name]] = value
        floats = args.view(np.float32)
        floats[2 * LO], floats[2 * HI] = lo, hi
        self._args = args
        self._args_at = args.ctypes.data
        self._offsets = tuple(offsets)

    def run(self, pool: Any, x: np.ndarray, y: np.ndarray, bias: np.ndarray | None, res: np.ndarray | None,
            work: np.ndarray, threaded: bool) -> None:
        """Both jobs on these arrays: x, y, res C-contiguous float32 (takes()), bias (M,) or None,
        work the kernel's scratch."""
        args = self._args
        y_at = y.ctypes.data  # each ndarray.ctypes costs about a microsecond: taken once per run
        args[X], args[Y] = x.ctypes.data, y_at
        args[RES] = y_at if res is None else res.ctypes.data
        args[HAS_RES] = res is not None
        args[BIAS] = self._zeros.ctypes.data if bias is None else bias.ctypes.data
        base = work.ctypes.data
        args[BUF], args[WORK_A], args[WORK_B], args[WORK_O] = (base + 4 * offset for offset in self._offsets)
        for task, count in zip(self._tasks, self._counts):
            pool.run_native(task, self._args_at, count, threaded)


def takes(*arrays: np.ndarray | None) -> bool:
    """Arrays the jobs read and write by address: C-contiguous float32 (or absent)."""
    return all(a is None or (a.dtype == np.float32 and a.flags.c_contiguous) for a in arrays)
