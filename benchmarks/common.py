"""Shared benchmark plumbing: a pinned-thread onnxruntime session and alternating timed runs."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

THREADS = int(os.environ.get("OMRT_BENCH_THREADS", "2"))


def conv_weight_shape(op) -> tuple[int, ...]:
    """A compiled Conv's weight shape (M, C / group, *kernel) whatever layout the compiler stored
    its weights in (plain, Winograd-transformed, packed panels)."""
    x, out = op.inputs[0].desc.shape, op.outputs[0].desc.shape
    group = int(op.attrs.get("group", 1))
    kernel = op.attrs.get("kernel_shape") or ((3, 3) if op.attrs.get("_winograd") else op.inputs[1].desc.shape[2:])
    return (out[1], x[1] // group, *kernel)


def ort_session(model_bytes: bytes, threads: int = THREADS, profile_prefix: str | None = None):
    """`profile_prefix`: turn on onnxruntime's profiler, writing its JSON under that path prefix."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3
    # Idle intra-op threads would otherwise spin after each run and take the cores from the omrt
    # run that follows in an alternating loop.
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if profile_prefix is not None:
        so.enable_profiling = True
        so.profile_file_prefix = profile_prefix
    return ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])


def alternate(runs: dict[str, Callable[[], object]], repeats: int = 20, warmup: int = 3) -> dict[str, np.ndarray]:
    """Time each callable `repeats` times, interleaved so drift hits all of them alike (ms)."""
    for fn in runs.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(repeats):
        for key, fn in runs.items():
            start = time.perf_counter()
            fn()
            samples[key].append((time.perf_counter() - start) * 1e3)
    return {k: np.asarray(v) for k, v in samples.items()}


def print_breakdown(header: str, by_type: dict[str, float], by_shape: dict[str, float], top: int) -> None:
    """A profile in ms per run: the header, every op type, then the `top` costliest shapes."""
    print(header)
    for key, ms in sorted(by_type.items(), key=lambda kv: -kv[1]):
        print(f"  {key:20s} {ms:8.2f}")
    print("top shapes (ms per run, all ops of that shape)")
    for key, ms in sorted(by_shape.items(), key=lambda kv: -kv[1])[:top]:
        print(f"  {key:50s} {ms:8.2f}")
