"""Jobs whose tasks are compiled functions: the kernel pool's threads run them without the GIL.

Why: a worker that runs a task in Python must take the GIL first, while the caller still holds
it until its own first task enters a kernel; taking it too early puts the worker to sleep on it
(a 20-40 us wake-up on this kind of virtual machine), so workers hold off 12 us before taking it
(omrt.kernels.parallel), and each task still pays its Python call. A native job is a compiled
function `task(args, i)` and a pointer to its arguments: a worker polling for jobs (worker_wait,
compiled) runs its tasks where it polls, and the caller runs its share and waits for the rest
in one compiled call (join). Neither touches the GIL, so a worker starts within a microsecond of
the post and the caller holds the GIL only to write the job.

Job words (int64, `signal` of the pool, see parallel.Pool): the posted-job counter the workers
poll, the count of workers' waits (announced on entry), whether the latest job is native, and
the native job itself: its function, arguments and task count, the next task to take, the tasks
finished, and how many threads are inside it (a job's words are rewritten only when none is).
"""
from __future__ import annotations

import ctypes
from typing import Any, Sequence

import numpy as np

from omrt.kernels import llvm_jit, spin_wait

POSTED, WAITS, KIND, FN, ARGS, COUNT, NEXT, DONE, ACTIVE = range(9)
WORDS = 16
# ctypes argument types of every `task(args, i)`, for llvm_jit.compile_module
TASK_ARGS = [ctypes.c_void_p, ctypes.c_int64]


def _word(name: str, index: int) -> str:
    return f"  %{name} = getelementptr i64, ptr %sig, i64 {index}"


_IR = spin_wait.WAIT_IR + f"""
define void @drain(ptr %sig) {{
entry:
{_word("active", ACTIVE)}
{_word("fn_at", FN)}
{_word("args_at", ARGS)}
{_word("count_at", COUNT)}
{_word("next_at", NEXT)}
{_word("done_at", DONE)}
  %ignored_in = atomicrmw add ptr %active, i64 1 seq_cst
  %fn = load atomic i64, ptr %fn_at seq_cst, align 8
  %open = icmp ne i64 %fn, 0
  br i1 %open, label %start, label %out
start:
  %task = inttoptr i64 %fn to ptr
  %args_int = load atomic i64, ptr %args_at acquire, align 8
  %args = inttoptr i64 %args_int to ptr
  %count = load atomic i64, ptr %count_at acquire, align 8
  br label %take
take:
  %i = atomicrmw add ptr %next_at, i64 1 seq_cst
  %left = icmp slt i64 %i, %count
  br i1 %left, label %work, label %out
work:
  call void %task(ptr %args, i64 %i)
  %ignored_done = atomicrmw add ptr %done_at, i64 1 seq_cst
  br label %take
out:
  %ignored_out = atomicrmw sub ptr %active, i64 1 seq_cst
  ret void
}}

define void @join(ptr %sig, i64 %slice) {{
entry:
{_word("active", ACTIVE)}
{_word("fn_at", FN)}
{_word("count_at", COUNT)}
{_word("done_at", DONE)}
  call void @drain(ptr %sig)
  %count = load atomic i64, ptr %count_at acquire, align 8
  br label %finishing
finishing:
  %done = load atomic i64, ptr %done_at acquire, align 8
  %all = icmp sge i64 %done, %count
  br i1 %all, label %close, label %wait
wait:
  call void @wait_while(ptr %done_at, i64 %done, i64 9223372036854775807, i64 %slice, ptr null, i64 0)
  br label %finishing
close:
  store atomic i64 0, ptr %fn_at seq_cst, align 8
  br label %leaving
leaving:
  %inside = load atomic i64, ptr %active seq_cst, align 8
  %empty = icmp eq i64 %inside, 0
  br i1 %empty, label %out, label %wait_out
wait_out:
  call void @llvm.x86.sse2.pause()
  br label %leaving
out:
  ret void
}}

define void @serial(i64 %fn, i64 %args_int, i64 %count) {{
entry:
  %task = inttoptr i64 %fn to ptr
  %args = inttoptr i64 %args_int to ptr
  %any = icmp sgt i64 %count, 0
  br i1 %any, label %work, label %out
work:
  %i = phi i64 [0, %entry], [%i_next, %work]
  call void %task(ptr %args, i64 %i)
{llvm_jit.next_iteration("i", 1, "%count", "work", "out")}
out:
  ret void
}}

define i64 @worker_wait(ptr %sig, i64 %seen, i64 %ticks, i64 %slice, i64 %holdoff) {{
entry:
{_word("posted", POSTED)}
{_word("waits", WAITS)}
{_word("kind_at", KIND)}
  br label %poll
poll:
  %s = phi i64 [%seen, %entry], [%now, %native]
  %announce = phi ptr [%waits, %entry], [null, %native]
  call void @wait_while(ptr %posted, i64 %s, i64 %ticks, i64 %slice, ptr %announce, i64 0)
  %now = load atomic i64, ptr %posted acquire, align 8
  %moved = icmp ne i64 %now, %s
  br i1 %moved, label %which, label %out
which:
  %kind = load atomic i64, ptr %kind_at acquire, align 8
  %is_native = icmp ne i64 %kind, 0
  br i1 %is_native, label %native, label %python
native:
  call void @drain(ptr %sig)
  br label %poll
python:
  call void @wait_while(ptr %posted, i64 %now, i64 %holdoff, i64 %slice, ptr null, i64 0)
  br label %out
out:
  ret i64 %s
}}
"""


def _module() -> dict[str, Any] | None:
    return llvm_jit.compile_module("native_jobs", lambda vl: _IR, {
        "drain": [ctypes.c_void_p], "join": [ctypes.c_void_p, ctypes.c_int64],
        "serial": [ctypes.c_int64] * 3,
        "worker_wait": [ctypes.c_void_p] + [ctypes.c_int64] * 4,
    })


_functions: dict[str, Any] | None = None


def functions() -> dict[str, Any] | None:
    """drain(signal), join(signal, slice), serial(fn, args, count) and worker_wait(signal, seen,
    ticks, slice, holdoff) -> the last job seen before a Python job or the end of the budget;
    None where nothing compiles here. Kept once compiled: a one-thread pool asks on every job."""
    global _functions
    if _functions is not None:
        return _functions
    module = _module()
    if module is not None:
        module["worker_wait"].restype = ctypes.c_int64
        _functions = module
    return module


def address(function: Any) -> int:
    """The entry address of a compiled function (llvm_jit.compile_module's callables), to post as
    a native job's `task(args, i)`."""
    return ctypes.cast(function, ctypes.c_void_p).value


def task_ir(call: str, slots: Sequence[str], pointers: set[str], floats: set[str] = frozenset(),
            body: Sequence[str] = (), name: str = "task") -> str:
    """IR of `task(args, i)` (or `name`(args, i), for a module of several) for a NativeJob: each
    slot loaded as %name (ptr, float or i64), block i of the table in the last slot as %first,
    %last (%count = last - first), then `body`'s lines and `call`, the kernel call (none where
    empty: the body does the work)."""
    out = [f"define void @{name}(ptr %a, i64 %i) {{", "entry:"]
    for index, name in enumerate(slots):
        kind = "ptr" if name in pointers else "float" if name in floats else "i64"
        out += [f"  %{name}_at = getelementptr i64, ptr %a, i64 {index}",
                f"  %{name} = load {kind}, ptr %{name}_at, align 8"]
    out += ["  %pair = mul i64 %i, 2", f"  %first_at = getelementptr i64, ptr %{slots[-1]}, i64 %pair",
            "  %first = load i64, ptr %first_at, align 8", "  %last_at = getelementptr i64, ptr %first_at, i64 1",
            "  %last = load i64, ptr %last_at, align 8", "  %count = sub i64 %last, %first", *body]
    if call:
        out.append(f"  call void {call}")
    out += ["  ret void", "}"]
    return "\n".join(out)


def plane_slots(extra: Sequence[str] = ()) -> tuple[str, ...]:
    """The slots of a plane kernel's task (plane_task_ir)."""
    return ("x", "y", "h", "w", "oh", "ow", *extra, "blocks")


def plane_task_ir(kernel: str, extra: Sequence[str] = ()) -> str:
    """task_ir for a kernel(x, y, planes, h, w, oh, ow, *extra) over planes of x (h x w) into
    planes of y (oh x ow): task i runs it on block i of planes."""
    args = ", ".join(["ptr %xp", "ptr %yp", "i64 %count"] + [f"i64 %{name}" for name in ("h", "w", "oh", "ow", *extra)])
    body = ["  %plane_in = mul i64 %h, %w", "  %x_off = mul i64 %first, %plane_in",
            "  %xp = getelementptr float, ptr %x, i64 %x_off", "  %plane_out = mul i64 %oh, %ow",
            "  %y_off = mul i64 %first, %plane_out", "  %yp = getelementptr float, ptr %y, i64 %y_off"]
    return task_ir(f"@{kernel}({args})", plane_slots(extra), {"x", "y", "blocks"}, body=body)


class NativeJob:
    """A compiled `task(args, i)` (task_ir) and its arguments: int64 slots named as the task reads
    them (a float in the first half of its slot), the last slot the table of blocks, task i
    running block i. One per kernel: its slots are rewritten on each run. `keep`: the arrays its
    constant slots point into, held as long as the job."""

    def __init__(self, task: Any, slots: Sequence[str], blocks: Sequence[tuple[int, int]],
                 keep: Sequence[np.ndarray] = (), **values: Any) -> None:
        self._slots = {name: index for index, name in enumerate(slots)}
        self._table = np.array(blocks, np.int64).reshape(-1)
        self._args = np.zeros(len(slots), np.int64)
        self._floats = self._args.view(np.float32)
        self._keep = tuple(keep)
        self.count = len(blocks)
        self._task_at, self._args_at = address(task), self._args.ctypes.data
        self.set(**{slots[-1]: self._table.ctypes.data}, **values)

    def set(self, **values: Any) -> None:
        for name, value in values.items():
            if isinstance(value, float):
                self._floats[2 * self._slots[name]] = value
            else:
                self._args[self._slots[name]] = value

    def run(self, pool: Any, threaded: bool = True) -> None:
        """Every task, on the pool's threads (Pool.run_native) or, not threaded, on this one."""
        pool.run_native(self._task_at, self._args_at, self.count, threaded)
