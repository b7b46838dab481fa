"""Allocation table, alignment, lazy reservation, capacity, pointer validation and pinning."""
from __future__ import annotations

import ctypes

import numpy as np
import pytest

from omrt import constants as C
from omrt.errors import OmrtError
from omrt.runtime import memory


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


@pytest.fixture
def dev_ptr():
    ptrs = []

    def alloc(size: int, **kw) -> int:
        ptrs.append(memory.malloc(size, 0, **kw))
        return ptrs[-1]

    yield alloc
    for p in ptrs:
        if memory.device_table(0).at(p) is not None:
            memory.free(p)


def test_length_and_alignment(dev_ptr):
    for size in (1, 31, 32, 33, 100, 4096):
        p = dev_ptr(size)
        alloc = memory.find_allocation(p, size, device=0)
        assert p % 64 == 0
        assert alloc.length == memory.align_up(size, 32) + 32
        assert alloc.size == size


def test_align32_has_no_padding(dev_ptr):
    p = dev_ptr(33, pad=False)
    assert memory.find_allocation(p, 1, device=0).length == 64


def test_size_zero_is_invalid_param():
    with pytest.raises(OmrtError) as e:
        memory.malloc(0, 0)
    assert e.value.code == C.ACL_ERROR_INVALID_PARAM


def test_huge_malloc_is_lazy(dev_ptr):
    before = _rss()
    p = dev_ptr(26 << 30)
    assert _rss() - before < (64 << 20)
    free_bytes, total = memory.mem_info(0)
    assert total - free_bytes >= 26 << 30
    # touching a page commits only that page
    ctypes.memset(p + (13 << 30), 7, 16)
    assert memory.view(p + (13 << 30), 16)[0] == 7


def test_capacity_exceeded(monkeypatch, dev_ptr):
    monkeypatch.setenv("OMRT_DEVICE_MEMORY", str(1 << 20))
    dev_ptr(512 << 10)
    with pytest.raises(OmrtError) as e:
        memory.malloc(600 << 10, 0)
    assert e.value.code == C.ACL_ERROR_RT_MEMORY_ALLOCATION
    assert "out of memory" in e.value.message


def test_free_rules(dev_ptr):
    p = dev_ptr(100)
    for bad, code in ((0, C.ACL_ERROR_INVALID_PARAM), (p + 8, C.ACL_ERROR_RT_MEMORY_FREE),
                      (12345, C.ACL_ERROR_RT_MEMORY_FREE)):
        with pytest.raises(OmrtError) as e:
            memory.free(bad)
        assert e.value.code == code
    memory.free(p)
    with pytest.raises(OmrtError):
        memory.free(p)


def test_host_and_device_tables_are_separate(dev_ptr):
    h = memory.malloc_host(64)
    d = dev_ptr(64)
    with pytest.raises(OmrtError, match="free_host"):
        memory.free(h)
    with pytest.raises(OmrtError, match="use acl.rt.free"):
        memory.free_host(d)
    memory.free_host(h)


def test_find_allocation_interior_and_bounds(dev_ptr):
    p = dev_ptr(100)  # length 160
    assert memory.find_allocation(p + 10, 150, device=0).ptr == p
    with pytest.raises(OmrtError) as e:
        memory.find_allocation(p + 10, 151, device=0)
    assert "holds 150 bytes" in e.value.message
    with pytest.raises(OmrtError):
        memory.find_allocation(p, 8, device=1)
    with pytest.raises(OmrtError) as e:
        memory.find_allocation(p + 200, 1, device=0, code=C.ACL_ERROR_GE_EXEC_MODEL_ADDR_INVALID)
    assert e.value.code == C.ACL_ERROR_GE_EXEC_MODEL_ADDR_INVALID


def test_lookup_many_allocations(dev_ptr):
    ptrs = [dev_ptr(64 * (i + 1)) for i in range(50)]
    for i, p in enumerate(ptrs):
        assert memory.lookup(p + 64 * (i + 1) - 1).ptr == p


def test_pin_refuses_free_until_unpinned(dev_ptr):
    p = dev_ptr(256)
    memory.pin(p + 32, "model 1")
    with pytest.raises(OmrtError) as e:
        memory.free(p)
    assert e.value.code == C.ACL_ERROR_RT_MEMORY_FREE and "model 1" in e.value.message
    memory.unpin(p, "model 1")
    memory.unpin(p, "model 1")  # idempotent
    memory.free(p)


def test_memcpy_between_numpy_and_device(dev_ptr):
    p = dev_ptr(64)
    src = np.arange(16, dtype=np.float32)
    memory.memcpy(p, 64, src.ctypes.data, 64, C.ACL_MEMCPY_HOST_TO_DEVICE)
    dst = np.zeros(16, np.float32)
    memory.memcpy(dst.ctypes.data, 64, p, 64, C.ACL_MEMCPY_DEVICE_TO_HOST)
    np.testing.assert_array_equal(dst, src)


def test_memcpy_checks(dev_ptr):
    p = dev_ptr(100)  # length 160
    buf = np.zeros(400, np.uint8)
    a = buf.ctypes.data
    memory.memcpy(p, 0, a, 0, 0)  # count 0 is fine
    memory.memcpy(p + 60, 100, a, 100, 3)  # interior pointer up to the end
    cases = [((0, 10, a, 10, 1), C.ACL_ERROR_INVALID_PARAM),
             ((p, 10, 0, 10, 1), C.ACL_ERROR_INVALID_PARAM),
             ((p, 10, a, 10, 8), C.ACL_ERROR_INVALID_PARAM),
             ((p, 10, a, 11, 1), C.ACL_ERROR_RT_PARAM_INVALID),
             ((p + 61, 100, a, 100, 1), C.ACL_ERROR_RT_PARAM_INVALID),
             ((a, 200, p, 161, 2), C.ACL_ERROR_RT_PARAM_INVALID)]
    for args, code in cases:
        with pytest.raises(OmrtError) as e:
            memory.memcpy(*args)
        assert e.value.code == code, args


def test_memset_and_view(dev_ptr):
    p = dev_ptr(32)
    memory.memset(p, 64, 0x1AB, 64)
    v = memory.view(p, 64)
    assert (v == 0xAB).all()
    v[:4] = 1
    assert ctypes.string_at(p, 4) == b"\x01" * 4
    with pytest.raises(OmrtError):
        memory.memset(p, 10, 0, 11)
    with pytest.raises(OmrtError):
        memory.view(p, 65)
    assert memory.view(p, 16, np.float32).shape == (4,)


def test_memcpy_from_unmapped_memory_is_an_error_not_a_crash() -> None:
    import ctypes
    import mmap

    from omrt.errors import OmrtError
    from omrt.runtime import memory

    m = mmap.mmap(-1, mmap.PAGESIZE)
    probe = ctypes.c_char.from_buffer(m)
    gone = ctypes.addressof(probe)
    del probe
    m.close()
    dst = bytearray(16)
    dst_ptr = ctypes.addressof(ctypes.c_char.from_buffer(dst))
    with pytest.raises(OmrtError, match="not mapped"):
        memory.memcpy(dst_ptr, 16, gone, 16, 2)
