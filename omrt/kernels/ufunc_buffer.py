"""numpy's ufunc buffer size while omrt's kernels run.

numpy runs an elementwise op whose operands do not flatten to one dimension (a bias per channel
over (C, H*W), a BatchNormalization scale, a strided view) through buffers of `bufsize` elements
(8192 by default) whenever its rows are shorter than about half of that, copying the rows in and
out: (64, 3136) + (64, 1) took 31.5 us against 14.0 for the same elements and a scalar. With a
2048-element buffer, rows of 1024 elements or more (32x32 maps and up) run in place. Kernel time
on one thread (`benchmarks/profile_model.py`, two alternations against 8192): ShuffleNet batch 1
5.01-5.07 -> 4.72-4.73 ms, DenseNet-121 38.2-38.4 -> 37.4-37.5, SqueezeNet unchanged; outputs
are bit-identical. 4096 and 1024 did about as well; rows of a few dozen elements get slower
below 1024.

The size is a per-thread numpy setting: the executor sets it on the caller's thread for the
length of a run and restores it, and omrt's kernel threads keep it for good.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import numpy as np

KERNEL_BUFSIZE = 2048


@contextmanager
def kernel_ufunc_buffer() -> Iterator[None]:
    """KERNEL_BUFSIZE on this thread inside, the caller's own setting restored after."""
    previous = np.setbufsize(KERNEL_BUFSIZE)
    try:
        yield
    finally:
        np.setbufsize(previous)
