"""Shared benchmark plumbing: a pinned-thread onnxruntime session and alternating timed runs."""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

THREADS = int(os.environ.get("OMRT_BENCH_THREADS", "2"))


def model_arguments(repeats: int, top: int) -> argparse.ArgumentParser:
    """The per-op scripts' options: a light model's name, --batch, --repeats (rounds timed) and
    --top (rows printed), with each script's defaults."""
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=repeats)
    ap.add_argument("--top", type=int, default=top)
    return ap


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


def alternate(runs: dict[str, Callable[[], object]], repeats: int = 20, warmup: int = 3,
              before: Callable[[], object] | None = None) -> dict[str, np.ndarray]:
    """Time each callable `repeats` times, interleaved so drift hits all of them alike (ms);
    `before` runs ahead of each timed call, untimed (a cache flush)."""
    for fn in runs.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(repeats):
        for key, fn in runs.items():
            if before is not None:
                before()
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


def kernel_modules() -> list:
    """Every loaded omrt.kernels module, after importing the ones every conv and pool path uses."""
    import omrt.kernels.conv  # noqa: F401  (imports every conv path's module)
    import omrt.kernels.pool  # noqa: F401
    return [m for name, m in sorted(sys.modules.items()) if name.startswith("omrt.kernels") and m is not None]


def parse_constants(items: str) -> dict[str, float]:
    """'KEY=VALUE,KEY=VALUE' -> module constants (ints unless the value has '.' or 'e')."""
    constants = {}
    for item in filter(None, items.split(",")):
        key, _, value = item.partition("=")
        if not key.isupper():
            raise SystemExit(f"unknown setting {key!r}: module constants are upper case")
        constants[key] = float(value) if any(c in value for c in ".e") else int(value)
    return constants


@contextlib.contextmanager
def kernel_constants(constants: dict[str, float]) -> Iterator[None]:
    """Set module constants in every omrt.kernels module that has them (kernels read their
    thresholds when a model is compiled and loaded), and restore them on the way out."""
    saved = {}
    for module in kernel_modules():
        for key, value in constants.items():
            if hasattr(module, key):
                saved[(module, key)] = getattr(module, key)
                setattr(module, key, value)
    if constants and not saved:
        raise SystemExit(f"no omrt.kernels module has {sorted(constants)}")
    try:
        yield
    finally:
        for (module, key), value in saved.items():
            setattr(module, key, value)
