"""acl.mdl sizes, the four load functions, load configs, user/system memory, unload."""
from __future__ import annotations

import gc
import os

import numpy as np
import pytest

import acl
from omrt.om import load_om
from omrt.runtime import memory
from omrt.runtime.model_manager import manager

INVALID_PARAM = 100000
READ_MODEL_FAILURE = 100014
API_NOT_SUPPORT = 200001
GE_NOT_INIT = 145001
GE_MODEL_ID_INVALID = 145003
RT_MEMORY_FREE = 207002

PRIORITY, LOAD_TYPE, PATH, MEM_ADDR, MEM_SIZE = 0, 1, 2, 3, 4
WEIGHT_ADDR, WEIGHT_SIZE, WORK_ADDR, WORK_SIZE = 5, 6, 7, 8
INPUTQ_NUM, INPUTQ_ADDR, OUTPUTQ_NUM, OUTPUTQ_ADDR, MEM_OPTIMIZE, WEIGHT_PATH = 9, 10, 11, 12, 13, 14


def _x(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((1, 3, 16, 16)).astype(np.float32)


def _check(dev, model_id: int, compiled) -> None:
    x = _x()
    np.testing.assert_allclose(dev.infer(model_id, x)[0], compiled.reference(x)[0], rtol=1e-3, atol=1e-4)


# --- before init ------------------------------------------------------------------------------

def test_ge_functions_before_init_answer_145001(cnn):
    data = cnn.om_bytes()
    assert acl.mdl.query_size(cnn.om_path) == (0, 0, GE_NOT_INIT)
    assert acl.mdl.query_size_from_mem(acl.util.bytes_to_ptr(data), len(data)) == (0, 0, GE_NOT_INIT)
    assert acl.mdl.load_from_file(cnn.om_path) == (0, GE_NOT_INIT)
    assert acl.mdl.load_from_mem(acl.util.bytes_to_ptr(data), len(data)) == (0, GE_NOT_INIT)
    assert acl.mdl.load_from_file_with_mem(cnn.om_path, 0, 0, 0, 0) == (0, GE_NOT_INIT)
    assert acl.mdl.load_from_mem_with_mem(acl.util.bytes_to_ptr(data), len(data), 0, 0, 0, 0) == (0, GE_NOT_INIT)
    assert acl.mdl.unload(1) == GE_NOT_INIT
    desc = acl.mdl.create_desc()
    assert acl.mdl.get_desc(desc, 1) == GE_NOT_INIT
    assert acl.mdl.get_desc_from_file(desc, cnn.om_path) == GE_NOT_INIT
    assert acl.mdl.execute(1, 0, 0) == GE_NOT_INIT
    assert acl.mdl.set_dynamic_batch_size(1, 0, 0, 1) == GE_NOT_INIT
    assert acl.mdl.destroy_desc(desc) == 0


# --- query ------------------------------------------------------------------------------------

def test_query_size_order_is_work_weight_ret(acl_ctx, cnn):
    from omrt.om import load_om

    model = load_om(cnn.om_path)
    work, weight, ret = acl.mdl.query_size(cnn.om_path)
    assert ret == 0
    assert work == model.memory_size > 0
    assert weight >= model.weight_size > 0
    data = cnn.om_bytes()
    assert acl.mdl.query_size_from_mem(acl.util.bytes_to_ptr(data), len(data)) == (work, weight, 0)


def test_query_size_errors(acl_ctx, tmp_path):
    assert acl.mdl.query_size(str(tmp_path / "missing.om")) == (0, 0, READ_MODEL_FAILURE)
    assert acl.mdl.query_size_from_mem(0, 100)[2] == INVALID_PARAM
    junk = b"not an om file at all" * 20
    assert acl.mdl.query_size_from_mem(acl.util.bytes_to_ptr(junk), len(junk))[2] != 0
    with pytest.raises(TypeError, match="acl.mdl.query_size args parse failed"):
        acl.mdl.query_size(None)


# --- the four loads and ids -------------------------------------------------------------------

def test_all_four_loads_run_and_ids_increase(dev, cnn):
    data = cnn.om_bytes()
    work, weight, _ = acl.mdl.query_size(cnn.om_path)
    ids = []
    mid, ret = acl.mdl.load_from_file(cnn.om_path)
    ids.append(mid)
    assert ret == 0
    mid, ret = acl.mdl.load_from_mem(acl.util.bytes_to_ptr(data), len(data))
    ids.append(mid)
    assert ret == 0
    mid, ret = acl.mdl.load_from_file_with_mem(cnn.om_path, dev.malloc(work), work, dev.malloc(weight), weight)
    ids.append(mid)
    assert ret == 0
    device_copy, size = dev.put(np.frombuffer(data, np.uint8))
    mid, ret = acl.mdl.load_from_mem_with_mem(device_copy, size, dev.malloc(work), work, dev.malloc(weight), weight)
    ids.append(mid)
    assert ret == 0
    assert ids[0] >= 1 and ids == sorted(ids) and len(set(ids)) == 4
    for mid in ids:
        _check(dev, mid, cnn)
    for mid in ids:
        assert acl.mdl.unload(mid) == 0
    again, ret = acl.mdl.load_from_file(cnn.om_path)
    assert ret == 0 and again > ids[-1]
    assert acl.mdl.unload(again) == 0


def test_load_errors(acl_ctx, tmp_path):
    assert acl.mdl.load_from_file(str(tmp_path / "missing.om")) == (0, READ_MODEL_FAILURE)
    bad = tmp_path / "bad.om"
    bad.write_bytes(b"\0" * 300)
    mid, ret = acl.mdl.load_from_file(str(bad))
    assert mid == 0 and ret != 0
    assert acl.mdl.load_from_mem(0, 10) == (0, INVALID_PARAM)
    blob = b"x" * 64
    assert acl.mdl.load_from_mem(acl.util.bytes_to_ptr(blob), 0) == (0, INVALID_PARAM)
    with pytest.raises(TypeError, match="acl.mdl.load_from_file args parse failed"):
        acl.mdl.load_from_file(b"path")


def test_unload_unknown_and_twice(acl_ctx, cnn):
    assert acl.mdl.unload(0) == GE_MODEL_ID_INVALID
    assert acl.mdl.unload(987654) == GE_MODEL_ID_INVALID
    mid, _ = acl.mdl.load_from_file(cnn.om_path)
    assert acl.mdl.unload(mid) == 0
    assert acl.mdl.unload(mid) == GE_MODEL_ID_INVALID


def test_load_without_context_answers_107002(cnn):
    assert acl.init() == 0
    try:
        import threading

        result = []
        t = threading.Thread(target=lambda: result.append(acl.mdl.load_from_file(cnn.om_path)))
        t.start()
        t.join()
        assert result == [(0, 107002)]
    finally:
        acl.finalize()


def test_load_with_default_context_only(cnn):
    """Clients that only call set_device load and run in the device's default context."""
    assert acl.init() == 0
    assert acl.rt.set_device(0) == 0
    try:
        mid, ret = acl.mdl.load_from_file(cnn.om_path)
        assert ret == 0
        assert acl.mdl.unload(mid) == 0
    finally:
        acl.rt.reset_device(0)
        acl.finalize()


# --- user-managed memory ----------------------------------------------------------------------

def test_user_memory_is_used_and_not_freed_at_unload(dev, cnn):
    work, weight, _ = acl.mdl.query_size(cnn.om_path)
    work_ptr, weight_ptr = dev.malloc(work), dev.malloc(weight)
    before = len(memory.device_table(0))
    mid, ret = acl.mdl.load_from_file_with_mem(cnn.om_path, work_ptr, work, weight_ptr, weight)
    assert ret == 0
    assert len(memory.device_table(0)) == before  # nothing allocated by the runtime
    loaded = manager.get(mid)
    assert (loaded.work.addr, loaded.weight.addr) == (work_ptr, weight_ptr)
    from omrt.om import load_om

    blob = load_om(cnn.om_path).weights
    assert acl.util.ptr_to_bytes(weight_ptr, len(blob)) == blob
    _check(dev, mid, cnn)
    assert acl.rt.free(work_ptr) == RT_MEMORY_FREE   # pinned while loaded
    assert acl.rt.free(weight_ptr) == RT_MEMORY_FREE
    assert acl.mdl.unload(mid) == 0
    assert memory.device_table(0).at(work_ptr) is not None   # unload never frees user memory
    assert acl.rt.free(work_ptr) == 0
    dev.ptrs.remove(work_ptr)


def test_system_memory_is_allocated_and_freed(dev, cnn):
    table = memory.device_table(0)
    before = len(table)
    mid, ret = acl.mdl.load_from_file_with_mem(cnn.om_path, 0, 0, 0, 0)
    assert ret == 0
    assert len(table) == before + 2
    loaded = manager.get(mid)
    assert loaded.work.owned and loaded.weight.owned
    _check(dev, mid, cnn)
    assert acl.mdl.unload(mid) == 0
    assert table.at(loaded.work.addr) is None and table.at(loaded.weight.addr) is None


def test_interior_pointers_are_accepted(dev, cnn):
    work, weight, _ = acl.mdl.query_size(cnn.om_path)
    pool = dev.malloc(work + weight + 4096)
    mid, ret = acl.mdl.load_from_file_with_mem(cnn.om_path, pool + 64, work, pool + 64 + ((work + 63) // 64 + 1) * 64,
                                               weight)
    assert ret == 0, acl.get_recent_err_msg()
    _check(dev, mid, cnn)
    assert acl.mdl.unload(mid) == 0


@pytest.mark.parametrize("which", ["work", "weight"])
def test_bad_user_pointers_are_refused_with_sizes_in_message(dev, cnn, which):
    work, weight, _ = acl.mdl.query_size(cnn.om_path)
    good = {"work": (dev.malloc(work), work), "weight": (dev.malloc(weight), weight)}
    need = work if which == "work" else weight

    def load(ptr: int, size: int) -> tuple[int, int]:
        args = dict(good)
        args[which] = (ptr, size)
        return acl.mdl.load_from_file_with_mem(cnn.om_path, *args["work"], *args["weight"])

    # too small a size
    assert load(good[which][0], need - 1) == (0, INVALID_PARAM)
    assert str(need) in acl.get_recent_err_msg() and str(need - 1) in acl.get_recent_err_msg()
    # an interior pointer whose allocation cannot hold the model's bytes from there
    small = dev.malloc(need)
    assert load(small + 128, need) == (0, INVALID_PARAM)
    assert str(need) in acl.get_recent_err_msg()
    # freed memory
    freed = dev.malloc(need)
    assert acl.rt.free(freed) == 0
    dev.ptrs.remove(freed)
    assert load(freed, need) == (0, INVALID_PARAM)
    # foreign memory: a numpy array, and host memory from malloc_host, are not device memory
    arr = np.zeros(need + 64, np.uint8)
    assert load(arr.ctypes.data, need) == (0, INVALID_PARAM)
    host, ret = acl.rt.malloc_host(need)
    assert ret == 0
    assert load(host, need) == (0, INVALID_PARAM)
    assert acl.rt.free_host(host) == 0
    # nothing stays pinned by failed loads
    for ptr, _ in good.values():
        assert not memory.lookup(ptr).owners


def test_failed_load_frees_what_it_allocated(dev, cnn):
    table = memory.device_table(0)
    before = len(table)
    work, weight, _ = acl.mdl.query_size(cnn.om_path)
    mid, ret = acl.mdl.load_from_file_with_mem(cnn.om_path, 0, 0, dev.malloc(16), weight)
    assert ret == INVALID_PARAM
    assert len(table) == before + 1  # only the test's own malloc


# --- shared weights and the skipped copy ------------------------------------------------------

def test_second_load_on_same_weights_skips_copy(dev, cnn):
    _, weight, _ = acl.mdl.query_size(cnn.om_path)
    weight_ptr = dev.malloc(weight)
    first, _ = acl.mdl.load_from_file_with_mem(cnn.om_path, 0, 0, weight_ptr, weight)
    second, _ = acl.mdl.load_from_file_with_mem(cnn.om_path, 0, 0, weight_ptr, weight)
    assert manager.get(first).weights_copied is True
    assert manager.get(second).weights_copied is False
    _check(dev, second, cnn)
    assert acl.mdl.unload(first) == 0
    assert acl.rt.free(weight_ptr) == RT_MEMORY_FREE  # still used by the second
    assert acl.mdl.unload(second) == 0
    # overwritten memory is noticed: the next load copies again
    assert acl.rt.memset(weight_ptr, weight, 0, weight) == 0
    third, _ = acl.mdl.load_from_file_with_mem(cnn.om_path, 0, 0, weight_ptr, weight)
    assert manager.get(third).weights_copied is True
    _check(dev, third, cnn)
    assert acl.mdl.unload(third) == 0


# --- config handles -----------------------------------------------------------------------------

def _load_config(opts: dict[int, object]) -> tuple[int, int]:
    handle = acl.mdl.create_config_handle()
    assert handle
    try:
        for attr, value in opts.items():
            assert acl.mdl.set_config_opt(handle, attr, value) == 0, (attr, value)
        return acl.mdl.load_with_config(handle)
    finally:
        assert acl.mdl.destroy_config_handle(handle) == 0


def test_load_with_config_all_four_types(dev, cnn):
    data = cnn.om_bytes()
    ptr = acl.util.bytes_to_ptr(data)
    work, weight, _ = acl.mdl.query_size(cnn.om_path)
    configs = [
        {LOAD_TYPE: 1, PATH: cnn.om_path, PRIORITY: 3},
        {LOAD_TYPE: 2, PATH: cnn.om_path, WORK_ADDR: dev.malloc(work), WORK_SIZE: work,
         WEIGHT_ADDR: dev.malloc(weight), WEIGHT_SIZE: weight, MEM_OPTIMIZE: 1},
        {LOAD_TYPE: 3, MEM_ADDR: ptr, MEM_SIZE: len(data)},
        {LOAD_TYPE: 4, MEM_ADDR: ptr, MEM_SIZE: len(data), WORK_ADDR: 0, WEIGHT_ADDR: dev.malloc(weight),
         WEIGHT_SIZE: weight},
    ]
    for opts in configs:
        mid, ret = _load_config(opts)
        assert ret == 0, (opts, acl.get_recent_err_msg())
        _check(dev, mid, cnn)
        assert acl.mdl.unload(mid) == 0


def test_config_errors(acl_ctx, cnn):
    handle = acl.mdl.create_config_handle()
    assert acl.mdl.set_config_opt(handle, PRIORITY, 8) == INVALID_PARAM
    assert acl.mdl.set_config_opt(handle, PRIORITY, -1) == INVALID_PARAM
    assert acl.mdl.set_config_opt(handle, PRIORITY, 7) == 0
    assert acl.mdl.set_config_opt(handle, LOAD_TYPE, 0) == INVALID_PARAM
    assert acl.mdl.set_config_opt(handle, LOAD_TYPE, 7) == INVALID_PARAM
    assert acl.mdl.set_config_opt(handle, 99, 1) == INVALID_PARAM
    assert acl.mdl.set_config_opt(handle, PATH, "") == INVALID_PARAM
    with pytest.raises(TypeError, match="acl.mdl.set_config_opt args parse failed"):
        acl.mdl.set_config_opt(handle, PATH, 1234)
    with pytest.raises(TypeError, match="acl.mdl.set_config_opt args parse failed"):
        acl.mdl.set_config_opt(handle, WORK_SIZE, "big")
    for attr, value in [(INPUTQ_NUM, 1), (INPUTQ_ADDR, 0), (OUTPUTQ_NUM, 1), (OUTPUTQ_ADDR, 0),
                        (WEIGHT_PATH, "/tmp/w.bin"), (15, 0), (16, 0), (17, 0), (MEM_OPTIMIZE, 0)]:
        assert acl.mdl.set_config_opt(handle, attr, value) == 0, attr
    assert acl.mdl.load_with_config(handle) == (0, INVALID_PARAM)  # no load type yet
    assert acl.mdl.set_config_opt(handle, LOAD_TYPE, 1) == 0
    assert acl.mdl.load_with_config(handle) == (0, INVALID_PARAM)  # no path
    for queue_type in (5, 6):
        assert acl.mdl.set_config_opt(handle, LOAD_TYPE, queue_type) == 0
        assert acl.mdl.load_with_config(handle) == (0, API_NOT_SUPPORT)
    assert acl.mdl.set_config_opt(handle, LOAD_TYPE, 3) == 0
    assert acl.mdl.load_with_config(handle) == (0, INVALID_PARAM)  # no model memory
    assert acl.mdl.destroy_config_handle(handle) == 0
    assert acl.mdl.destroy_config_handle(handle) == INVALID_PARAM
    assert acl.mdl.set_config_opt(handle, PRIORITY, 1) == INVALID_PARAM
    assert acl.mdl.load_with_config(handle) == (0, INVALID_PARAM)
    assert acl.mdl.load_with_config(0) == (0, INVALID_PARAM)


# --- many cycles --------------------------------------------------------------------------------

def _rss() -> int:
    with open(f"/proc/{os.getpid()}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.parametrize("which", ["tiny", "cnn"])
def test_thousand_load_unload_cycles_do_not_grow(acl_ctx, request, which):
    """tiny has weights only; cnn has work memory and weights (two allocations per load)."""
    data = request.getfixturevalue(which).om_bytes()
    ptr = acl.util.bytes_to_ptr(data)
    table = memory.device_table(0)
    for _ in range(50):
        mid, _ = acl.mdl.load_from_mem(ptr, len(data))
        acl.mdl.unload(mid)
    gc.collect()
    allocs, rss = len(table), _rss()
    last = 0
    for _ in range(1000):
        mid, ret = acl.mdl.load_from_mem(ptr, len(data))
        assert ret == 0 and mid > last
        last = mid
        assert acl.mdl.unload(mid) == 0
    gc.collect()
    assert len(table) == allocs
    assert not manager.loaded_ids() or last not in manager.loaded_ids()
    assert _rss() - rss < 8 << 20


def test_memory_that_would_corrupt_another_model_is_refused(dev, cnn, cnn_b):
    work, weight, _ = acl.mdl.query_size(cnn.om_path)
    work_b, weight_b, _ = acl.mdl.query_size(cnn_b.om_path)
    work_ptr, weight_ptr = dev.malloc(max(work, work_b)), dev.malloc(max(weight, weight_b))
    a, ret = acl.mdl.load_from_file_with_mem(cnn.om_path, work_ptr, work, weight_ptr, weight)
    assert ret == 0
    # other weights onto weights model a reads
    assert acl.mdl.load_from_file_with_mem(cnn_b.om_path, 0, 0, weight_ptr, weight_b) == (0, INVALID_PARAM)
    # work memory over model a's weights, and weights over model a's work memory
    assert acl.mdl.load_from_file_with_mem(cnn_b.om_path, weight_ptr, work_b, 0, 0) == (0, INVALID_PARAM)
    assert acl.mdl.load_from_file_with_mem(cnn.om_path, 0, 0, work_ptr, weight) == (0, INVALID_PARAM)
    # one load's own work and weight memory overlapping
    both = dev.malloc(work + weight)
    assert acl.mdl.load_from_file_with_mem(cnn_b.om_path, both, work_b, both + 64, weight_b) == (0, INVALID_PARAM)
    # the same weights at the same place, and shared work memory, are fine
    b, ret = acl.mdl.load_from_file_with_mem(cnn.om_path, work_ptr, work, weight_ptr, weight)
    assert ret == 0
    _check(dev, a, cnn)
    _check(dev, b, cnn)
    assert acl.mdl.unload(a) == 0
    assert acl.mdl.unload(b) == 0


def test_batch_lanes_behind_user_managed_memory(dev, cnn4):
    """A batch-4 model in lanes: ACL still sees one batch-4 model, its work size covers both lanes,
    and one shared weight buffer serves two loads."""
    model = load_om(cnn4.om_path)
    assert model.graphs[0].lanes == 2
    work, weight, ret = acl.mdl.query_size(cnn4.om_path)
    assert ret == 0 and work == model.memory_size == 2 * model.graphs[0].lane_memory
    weight_ptr = dev.malloc(weight)
    ids = []
    for _ in range(2):
        mid, ret = acl.mdl.load_from_file_with_mem(cnn4.om_path, dev.malloc(work), work, weight_ptr, weight)
        assert ret == 0
        ids.append(mid)
    desc = acl.mdl.create_desc()
    assert acl.mdl.get_desc(desc, ids[0]) == 0
    assert acl.mdl.get_input_dims(desc, 0)[0]["dims"] == [4, 3, 16, 16]
    assert acl.mdl.get_input_size_by_index(desc, 0) == 4 * 3 * 16 * 16 * 4
    assert acl.mdl.destroy_desc(desc) == 0
    x = np.random.default_rng(3).standard_normal((4, 3, 16, 16)).astype(np.float32)
    for mid in ids:
        np.testing.assert_allclose(dev.infer(mid, x)[0], cnn4.reference(x)[0], rtol=1e-3, atol=1e-4)
        assert acl.mdl.unload(mid) == 0
    mid, ret = acl.mdl.load_from_file_with_mem(cnn4.om_path, dev.malloc(work), work - 64, weight_ptr, weight)
    assert ret != 0 and mid == 0
