"""The executor: bind once, zero-copy I/O in the caller's buffers, read-only weights."""
from __future__ import annotations

import numpy as np
import pytest

from omrt.compiler import compile_onnx
from omrt.errors import OmrtError
from omrt.om import read_om, write_om
from omrt.runtime.address import address_of, aligned_empty, view_at
from omrt.runtime.executor import BoundGraph, Executor, LanedGraph
from omrt.runtime.weights import place_weights
from tests.support.small_models import run_onnxruntime, small_cnn


@pytest.fixture(scope="module")
def model():
    return read_om(write_om(compile_onnx(small_cnn())))


def _executor(model) -> tuple[Executor, np.ndarray, np.ndarray]:
    work = aligned_empty(model.memory_size)
    weights = aligned_empty(model.weight_size)
    place_weights(model, weights)
    return Executor(model, work, weights), work, weights


def _image(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((1, 3, 16, 16)).astype(np.float32)


def test_outputs_land_in_the_callers_buffer_without_touching_neighbours(model) -> None:
    executor, _, _ = _executor(model)
    x = _image(0)
    big = np.full(64, 7.0, np.float32)
    out = big[8:18]
    executor.execute([x.view(np.uint8).reshape(-1)], [out.view(np.uint8)])
    (expected,) = run_onnxruntime(small_cnn(), {"x": x})
    np.testing.assert_allclose(out, expected.reshape(-1), rtol=1e-4, atol=1e-6)
    assert np.all(big[:8] == 7.0) and np.all(big[18:] == 7.0)


def test_switching_between_buffer_sets_rebinds_correctly(model) -> None:
    executor, _, _ = _executor(model)
    images = [_image(s) for s in range(3)]
    outs = [np.empty((1, 10), np.float32) for _ in images]
    for _ in range(2):
        for x, o in zip(images, outs):
            executor.execute([x.view(np.uint8).reshape(-1)], [o.view(np.uint8).reshape(-1)])
    for x, o in zip(images, outs):
        np.testing.assert_allclose(o, run_onnxruntime(small_cnn(), {"x": x})[0], rtol=1e-4, atol=1e-6)


def test_execute_at_raw_addresses(model) -> None:
    executor, _, _ = _executor(model)
    x = _image(4)
    out = np.empty((1, 10), np.float32)
    executor.execute_at([(address_of(x), x.nbytes)], [(address_of(out), out.nbytes)])
    np.testing.assert_allclose(out, run_onnxruntime(small_cnn(), {"x": x})[0], rtol=1e-4, atol=1e-6)


def test_weight_memory_is_read_only_to_kernels(model) -> None:
    executor, _, weights = _executor(model)
    bound = executor.graphs[0]
    weight_views = [a for _, ins, _, _ in bound.steps for a in ins if a is not None and not a.flags.writeable]
    assert weight_views, "constant inputs are bound as read-only views"
    for view in weight_views:
        assert np.shares_memory(view, weights)


def test_work_memory_smaller_than_the_plan_is_refused(model) -> None:
    weights = aligned_empty(model.weight_size)
    with pytest.raises(OmrtError, match=str(model.memory_size)):
        BoundGraph(model.graphs[0], aligned_empty(model.memory_size - 1), weights)


def test_view_at_aliases_memory() -> None:
    buf = np.arange(16, dtype=np.uint8)
    view = view_at(address_of(buf) + 4, 4)
    view[:] = 99
    assert list(buf[4:8]) == [99] * 4
    assert view_at(address_of(buf), 0).size == 0


def test_binding_cache_does_not_keep_caller_buffers_alive(model) -> None:
    import gc
    import weakref

    executor, _, _ = _executor(model)
    x = _image(6)
    out = np.empty((1, 10), np.float32)
    executor.execute([x.view(np.uint8).reshape(-1)], [out.view(np.uint8).reshape(-1)])
    ref = weakref.ref(out)
    del out
    gc.collect()
    assert ref() is None


@pytest.fixture(scope="module")
def laned():
    return read_om(write_om(compile_onnx(small_cnn(batch=4))))


def test_lanes_run_in_their_own_work_and_buffer_slices(laned) -> None:
    assert laned.graphs[0].lanes == 2
    executor, work, _ = _executor(laned)
    assert isinstance(executor.graphs[0], LanedGraph)
    lanes = executor.graphs[0].lanes
    assert all(np.shares_memory(lane._work, work[i * laned.graphs[0].lane_memory:]) for i, lane in enumerate(lanes))
    assert not np.shares_memory(lanes[0]._work, lanes[1]._work)
    x = np.random.default_rng(9).standard_normal((4, 3, 16, 16)).astype(np.float32)
    big = np.full(60, 7.0, np.float32)
    out = big[10:50]
    executor.execute([x.view(np.uint8).reshape(-1)], [out.view(np.uint8)])
    (expected,) = run_onnxruntime(small_cnn(batch=4), {"x": x})
    np.testing.assert_allclose(out.reshape(4, 10), expected, rtol=1e-4, atol=1e-6)
    assert np.all(big[:10] == 7.0) and np.all(big[50:] == 7.0)


def test_work_memory_for_one_lane_only_is_refused(laned) -> None:
    weights = aligned_empty(laned.weight_size)
    with pytest.raises(OmrtError, match=str(laned.memory_size)):
        Executor(laned, aligned_empty(laned.graphs[0].lane_memory), weights)


@pytest.mark.parametrize("threads, side_by_side", [(1, False), (2, True), (3, False)])
def test_lanes_side_by_side_only_with_no_more_threads_than_lanes(laned, monkeypatch, threads, side_by_side) -> None:
    from omrt.runtime import executor as executor_module
    from omrt.kernels.parallel import Pool

    pool = Pool(threads)
    monkeypatch.setattr(executor_module, "get_pool", lambda: pool)
    executor, _, _ = _executor(laned)
    assert executor.graphs[0].parallel is side_by_side
    x = np.random.default_rng(threads).standard_normal((4, 3, 16, 16)).astype(np.float32)
    out = np.empty((4, 10), np.float32)
    executor.execute([x.view(np.uint8).reshape(-1)], [out.view(np.uint8).reshape(-1)])
    (expected,) = run_onnxruntime(small_cnn(batch=4), {"x": x})
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-6)
