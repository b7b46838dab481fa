"""acl.mdl.execute / execute_async: buffer checks, contexts, shared work and weight memory."""
from __future__ import annotations

import threading

import numpy as np
import pytest

import acl
from omrt.runtime import memory
from omrt.runtime.model_manager import manager, work_ranges

INVALID_PARAM = 100000
GE_PARAM_INVALID = 145000
GE_MODEL_ID_INVALID = 145003
RT_MODEL_CONTEXT = 107004
RT_STREAM_CONTEXT = 107003
BUSY = 207005


def _x(seed: int = 0, batch: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((batch, 3, 16, 16)).astype(np.float32)


@pytest.fixture
def model(dev, cnn):
    mid, ret = acl.mdl.load_from_file(cnn.om_path)
    assert ret == 0
    yield mid
    acl.mdl.unload(mid)


def _io(dev, x: np.ndarray, out_size: int = 40) -> tuple[int, int, int]:
    in_ds = dev.dataset([dev.put(x)])
    out_ptr = dev.malloc(out_size)
    return in_ds, dev.dataset([(out_ptr, out_size)]), out_ptr


def test_execute_matches_onnxruntime(dev, cnn, model):
    for seed in range(3):
        x = _x(seed)
        np.testing.assert_allclose(dev.infer(model, x)[0], cnn.reference(x)[0], rtol=1e-3, atol=1e-4)


def test_zero_copy_on_host_numpy_buffers(dev, cnn, model):
    """Any real address works as I/O: numpy arrays in, numpy array out, written in place."""
    x = _x(1)
    out = np.zeros((1, 10), np.float32)
    in_ds = dev.dataset([(x.ctypes.data, x.nbytes)])
    out_ds = dev.dataset([(out.ctypes.data, out.nbytes)])
    assert acl.mdl.execute(model, in_ds, out_ds) == 0
    np.testing.assert_allclose(out, cnn.reference(x)[0], rtol=1e-3, atol=1e-4)


def test_wrong_buffer_counts(dev, model):
    x = _x()
    in_ds, out_ds, _ = _io(dev, x)
    empty = dev.dataset([])
    two = dev.dataset([dev.put(x), dev.put(x)])
    assert acl.mdl.execute(model, empty, out_ds) == GE_PARAM_INVALID
    assert acl.mdl.execute(model, two, out_ds) == GE_PARAM_INVALID
    assert acl.mdl.execute(model, in_ds, empty) == GE_PARAM_INVALID
    assert acl.mdl.execute(model, in_ds, 0) == INVALID_PARAM
    assert acl.mdl.execute(model, 0, out_ds) == INVALID_PARAM


def test_null_and_destroyed_entries(dev, model):
    x = _x()
    _, out_ds, _ = _io(dev, x)
    null_input = dev.dataset([(0, x.nbytes)])
    assert acl.mdl.execute(model, null_input, out_ds) == INVALID_PARAM
    ds = acl.mdl.create_dataset()
    dev.datasets.append(ds)
    buf = acl.create_data_buffer(*dev.put(x))
    acl.mdl.add_dataset_buffer(ds, buf)
    assert acl.destroy_data_buffer(buf) == 0
    assert acl.mdl.execute(model, ds, out_ds) == INVALID_PARAM


def test_input_sizes(dev, cnn, model):
    x = _x(2)
    _, out_ds, out_ptr = _io(dev, x)
    big = np.zeros(x.nbytes + 4, np.uint8)
    assert acl.mdl.execute(model, dev.dataset([(big.ctypes.data, big.size)]), out_ds) == INVALID_PARAM
    assert "bigger than model required size" in acl.get_recent_err_msg()
    ptr, _ = dev.put(x)
    assert acl.mdl.execute(model, dev.dataset([(ptr, x.nbytes - 65)]), out_ds) == INVALID_PARAM
    # up to 64 bytes short is accepted; the missing tail reads as zeros
    assert acl.mdl.execute(model, dev.dataset([(ptr, x.nbytes - 64)]), out_ds) == 0
    short = x.copy()
    short.reshape(-1)[-16:] = 0
    np.testing.assert_allclose(dev.get(out_ptr, (1, 10)), cnn.reference(short)[0], rtol=1e-3, atol=1e-4)


def test_output_sizes_and_bad_memory(dev, model):
    x = _x()
    in_ds, _, _ = _io(dev, x)
    small = dev.malloc(36)
    assert acl.mdl.execute(model, in_ds, dev.dataset([(small, 36)])) == INVALID_PARAM
    freed = dev.malloc(40)
    assert acl.rt.free(freed) == 0
    dev.ptrs.remove(freed)
    assert acl.mdl.execute(model, in_ds, dev.dataset([(freed, 40)])) == INVALID_PARAM
    assert acl.mdl.execute(model, dev.dataset([(freed, x.nbytes)]), dev.dataset([(small, 36)])) == INVALID_PARAM
    # a buffer claiming more than its allocation holds
    tight = dev.malloc(40)
    big_claim = dev.dataset([(tight + 80, 40)])  # the allocation is 96 bytes long
    assert acl.mdl.execute(model, in_ds, big_claim) == INVALID_PARAM


def test_null_output_is_allocated_by_sync_execute(dev, cnn, model):
    x = _x(4)
    in_ds = dev.dataset([dev.put(x)])
    out_ds = dev.dataset([(0, 0)])
    assert acl.mdl.execute(model, in_ds, out_ds) == 0
    buf = acl.mdl.get_dataset_buffer(out_ds, 0)
    ptr, size = acl.get_data_buffer_addr(buf), acl.get_data_buffer_size(buf)
    assert ptr and size == 40
    assert memory.device_table(0).at(ptr) is not None
    np.testing.assert_allclose(dev.get(ptr, (1, 10)), cnn.reference(x)[0], rtol=1e-3, atol=1e-4)
    assert acl.rt.free(ptr) == 0
    assert acl.update_data_buffer(buf, 0, 0) == 0
    assert acl.mdl.execute_async(model, in_ds, out_ds, 0) == INVALID_PARAM


def test_unknown_model_id(dev):
    x = _x()
    in_ds, out_ds, _ = _io(dev, x)
    assert acl.mdl.execute(987654, in_ds, out_ds) == GE_MODEL_ID_INVALID
    assert acl.mdl.execute_async(987654, in_ds, out_ds, 0) == GE_MODEL_ID_INVALID


def test_execute_async_then_synchronize(dev, cnn, model):
    stream, ret = acl.rt.create_stream()
    assert ret == 0
    try:
        xs = [_x(s) for s in range(3)]
        outs = []
        for x in xs:
            in_ds, out_ds, out_ptr = _io(dev, x)
            assert acl.mdl.execute_async(model, in_ds, out_ds, stream) == 0
            outs.append(out_ptr)
        assert acl.rt.synchronize_stream(stream) == 0
        for x, ptr in zip(xs, outs):
            np.testing.assert_allclose(dev.get(ptr, (1, 10)), cnn.reference(x)[0], rtol=1e-3, atol=1e-4)
        in_ds, out_ds, out_ptr = _io(dev, xs[0])
        assert acl.mdl.execute_async(model, in_ds, out_ds, 0) == 0  # the default stream
        assert acl.rt.synchronize_stream(0) == 0
        np.testing.assert_allclose(dev.get(out_ptr, (1, 10)), cnn.reference(xs[0])[0], rtol=1e-3, atol=1e-4)
    finally:
        acl.rt.destroy_stream(stream)


def test_wrong_context(dev, cnn, acl_ctx):
    mid, _ = acl.mdl.load_from_file(cnn.om_path)
    x = _x()
    in_ds, out_ds, _ = _io(dev, x)
    other, ret = acl.rt.create_context(0)  # now current
    assert ret == 0
    try:
        assert acl.mdl.execute(mid, in_ds, out_ds) == RT_MODEL_CONTEXT
        assert acl.mdl.execute_async(mid, in_ds, out_ds, 0) == RT_MODEL_CONTEXT
        assert acl.mdl.unload(mid) == RT_MODEL_CONTEXT
        desc = acl.mdl.create_desc()
        assert acl.mdl.get_desc(desc, mid) == 0  # describing is not bound to a context
        acl.mdl.destroy_desc(desc)
        stream, _ = acl.rt.create_stream()  # a stream of the other context
        assert acl.rt.set_context(acl_ctx) == 0
        assert acl.mdl.execute_async(mid, in_ds, out_ds, stream) == RT_STREAM_CONTEXT
        assert acl.mdl.execute(mid, in_ds, out_ds) == 0
        assert acl.mdl.unload(mid) == 0
        acl.rt.destroy_stream(stream)
    finally:
        acl.rt.destroy_context(other)
        acl.rt.set_context(acl_ctx)


def test_shared_work_memory_serially_across_two_models(dev, cnn, cnn_b):
    work_a, weight_a, _ = acl.mdl.query_size(cnn.om_path)
    work_b, weight_b, _ = acl.mdl.query_size(cnn_b.om_path)
    work = dev.malloc(max(work_a, work_b))
    a, ret = acl.mdl.load_from_file_with_mem(cnn.om_path, work, max(work_a, work_b), dev.malloc(weight_a), weight_a)
    assert ret == 0
    b, ret = acl.mdl.load_from_file_with_mem(cnn_b.om_path, work, max(work_a, work_b), dev.malloc(weight_b), weight_b)
    assert ret == 0
    for seed in range(3):
        x = _x(seed)
        np.testing.assert_allclose(dev.infer(a, x)[0], cnn.reference(x)[0], rtol=1e-3, atol=1e-4)
        np.testing.assert_allclose(dev.infer(b, x)[0], cnn_b.reference(x)[0], rtol=1e-3, atol=1e-4)
    assert acl.mdl.unload(a) == 0
    assert acl.mdl.unload(b) == 0


def test_shared_weights_across_four_threads(dev, cnn, acl_ctx):
    _, weight, _ = acl.mdl.query_size(cnn.om_path)
    weight_ptr = dev.malloc(weight)
    xs = [_x(100 + i) for i in range(6)]
    single_id, _ = acl.mdl.load_from_file_with_mem(cnn.om_path, 0, 0, weight_ptr, weight)
    expected = [dev.infer(single_id, x)[0] for x in xs]
    barrier = threading.Barrier(4)
    results: dict[int, list[np.ndarray]] = {}
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            assert acl.rt.set_context(acl_ctx) == 0
            mid, ret = acl.mdl.load_from_file_with_mem(cnn.om_path, 0, 0, weight_ptr, weight)
            assert ret == 0
            barrier.wait()
            outs = []
            for _ in range(5):
                for x in xs:
                    out = np.empty((1, 10), np.float32)
                    in_ds = acl.mdl.create_dataset()
                    out_ds = acl.mdl.create_dataset()
                    ib, ob = acl.create_data_buffer(x.ctypes.data, x.nbytes), acl.create_data_buffer(out.ctypes.data, 40)
                    acl.mdl.add_dataset_buffer(in_ds, ib)
                    acl.mdl.add_dataset_buffer(out_ds, ob)
                    assert acl.mdl.execute(mid, in_ds, out_ds) == 0
                    for h in (ib, ob):
                        acl.destroy_data_buffer(h)
                    acl.mdl.destroy_dataset(in_ds)
                    acl.mdl.destroy_dataset(out_ds)
                    outs.append(out)
            results[k] = outs
            assert acl.mdl.unload(mid) == 0
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for outs in results.values():
        for i, out in enumerate(outs):
            np.testing.assert_array_equal(out, expected[i % len(xs)])
    assert acl.mdl.unload(single_id) == 0


class _Gate:
    """Holds one model's execution open (after it claimed its work memory) until released."""

    def __init__(self, model_id: int) -> None:
        self.started = threading.Event()
        self.proceed = threading.Event()
        loaded = manager.get(model_id)
        real = loaded.executor.execute_at

        def gated(*args, **kwargs):
            self.started.set()
            assert self.proceed.wait(10)
            return real(*args, **kwargs)

        loaded.executor.execute_at = gated


def _two_models_on_one_work_buffer(dev, first, second) -> tuple[int, int]:
    """Both models loaded onto one work buffer sized to the larger work size."""
    size = max(acl.mdl.query_size(first.om_path)[0], acl.mdl.query_size(second.om_path)[0])
    work = dev.malloc(size)
    a, ret_a = acl.mdl.load_from_file_with_mem(first.om_path, work, size, 0, 0)
    b, ret_b = acl.mdl.load_from_file_with_mem(second.om_path, work, size, 0, 0)
    assert ret_a == ret_b == 0
    return a, b


def test_concurrent_use_of_shared_work_memory_is_refused(dev, cnn, cnn_b, acl_ctx):
    a, b = _two_models_on_one_work_buffer(dev, cnn, cnn_b)
    gate = _Gate(a)
    x = _x(11)
    out_a = np.zeros((1, 10), np.float32)
    in_a = dev.dataset([(x.ctypes.data, x.nbytes)])
    ds_a = dev.dataset([(out_a.ctypes.data, out_a.nbytes)])
    first: list[int] = []

    def run_first() -> None:
        acl.rt.set_context(acl_ctx)
        first.append(acl.mdl.execute(a, in_a, ds_a))

    t = threading.Thread(target=run_first)
    t.start()
    assert gate.started.wait(10)
    in_b, out_b, _ = _io(dev, x, out_size=24)
    assert acl.mdl.execute(b, in_b, out_b) == BUSY
    assert "overlaps" in acl.get_recent_err_msg()
    assert acl.mdl.execute(a, in_a, ds_a) == BUSY  # the same model twice at once, too
    gate.proceed.set()
    t.join()
    assert first == [0]
    np.testing.assert_allclose(out_a, cnn.reference(x)[0], rtol=1e-3, atol=1e-4)
    assert len(work_ranges) == 0
    assert acl.mdl.execute(b, in_b, out_b) == 0  # serially it is fine again
    # execute_async holds the range until the stream task finishes
    stream, _ = acl.rt.create_stream()
    gate = _Gate(a)
    assert acl.mdl.execute_async(a, in_a, ds_a, stream) == 0
    assert gate.started.wait(10)
    assert acl.mdl.execute(b, in_b, out_b) == BUSY
    gate.proceed.set()
    assert acl.rt.synchronize_stream(stream) == 0
    assert acl.mdl.execute(b, in_b, out_b) == 0
    acl.rt.destroy_stream(stream)
    assert acl.mdl.unload(a) == 0
    assert acl.mdl.unload(b) == 0


def test_async_refusal_is_reported_at_synchronize(dev, cnn, cnn_b, acl_ctx):
    a, b = _two_models_on_one_work_buffer(dev, cnn, cnn_b)
    gate = _Gate(a)
    x = _x(12)
    in_a, out_a, _ = _io(dev, x)
    in_b, out_b, _ = _io(dev, x, out_size=24)
    s1, _ = acl.rt.create_stream()
    s2, _ = acl.rt.create_stream()
    assert acl.mdl.execute_async(a, in_a, out_a, s1) == 0
    assert gate.started.wait(10)
    assert acl.mdl.execute_async(b, in_b, out_b, s2) == 0
    assert acl.rt.synchronize_stream(s2) == BUSY
    gate.proceed.set()
    assert acl.rt.synchronize_stream(s1) == 0
    for s in (s1, s2):
        acl.rt.destroy_stream(s)
    assert acl.mdl.unload(a) == 0
    assert acl.mdl.unload(b) == 0
