"""Softmax and LogSoftmax of small float32 inputs over contiguous rows, as one compiled loop.

A classifier's last op is a softmax of a thousand values: numpy needs five calls (max, subtract,
exp, sum, divide), each parsing its axes and keywords. Right after the model's large convs those
calls run from cold caches: SqueezeNet's 1000-class softmax took 42-48 us in the model against
6 us run in a loop. One compiled call does the same steps (each exp in double precision, stored
as float32 as numpy's is) and leaves NaN where numpy's passes leave it: a row holding NaN or +inf
comes out NaN throughout. Larger inputs stay on numpy, whose vector exp outruns this scalar loop.
"""
from __future__ import annotations

import math

import numpy as np

from omrt.kernels import jit

# Elements up to which the compiled loop runs (a batch of eight 1000-class rows).
MAX_ELEMENTS = 8192


@jit.compiled
def _softmax_rows(x, y, log):
    """y[r] = softmax(x[r]) (log-softmax with `log`) for each row of the 2-D arrays x and y."""
    rows, n = x.shape
    for r in range(rows):
        top = -math.inf
        for j in range(n):
            if x[r, j] > top:
                top = x[r, j]
        total = 0.0
        if log:
            for j in range(n):
                total += math.exp(float(x[r, j]) - float(top))
            shift = float(top) + math.log(total)
            for j in range(n):
                y[r, j] = float(x[r, j]) - shift
        else:
            for j in range(n):
                e = math.exp(float(x[r, j]) - float(top))
                y[r, j] = e
                total += e
            for j in range(n):
                y[r, j] = float(y[r, j]) / total


def fits(shape: tuple[int, ...], axes: tuple[int, ...], dtype: np.dtype) -> bool:
    """float32 inputs of at most MAX_ELEMENTS reduced over their trailing axes (contiguous rows),
    where compiled loops run."""
    ndim = len(shape)
    return (np.dtype(dtype) == np.float32 and 0 < math.prod(shape) <= MAX_ELEMENTS
            and tuple(axes) == tuple(range(ndim - len(axes), ndim)) and jit.enabled())


def softmax_rows(x: np.ndarray, y: np.ndarray, rows: int, log: bool) -> None:
    """x and y (C-contiguous, same shape) as `rows` rows, each softmaxed on its own."""
    _softmax_rows(x.reshape(rows, -1), y.reshape(rows, -1), log)


def warm_up() -> None:
    """Compile (or load) the loop while the kernel is built, for writable and read-only inputs."""
    for writeable in (True, False):
        jit.warm_up(f"_softmax_rows {writeable}", lambda w=writeable: _softmax_rows(
            jit.tiny(1, 1, writeable=w), jit.tiny(1, 1), False))
