"""Kernels written as LLVM IR and compiled for the host CPU (llvmlite, numba's own backend).

Why IR rather than a numba loop: a GEMM micro-kernel has to keep a tile of accumulators in vector
registers across the whole reduction, which numba cannot be told to do (its loops keep them in
memory). In IR the accumulators are phi nodes of vector type, so LLVM allocates them to registers,
and the FMAs, masked loads and stores, scatters and prefetches are the intrinsics themselves.

Each module is compiled once per process on first use (tens of milliseconds) with the host's CPU
name and features, so AVX-512 machines get 16-float vectors and AVX2 ones 8. Where llvmlite is
missing, too old for this API, or the CPU has neither, `compile_module` returns None and callers
keep their numpy paths; OMRT_JIT=0 turns these off with the numba loops (omrt.kernels.jit).
"""
from __future__ import annotations

import ctypes
import threading
from typing import Any, Callable

from omrt.kernels import jit

_lock = threading.Lock()
_modules: dict[str, Any] = {}
_engines: list[Any] = []   # compiled code lives as long as its execution engine


def _llvm():
    import llvmlite.binding as llvm

    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    return llvm


def vector_floats() -> int:
    """Floats per SIMD register the IR kernels use on this CPU (0: none they support)."""
    with _lock:
        if "vector" not in _modules:
            try:
                features = _llvm().get_host_cpu_features()
                width = 16 if features.get("avx512f") else 8 if features.get("avx2") and features.get("fma") else 0
            except Exception:  # llvmlite missing or unable to read the host
                width = 0
            _modules["vector"] = width
        return _modules["vector"]


def compile_module(name: str, build_ir, functions: dict[str, list[Any]]) -> dict[str, Any] | None:
    """Compile the module `build_ir(vector_floats())` once per process and return its functions
    as ctypes callables with the given argument types (None where it cannot run here)."""
    if not jit.enabled():
        return None
    if name in _modules:  # compiled (or found not to compile) already: no lock on the run-time path
        return _modules[name]
    vl = vector_floats()
    with _lock:
        if name not in _modules:
            _modules[name] = _compile(build_ir(vl), functions) if vl else None
        return _modules[name]


def _compile(ir: str, functions: dict[str, list[Any]]) -> dict[str, Any] | None:
    try:
        llvm = _llvm()
        module = llvm.parse_assembly(ir)
        module.verify()
        machine = llvm.Target.from_default_triple().create_target_machine(
            cpu=llvm.get_host_cpu_name(), features=llvm.get_host_cpu_features().flatten(), opt=3)
        passes = llvm.create_pass_builder(machine, llvm.create_pipeline_tuning_options(speed_level=3))
        passes.getModulePassManager().run(module, passes)
        engine = llvm.create_mcjit_compiler(module, machine)
        engine.finalize_object()
    except Exception:  # an llvmlite without these APIs, or an LLVM that rejects the IR
        return None
    _engines.append(engine)
    return {fn: ctypes.CFUNCTYPE(None, *args)(engine.get_function_address(fn)) for fn, args in functions.items()}


def splat(name: str, scalar: str, vl: int, ty: str = "float") -> list[str]:
    """IR lines making %name a <vl x ty> vector of `scalar` in every lane."""
    vt = f"<{vl} x {ty}>"
    return [f"  %{name}.s = insertelement {vt} poison, {ty} {scalar}, i32 0",
            f"  %{name} = shufflevector {vt} %{name}.s, {vt} poison, <{vl} x i32> zeroinitializer"]


def masked_declarations(vl: int, fma: bool = False) -> list[str]:
    """IR declarations of the <vl x float> masked load and store (and the fused multiply-add
    where `fma`) that a module's kernels call."""
    v, mask = f"<{vl} x float>", f"<{vl} x i1>"
    return ([f"declare {v} @llvm.fma.v{vl}f32({v}, {v}, {v})"] if fma else []) + [
        f"declare {v} @llvm.masked.load.v{vl}f32.p0(ptr, i32, {mask}, {v})",
        f"declare void @llvm.masked.store.v{vl}f32.p0({v}, ptr, i32, {mask})"]


def lanes(vl: int, start: int = 0) -> str:
    """The constant <vl x i64> vector start, start + 1, ..."""
    return "<" + ", ".join(f"i64 {start + i}" for i in range(vl)) + ">"


def reduction_loop(vl: int, rows: int, cols: int, initial: Callable[[int, int], str], entry: str) -> list[str]:
    """IR lines opening a micro-kernel's reduction loop, label `loop` over %k from 0: the
    accumulators %a{i}_{j} (i < rows, j < cols, the names broadcast_fmas adds into) start as
    initial(i, j) coming from label `entry`, then carry %n{i}_{j} from each step."""
    v = f"<{vl} x float>"
    return ["  br label %loop", "loop:", f"  %k = phi i64 [0, %{entry}], [%k_next, %loop]"] + [
        f"  %a{i}_{j} = phi {v} [{initial(i, j)}, %{entry}], [%n{i}_{j}, %loop]"
        for i in range(rows) for j in range(cols)]


def broadcast_fmas(vl: int, src: str, base: str, count: int, vectors: list[str], tag: str) -> list[str]:
    """IR lines of a micro-kernel's step, an outer product into registers: for i < count, the
    float at src[base + i] broadcast (%{tag}b{i}) and multiplied by each of `vectors`, added to
    the accumulator %a{i}_{j} as %n{i}_{j}. `tag` keeps the temporaries' names apart."""
    out, addresses = [], []
    for i in range(count):
        out += [f"  %{tag}o{i} = add i64 {base}, {i}", f"  %{tag}q{i} = getelementptr float, ptr {src}, i64 %{tag}o{i}"]
        addresses.append(f"%{tag}q{i}")
    return out + broadcast_fmas_at(vl, addresses, vectors, tag)


def broadcast_fmas_at(vl: int, addresses: list[str], vectors: list[str], tag: str) -> list[str]:
    """broadcast_fmas with the i-th float read at addresses[i] (ptr values) wherever they lie."""
    v = f"<{vl} x float>"
    out = []
    for i, address in enumerate(addresses):
        out += [f"  %{tag}s{i} = load float, ptr {address}, align 4"] + splat(f"{tag}b{i}", f"%{tag}s{i}", vl)
        for j, vec in enumerate(vectors):
            out.append(f"  %n{i}_{j} = call {v} @llvm.fma.v{vl}f32({v} {vec}, {v} %{tag}b{i}, {v} %a{i}_{j})")
    return out


def clamp(vl: int, value: str, lo: str, hi: str, tag: str) -> tuple[list[str], str]:
    """`value` clamped to [lo, hi] (splat vectors), as (lines, the result's name). Compare-and-
    select keeps NaN (both compares are false for it), as np.clip does."""
    v, mask = f"<{vl} x float>", f"<{vl} x i1>"
    return [f"  %under{tag} = fcmp olt {v} {value}, {lo}",
            f"  %low{tag} = select {mask} %under{tag}, {v} {lo}, {v} {value}",
            f"  %over{tag} = fcmp ogt {v} %low{tag}, {hi}",
            f"  %high{tag} = select {mask} %over{tag}, {v} {hi}, {v} %low{tag}"], f"%high{tag}"


def next_iteration(index: str, step: int | str, bound: str, loop: str, done: str) -> str:
    """IR lines closing a counted loop over %index: %index_next = %index + step, then back to
    label `loop` while below `bound`, else on to `done`."""
    return "\n".join([f"  %{index}_next = add i64 %{index}, {step}",
                      f"  %more_{index} = icmp ult i64 %{index}_next, {bound}",
                      f"  br i1 %more_{index}, label %{loop}, label %{done}"])


def strided_pointers(index: str, pointers: list[tuple[str, str, str]]) -> list[str]:
    """IR lines making each %name = base + index * step (floats), for (name, base, step): the
    pointers to item `index` of arrays of equally spaced items (images, planes, matrices)."""
    out = []
    for name, base, step in pointers:
        out += [f"  %{name}_at = mul i64 {index}, {step}",
                f"  %{name} = getelementptr float, ptr {base}, i64 %{name}_at"]
    return out


def lanes32(vl: int, start: int = 0) -> str:
    """The constant <vl x i32> vector start, start + 1, ... (masks compare 32-bit lanes: one
    instruction per 16 where 64-bit lanes take two)."""
    return "<" + ", ".join(f"i32 {start + i}" for i in range(vl)) + ">"


def pool_loops_head(vl: int, entry: list[str]) -> str:
    """The start of a pooling kernel over planes of x (%h x %w) into planes of y (%oh x %ow),
    %planes of them: `entry`'s lines, then %ws / %ows (the row lengths, splat i32), the plane loop
    with %x and %y at plane %p, and the output-row loop's %i (closed by row_store_and_loops)."""
    return "\n".join(["entry:", *entry, "  %w32 = trunc i64 %w to i32", "  %ow32 = trunc i64 %ow to i32",
                      *splat("ws", "%w32", vl, "i32"), *splat("ows", "%ow32", vl, "i32"),
                      "  %plane_in = mul i64 %h, %w", "  %plane_out = mul i64 %oh, %ow", "  br label %plane",
                      "plane:", "  %p = phi i64 [0, %entry], [%p_next, %plane_done]",
                      *strided_pointers("%p", [("x", "%x_all", "%plane_in"), ("y", "%y_all", "%plane_out")]),
                      "  br label %out_row", "out_row:", "  %i = phi i64 [0, %plane], [%i_next, %row_done]"])


def row_store_and_loops(vl: int, value: str) -> str:
    """The end of a pooling kernel's three loops (planes %p, output rows %i, vectors %j of
    outputs): `value` stored at %yrow + %j, lanes past %ows (the row length, splat i32) masked,
    then the loops closed (labels across, out_row, plane; bounds %ow, %oh, %planes)."""
    v, iv, mask = f"<{vl} x float>", f"<{vl} x i32>", f"<{vl} x i1>"
    return "\n".join(["  %j32 = trunc i64 %j to i32", *splat("js", "%j32", vl, "i32"),
                      f"  %outs = add {iv} %js, {lanes32(vl)}", f"  %valid = icmp slt {iv} %outs, %ows",
                      "  %yp = getelementptr float, ptr %yrow, i64 %j",
                      f"  call void @llvm.masked.store.v{vl}f32.p0({v} {value}, ptr %yp, i32 4, {mask} %valid)",
                      next_iteration("j", vl, "%ow", "across", "row_done"), "row_done:",
                      next_iteration("i", 1, "%oh", "out_row", "plane_done"), "plane_done:",
                      next_iteration("p", 1, "%planes", "plane", "out"), "out:", "  ret void", "}"])
