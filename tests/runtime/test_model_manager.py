"""The model manager's parts on their own: work-range registry, address checks, weight placement,
memory claims, and model descriptions."""
from __future__ import annotations

import mmap

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from omrt.errors import OmrtError
from omrt.om.model import GraphPlan, Location, OfflineModel, Region as Space, TensorDesc, TensorRef
from omrt.runtime import memory
from omrt.runtime.model_desc import ModelDescription, acl_format, dims_dict
from omrt.runtime.memory import is_mapped
from omrt.runtime.model_manager import (
    BUSY_CODE,
    WorkRanges,
    check_memory,
    claim,
    release,
)


# --- work ranges --------------------------------------------------------------------------------

def test_overlapping_ranges_are_refused_and_released():
    ranges = WorkRanges()
    token = ranges.acquire(1000, 100, model_id=1)
    with pytest.raises(OmrtError) as e:
        ranges.acquire(1099, 10, model_id=2)
    assert e.value.code == BUSY_CODE and "model 1" in e.value.message
    adjacent = ranges.acquire(1100, 10, model_id=2)
    below = ranges.acquire(990, 10, model_id=3)
    ranges.release(token)
    again = ranges.acquire(1050, 10, model_id=2)
    for t in (adjacent, below, again):
        ranges.release(t)
    assert len(ranges) == 0


def test_empty_ranges_are_not_registered():
    ranges = WorkRanges()
    assert ranges.acquire(1000, 0, model_id=1) == 0
    assert ranges.acquire(1000, 0, model_id=2) == 0
    ranges.release(0)
    assert len(ranges) == 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 200), st.integers(1, 50)), min_size=1, max_size=12))
def test_registered_ranges_never_overlap(requests):
    ranges = WorkRanges()
    held: list[tuple[int, int]] = []
    for start, size in requests:
        clash = any(s < start + size and start < s + n for s, n in held)
        try:
            ranges.acquire(start, size, model_id=1)
        except OmrtError:
            assert clash
        else:
            assert not clash
            held.append((start, size))


# --- addresses ----------------------------------------------------------------------------------

def test_is_mapped_and_check_memory():
    arr = np.zeros(10000, np.uint8)
    assert is_mapped(arr.ctypes.data, arr.nbytes)
    m = mmap.mmap(-1, 2 * mmap.PAGESIZE)
    import ctypes

    probe = ctypes.c_char.from_buffer(m)
    addr = ctypes.addressof(probe)
    del probe
    m.close()
    assert not is_mapped(addr, 16)
    with pytest.raises(OmrtError):
        check_memory(addr, 16, "buffer")
    with pytest.raises(OmrtError):
        check_memory(0, 16, "buffer")
    check_memory(arr.ctypes.data, arr.nbytes, "buffer")


def test_check_memory_against_tracked_allocations():
    ptr = memory.malloc(100, 0)
    try:
        check_memory(ptr + 10, 90, "buffer")
        alloc = memory.lookup(ptr)
        with pytest.raises(OmrtError, match="past the end"):
            check_memory(ptr + 10, alloc.length, "buffer")
    finally:
        memory.free(ptr)


# --- claims and weights -------------------------------------------------------------------------

def test_claim_system_and_user_memory():
    region = claim("work", 0, 0, 1000, 0, "model x")
    assert region.owned and memory.lookup(region.addr).owners == {"model x"}
    release(region, "model x")
    assert memory.device_table(0).at(region.addr) is None
    assert claim("work", 0, 0, 0, 0, "model x").addr == 0
    ptr = memory.malloc(4096, 0)
    try:
        region = claim("weight", ptr + 64, 2000, 2000, 0, "model y")
        assert not region.owned
        with pytest.raises(OmrtError):
            memory.free(ptr)
        release(region, "model y")
        with pytest.raises(OmrtError, match="requires 3000 bytes, given 2000"):
            claim("weight", ptr, 2000, 3000, 0, "model y")
        with pytest.raises(OmrtError, match="5000 bytes"):
            claim("weight", ptr + 64, 5000, 5000, 0, "model y")
        assert not memory.lookup(ptr).owners
    finally:
        memory.free(ptr)


def _model_with_weights(weights: bytes) -> OfflineModel:
    x = TensorDesc("x", np.dtype(np.float32), (2, 3), "NCHW")
    y = TensorDesc("y", np.dtype(np.float32), (2, 3), "ND")
    plan = GraphPlan("g", [TensorRef(x, Location(Space.INPUT, 0, 0))], [TensorRef(y, Location(Space.OUTPUT, 0, 0))],
                     [], [], 0)
    return OfflineModel("m", [x], [y], [plan], weights)


# --- descriptions -------------------------------------------------------------------------------

def test_description_of_static_model():
    desc = ModelDescription()
    desc.fill(_model_with_weights(b""), model_id=5)
    assert desc.model_id == 5
    assert desc.input(0).size == 24 and desc.input(0).format == 0 and desc.output(0).format == 2
    assert desc.input(0).data_type == 0
    assert desc.cur_output_dims(0, None) == (2, 3)
    assert desc.dynamic_input_index() is None
    with pytest.raises(OmrtError):
        desc.output(1)
    assert dims_dict("y", (2, 3)) == {"name": "y", "dimCount": 2, "dims": [2, 3]}


def test_formats():
    assert [acl_format(n) for n in ("NCHW", "NHWC", "ND", "NCDHW", "weird")] == [0, 1, 2, 30, -1]


def test_index_of():
    desc = ModelDescription()
    desc.fill(_model_with_weights(b""))
    assert desc.index_of("x") == 0 and desc.index_of("y", outputs=True) == 0
    assert desc.index_of("y") is None and desc.index_of("ascend_mbatch_shape_data") is None
