"""Kernels run with numpy's ufunc buffer at KERNEL_BUFSIZE; the caller's own setting survives a run."""
from __future__ import annotations

import numpy as np

from omrt.compiler import compile_onnx
from omrt.kernels.parallel import get_pool
from omrt.kernels.ufunc_buffer import KERNEL_BUFSIZE, kernel_ufunc_buffer
from omrt.om import write_om
from omrt.session import InferenceSession
from tests.support.small_models import small_cnn


def test_setting_is_restored_even_after_an_error() -> None:
    before = np.getbufsize()
    try:
        with kernel_ufunc_buffer():
            assert np.getbufsize() == KERNEL_BUFSIZE
            raise ValueError("kernel failed")
    except ValueError:
        pass
    assert np.getbufsize() == before


def test_a_run_uses_the_kernel_buffer_and_leaves_the_callers_alone(monkeypatch) -> None:
    seen: list[int] = []
    session = InferenceSession(write_om(compile_onnx(small_cnn(batch=4))))
    pool = get_pool()
    real_run = pool.run

    def spying_run(fn, n, threaded=True):
        def task(i):
            seen.append(np.getbufsize())  # on whichever thread takes the task
            fn(i)
        real_run(task, n, threaded)

    monkeypatch.setattr(pool, "run", spying_run)
    np.setbufsize(8192)
    x = np.random.default_rng(0).standard_normal((4, 3, 16, 16)).astype(np.float32)
    session.run(None, {"x": x})
    assert np.getbufsize() == 8192
    assert seen and all(size == KERNEL_BUFSIZE for size in seen)
