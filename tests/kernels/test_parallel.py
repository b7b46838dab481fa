"""The kernel thread pool, and that splitting work over it never changes a channel's arithmetic."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omrt.kernels import OpSpec, TensorSpec, run_op
from omrt.kernels import parallel
from omrt.kernels.parallel import Pool, get_pool, lead_split, split


def test_every_task_runs_once() -> None:
    pool = Pool(3)
    for n in (0, 1, 2, 3, 7, 100):
        hits = [0] * n
        lock = threading.Lock()

        def task(i: int) -> None:
            with lock:
                hits[i] += 1

        pool.run(task, n)
        assert hits == [1] * n


def test_work_lands_on_several_threads() -> None:
    pool = Pool(2)
    seen: set[int] = set()
    barrier = threading.Barrier(2, timeout=5)

    def task(i: int) -> None:
        seen.add(threading.get_ident())
        barrier.wait()  # both tasks must be in flight at once

    pool.run(task, 2)
    assert len(seen) == 2


def test_exception_reaches_caller_and_pool_survives() -> None:
    pool = Pool(2)

    def bad(i: int) -> None:
        if i == 3:
            raise ValueError("task 3")

    with pytest.raises(ValueError, match="task 3"):
        pool.run(bad, 8)
    out = []
    pool.run(lambda i: out.append(i), 4)
    assert sorted(out) == [0, 1, 2, 3]


def test_caller_never_waits_for_a_worker_that_has_not_woken() -> None:
    """A worker that wakes late (here: never) leaves every task to the caller, which returns as
    soon as they are done instead of waiting for the wake-up; the worker, once awake, finds the
    finished job empty and helps with whatever job is current."""
    pool = Pool(2)
    worker = pool._workers[0]
    real_wake, worker.wake = worker.wake, threading.Semaphore(0)
    for n in (2, 5):
        out: list[int] = []
        pool.run(out.append, n)
        assert sorted(out) == list(range(n))
    seen: set[int] = set()
    barrier = threading.Barrier(2, timeout=5)

    def task(i: int) -> None:
        seen.add(threading.get_ident())
        barrier.wait()

    worker.wake = real_wake
    real_wake.release()  # the late wake-up of the runs above
    pool.run(task, 2)
    assert len(seen) == 2


def test_nested_and_concurrent_calls_run_inline() -> None:
    pool = Pool(2)
    total = []

    def outer(i: int) -> None:
        pool.run(lambda j: total.append((i, j)), 3)  # pool busy: runs on this thread

    pool.run(outer, 2)
    assert sorted(total) == [(i, j) for i in range(2) for j in range(3)]

    results = []

    def caller(k: int) -> None:
        acc = [0] * 50
        for _ in range(20):
            pool.run(lambda i: acc.__setitem__(i, acc[i] + 1), 50)
        results.append(acc == [20] * 50)

    threads = [threading.Thread(target=caller, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == [True] * 3


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 5000), st.integers(1, 9), st.sampled_from([1, 16, 64, 192]))
def test_split_covers_range_on_aligned_cuts(total: int, parts: int, align: int) -> None:
    pieces = split(total, parts, align)
    assert len(pieces) <= parts
    flat = [i for a, b in pieces for i in range(a, b)]
    assert flat == list(range(total))
    assert all(a % align == 0 for a, _ in pieces)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 5000), st.integers(1, 9), st.sampled_from([1, 16, 64]), st.floats(0, 1e10))
def test_lead_split_covers_range_on_aligned_cuts(total: int, parts: int, align: int, flops: float) -> None:
    pieces = lead_split(total, parts, align, flops)
    assert len(pieces) <= parts and all(b > a for a, b in pieces)
    assert [i for a, b in pieces for i in range(a, b)] == list(range(total))
    assert all(a % align == 0 for a, _ in pieces)


def test_task_blocks_give_each_thread_several_blocks_to_take() -> None:
    """A native job's work in BLOCKS_PER_THREAD blocks a thread, so a slowed thread takes fewer;
    on one thread, one block."""
    from omrt.kernels import parallel

    blocks = parallel.task_blocks(64, 2)
    assert len(blocks) == 2 * parallel.BLOCKS_PER_THREAD > 2
    assert [i for a, b in blocks for i in range(a, b)] == list(range(64))
    assert parallel.task_blocks(64, 1, 1, 1e9) == [(0, 64)]
    assert parallel.task_blocks(3, 2) == [(0, 1), (1, 2), (2, 3)]


def test_lead_split_gives_the_caller_the_workers_lag() -> None:
    """The caller's piece (index 0) is larger by about WORKER_LAG_SECONDS of work on short ops;
    long ops and ops too short to split stay even."""
    short = lead_split(256, 2, 16, 2 * 256 * 576 * 169)        # ~250 us on one thread
    assert short[0] == (0, 144) and short[1] == (144, 256)
    assert lead_split(256, 2, 16, 2e10) == split(256, 2, 16)    # 0.1 s: the lag is noise
    assert lead_split(256, 2, 16, 0.0) == split(256, 2, 16)
    three = lead_split(300, 3, 1, 2.4e7)                        # 120 us over three threads
    assert three[0][1] - three[0][0] > three[1][1] - three[1][0]


def test_thread_count_from_environment(monkeypatch) -> None:
    monkeypatch.setenv("OMRT_NUM_THREADS", "3")
    assert parallel._configured_threads() == 3
    monkeypatch.setenv("OMRT_NUM_THREADS", "junk")
    assert 1 <= parallel._configured_threads() <= parallel.MAX_DEFAULT_THREADS
    monkeypatch.delenv("OMRT_NUM_THREADS")
    assert 1 <= parallel._configured_threads() <= parallel.MAX_DEFAULT_THREADS


def test_pool_puts_blas_in_single_thread_mode() -> None:
    threadpoolctl = pytest.importorskip("threadpoolctl")
    get_pool()
    blas = [i for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
    assert blas and all(i["num_threads"] == 1 for i in blas)


def _spec(op: str, ins: list[np.ndarray], out_shape: tuple[int, ...], attrs: dict, consts: dict) -> OpSpec:
    return OpSpec(op, attrs, [TensorSpec(a.shape, a.dtype) for a in ins],
                  [TensorSpec(out_shape, np.dtype(np.float32))], consts)


@pytest.fixture
def split_small_products(monkeypatch):
    """Split products of any size, so small shapes take the threaded path."""
    from omrt.kernels import gemm

    monkeypatch.setattr(gemm, "MIN_PARALLEL_FLOPS", 0)


def test_fc_feature_split_matches_one_blas_call_bitwise(two_threads, split_small_products) -> None:
    # Batch 1, large magnitudes (as in the onnx light models): every rounding difference shows.
    rng = np.random.default_rng(0)
    x = (rng.random((1, 512), dtype=np.float32) * 1e7).astype(np.float32)
    w = np.full((1000, 512), 0.01, np.float32)
    w[::7] = 0.02
    b = np.zeros(1000, np.float32)
    ins = [x, w, b]
    y = run_op(_spec("Gemm", ins, (1, 1000), {"transB": 1}, {1: w, 2: b}), ins)[0]
    np.testing.assert_array_equal(y, np.matmul(x, w.T))
    equal = np.delete(y, np.s_[::7], axis=1)
    assert (equal == equal[:, :1]).all()


def test_fc_batch_split_keeps_rows_whole(two_threads, split_small_products) -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((8, 300), dtype=np.float32)
    w = rng.standard_normal((300, 700), dtype=np.float32)
    y = run_op(_spec("MatMul", [x, w], (8, 700), {}, {1: w}), [x, w])[0]
    np.testing.assert_array_equal(y[:4], np.matmul(x[:4], w))
    np.testing.assert_array_equal(y[4:], np.matmul(x[4:], w))


@pytest.mark.parametrize("k,pads", [(1, 0), (3, 1)])
def test_conv_equal_weights_give_equal_channels(two_threads, k: int, pads: int) -> None:
    # Small integers keep every partial sum exact, so channels with equal weights must agree bitwise
    # whichever columns or channel blocks the threads took.
    rng = np.random.default_rng(2)
    x = rng.integers(-8, 8, (2, 32, 40, 40)).astype(np.float32)
    w = np.ones((384, 32, k, k), np.float32)
    b = np.full(384, 0.5, np.float32)
    ins = [x, w, b]
    attrs = {"pads": [pads] * 4}
    y = run_op(_spec("Conv", ins, (2, 384, 40, 40), attrs, {1: w, 2: b}), ins)[0]
    assert (y == y[:, :1]).all()


@pytest.mark.slow
def test_light_squeezenet_matches_reference_with_threads(two_threads) -> None:
    from omrt.compiler import compile_onnx
    from omrt.om import write_om
    from omrt.session import InferenceSession
    from tests.support.light_models import load, model_path, reference_input, reference_output

    session = InferenceSession(write_om(compile_onnx(str(model_path("squeezenet")))))
    got = session.run(None, reference_input(load("squeezenet")))[0]
    want = reference_output("squeezenet")
    np.testing.assert_allclose(got, want.reshape(got.shape), rtol=1e-3, atol=1e-7)


@pytest.mark.parametrize("k,pads,hw", [(1, 0, 40), (3, 1, 12), (3, 0, 9)])
def test_conv_batch1_equal_weights_give_equal_channels(two_threads, k: int, pads: int, hw: int) -> None:
    # Batch 1, identical filters: computed once (omrt.kernels.repeated), copied to every channel.
    rng = np.random.default_rng(5)
    x = rng.integers(-8, 8, (1, 32, hw, hw)).astype(np.float32)
    w = np.ones((384, 32, k, k), np.float32)
    b = np.full(384, -0.5, np.float32)
    ho = hw + 2 * pads - k + 1
    r = np.broadcast_to(rng.integers(-4, 4, (1, 1, ho, ho)).astype(np.float32), (1, 384, ho, ho)).copy()
    ins = [x, w, b, r]
    attrs = {"pads": [pads] * 4, "_activation": "Relu", "_residual": 1}
    y = run_op(_spec("Conv", ins, (1, 384, ho, ho), attrs, {1: w, 2: b}), ins)[0]
    assert (y == y[:, :1]).all()
    assert (y >= 0).all() and (y > 0).any()


@pytest.mark.parametrize("k,stride,hw", [(3, 1, 7), (3, 2, 14), (1, 1, 7), (1, 1, 28)])
def test_conv_channel_blocks_values(two_threads, k: int, stride: int, hw: int) -> None:
    # Batch 1, group 1: tasks own blocks of output channels and run bias, residual and Relu on them.
    rng = np.random.default_rng(6)
    x = rng.integers(-8, 8, (1, 576, hw, hw)).astype(np.float32)
    w = rng.standard_normal((384, 576, k, k)).astype(np.float32) * 0.05
    b = rng.standard_normal(384).astype(np.float32)
    pads = k // 2
    ho = (hw + 2 * pads - k) // stride + 1
    r = rng.standard_normal((1, 384, ho, ho)).astype(np.float32)
    attrs = {"pads": [pads] * 4, "strides": [stride] * 2, "_activation": "Relu", "_residual": 1}
    ins = [x, w, b, r]
    y = run_op(_spec("Conv", ins, (1, 384, ho, ho), attrs, {1: w, 2: b}), ins)[0]
    xp = np.pad(x[0].astype(np.float64), ((0, 0), (pads, pads), (pads, pads)))
    want = np.zeros((384, ho, ho))
    for i in range(k):
        for j in range(k):
            patch = xp[:, i:i + stride * ho:stride, j:j + stride * ho:stride]
            want += np.einsum("mc,chw->mhw", w[:, :, i, j].astype(np.float64), patch)
    want = np.maximum(want + b[:, None, None] + r[0], 0)
    np.testing.assert_allclose(y[0], want, rtol=1e-4, atol=1e-3)


def test_serial_kernels_give_a_one_thread_pool_on_this_thread_only() -> None:
    main_pool = get_pool()
    seen: list[int] = []
    with parallel.serial_kernels():
        assert get_pool().size == 1
        with parallel.serial_kernels():
            assert get_pool().size == 1
        assert get_pool().size == 1
        other = threading.Thread(target=lambda: seen.append(get_pool().size))
        other.start()
        other.join()
    assert seen == [main_pool.size]
    assert get_pool() is main_pool


@pytest.mark.skipif(not parallel.spin_wait.available(), reason="no compiled IR kernels on this host")
def test_a_lingering_worker_takes_the_next_job_without_a_wake_up() -> None:
    """Between two jobs the worker polls the job counter instead of parking: a job posted while it
    lingers runs on both threads even though nothing releases the worker's semaphore."""
    pool = Pool(2)
    pool.linger_ticks = parallel.spin_wait.ticks(30.0)
    pool.run(lambda i: None, 2)
    worker = pool._workers[0]
    deadline = time.monotonic() + 5
    while worker.parked and time.monotonic() < deadline:  # let it get past any wake-up of its start
        pool.run(lambda i: None, 2)
    worker.wake = threading.Semaphore(0)
    pool.linger_ticks = parallel.spin_wait.ticks(parallel.LINGER_SECONDS)  # from the next wait on
    seen: set[int] = set()
    barrier = threading.Barrier(2, timeout=5)

    def task(i: int) -> None:
        seen.add(threading.get_ident())
        barrier.wait()

    pool.run(task, 2)
    assert len(seen) == 2
