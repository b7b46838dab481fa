"""Compiled loops (numba) for the passes numpy cannot fuse: one pass where numpy needs several.

numpy runs a bias add, a residual add and a Relu as three passes over the output, each paying
per-row loop costs on short rows; a max pool as a dozen strided passes; a depthwise conv on
14x14 planes as per-channel calls on 14-element rows. Each compiled loop does the same arithmetic
in one pass over the data, releases the GIL (`nogil`) so omrt's own kernel threads run them side
by side, and is cached on disk (`cache`) so a process compiles each one once.

Every kernel that uses these keeps its numpy path, taken when `enabled()` is false: set
OMRT_JIT=0 to compare the two, or to run where numba is missing.
"""
from __future__ import annotations

import os
from typing import Any, Callable

ENV = "OMRT_JIT"
_warm: set[str] = set()

try:
    import numba
except ImportError:  # kernels then take their numpy paths
    numba = None


def enabled() -> bool:
    """Whether kernels built from now on use the compiled loops (read at kernel build time)."""
    if numba is None:
        return False
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def compiled(fn: Callable[..., Any]) -> Callable[..., Any]:
    """numba.njit with the options every loop here wants, compiled on first call per signature.

    Not `fastmath`: float results stay those of IEEE arithmetic in the written order, so NaN and
    inf propagate as they do in numpy. The default (Python) error model: numba's "numpy" model
    made the depthwise loop 2.3x slower. Where no cache directory is writable, each process
    compiles for itself.
    """
    if numba is None:
        return fn
    try:
        return numba.njit(nogil=True, cache=True)(fn)
    except RuntimeError:  # numba found nowhere to keep its cache
        return numba.njit(nogil=True)(fn)


def inlined(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A compiled helper that numba inlines into its compiled callers (no call per use)."""
    if numba is None:
        return fn
    return numba.njit(inline="always")(fn)


def warm_up(key: str, call: Callable[[], object]) -> None:
    """Compile a loop for the argument types it will run with (or load it from numba's cache)
    while a kernel is built, by one call on tiny arrays of those types, so that loading a model
    pays numba's compiler (seconds on a cold cache, once per machine) and its first run
    does not. Once per key and process."""
    if key in _warm or not enabled():
        return
    _warm.add(key)
    call()


def tiny(*shape: int, dtype: Any = "float32", writeable: bool = True) -> Any:
    """Zeros for a warm-up call. numba compiles read-only arrays (constant weights and biases in
    a loaded model) separately from writable ones, so a warm-up matches the real call's flags."""
    import numpy as np

    arr = np.zeros(shape, dtype=dtype)
    arr.flags.writeable = writeable
    return arr
