"""Device and host memory at real process addresses, tracked in per-device allocation tables.

Every allocation is its own anonymous private mapping reserved with MAP_NORESERVE, so a huge
allocation costs address space only until it is touched. Tables are sorted by start address and
searched with bisect, so any interior pointer can be validated in O(log n).
See docs/memory-model.md.
"""
from __future__ import annotations

import bisect
import ctypes
import mmap
import os
import threading
from dataclasses import dataclass, field

import numpy as np

from omrt import constants as C
from omrt.errors import OmrtError

ALIGN = 32
PAD = 32
_MAP_NORESERVE = getattr(mmap, "MAP_NORESERVE", 0x4000)
_DEFAULT_DEVICE_MEMORY = 32 << 30
_DEFAULT_HOST_MEMORY = 64 << 30
MEMCPY_KINDS = range(0, 8)


def align_up(n: int, a: int = ALIGN) -> int:
    return (n + a - 1) // a * a


def _env_bytes(name: str, default: int) -> int:
    try:
        value = int(os.environ.get(name, default))
    except ValueError:
        return default
    return value if value > 0 else default


def device_capacity() -> int:
    """Bytes one device may hand out (OMRT_DEVICE_MEMORY; default 32 GiB of address space)."""
    return _env_bytes("OMRT_DEVICE_MEMORY", _DEFAULT_DEVICE_MEMORY)


def host_capacity() -> int:
    """Bytes malloc_host may hand out (OMRT_HOST_MEMORY; default 64 GiB of address space)."""
    return _env_bytes("OMRT_HOST_MEMORY", _DEFAULT_HOST_MEMORY)


@dataclass(eq=False)
class Allocation:
    """One live allocation: [ptr, ptr+length) is usable; `size` is what the caller asked for."""

    ptr: int
    length: int
    size: int
    device: int | None  # None: host memory from malloc_host
    _map: mmap.mmap = field(repr=False)
    owners: set = field(default_factory=set)

    @property
    def end(self) -> int:
        return self.ptr + self.length

    def contains(self, ptr: int, size: int = 0) -> bool:
        return self.ptr <= ptr and ptr + size <= self.end and ptr < self.end


class AllocationTable:
    """Live allocations of one device (or of the host), sorted by start; thread-safe."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._starts: list[int] = []
        self._allocs: dict[int, Allocation] = {}
        self.used = 0
        self.lock = threading.RLock()

    def insert(self, alloc: Allocation) -> None:
        with self.lock:
            bisect.insort(self._starts, alloc.ptr)
            self._allocs[alloc.ptr] = alloc
            self.used += alloc.length

    def remove(self, alloc: Allocation) -> None:
        with self.lock:
            i = bisect.bisect_left(self._starts, alloc.ptr)
            del self._starts[i]
            del self._allocs[alloc.ptr]
            self.used -= alloc.length

    def at(self, ptr: int) -> Allocation | None:
        """The allocation that starts exactly at `ptr`."""
        return self._allocs.get(ptr)

    def containing(self, ptr: int) -> Allocation | None:
        """The allocation whose [start, end) holds `ptr` (interior pointers included)."""
        with self.lock:
            i = bisect.bisect_right(self._starts, ptr) - 1
            if i < 0:
                return None
            alloc = self._allocs[self._starts[i]]
            return alloc if ptr < alloc.end else None

    def __len__(self) -> int:
        return len(self._starts)


_tables_lock = threading.Lock()
_device_tables: dict[int, AllocationTable] = {}
host_table = AllocationTable("host")


def device_table(device: int) -> AllocationTable:
    with _tables_lock:
        table = _device_tables.get(device)
        if table is None:
            table = _device_tables[device] = AllocationTable(f"device {device}")
        return table


def _all_tables() -> list[AllocationTable]:
    with _tables_lock:
        return [*_device_tables.values(), host_table]


def lookup(ptr: int) -> Allocation | None:
    """The tracked allocation (any device, or host) that holds `ptr`, or None for other memory."""
    for table in _all_tables():
        alloc = table.containing(ptr)
        if alloc is not None:
            return alloc
    return None


# --- allocate / free --------------------------------------------------------------------------

def _reserve(length: int) -> tuple[mmap.mmap, int]:
    try:
        m = mmap.mmap(-1, length, flags=mmap.MAP_PRIVATE | _MAP_NORESERVE,
                      prot=mmap.PROT_READ | mmap.PROT_WRITE)
    except (OSError, ValueError, OverflowError) as e:
        raise OmrtError(C.ACL_ERROR_RT_MEMORY_ALLOCATION, f"cannot reserve {length} bytes: {e}") from None
    probe = ctypes.c_char.from_buffer(m)
    address = ctypes.addressof(probe)
    del probe
    return m, address


def _allocate(table: AllocationTable, size: int, length: int, capacity: int,
              device: int | None) -> Allocation:
    if size <= 0:
        raise OmrtError(C.ACL_ERROR_INVALID_PARAM, "size must be greater than 0")
    with table.lock:
        free = capacity - table.used
        if length > free:
            raise OmrtError(C.ACL_ERROR_RT_MEMORY_ALLOCATION,
                            f"out of memory on {table.name}: asked {size} bytes "
                            f"({length} with alignment), {free} of {capacity} free")
        m, ptr = _reserve(length)
        alloc = Allocation(ptr, length, size, device, m)
        table.insert(alloc)
    return alloc


def malloc(size: int, device: int, policy: int = C.ACL_MEM_MALLOC_HUGE_FIRST, *, pad: bool = True) -> int:
    """Device memory of at least `size` bytes: length ALIGN_UP(size,32)+32 (pad) or ALIGN_UP(size,32),
    start 64-byte aligned (page aligned in fact). Every policy is served the same way."""
    length = align_up(size) + (PAD if pad else 0)
    return _allocate(device_table(device), size, length, device_capacity(), device).ptr


def malloc_host(size: int) -> int:
    """Host memory, tracked like device memory so the same pointer checks apply."""
    return _allocate(host_table, size, align_up(size) + PAD, host_capacity(), None).ptr


def _release(table: AllocationTable, alloc: Allocation) -> None:
    with table.lock:
        if table.at(alloc.ptr) is not alloc:
            raise OmrtError(C.ACL_ERROR_RT_MEMORY_FREE, f"{alloc.ptr:#x} is already freed")
        if alloc.owners:
            owners = ", ".join(sorted(map(str, alloc.owners)))
            raise OmrtError(C.ACL_ERROR_RT_MEMORY_FREE,
                            f"memory {alloc.ptr:#x} is still in use by {owners}; unload it first")
        table.remove(alloc)
    try:
        alloc._map.close()
    except BufferError:
        pass  # a Python object still exports the mapping; it is unmapped when that goes away


def free(ptr: int) -> None:
    """Free device memory by the exact pointer malloc returned."""
    if ptr == 0:
        raise OmrtError(C.ACL_ERROR_INVALID_PARAM, "devPtr is NULL")
    with _tables_lock:
        tables = list(_device_tables.values())
    for table in tables:
        alloc = table.at(ptr)
        if alloc is not None:
            return _release(table, alloc)
    raise OmrtError(C.ACL_ERROR_RT_MEMORY_FREE, _not_a_start(ptr, "acl.rt.malloc", "free_host"))


def free_host(ptr: int) -> None:
    """Free host memory by the exact pointer malloc_host returned."""
    if ptr == 0:
        raise OmrtError(C.ACL_ERROR_INVALID_PARAM, "hostPtr is NULL")
    alloc = host_table.at(ptr)
    if alloc is None:
        raise OmrtError(C.ACL_ERROR_RT_MEMORY_FREE, _not_a_start(ptr, "acl.rt.malloc_host", "free"))
    _release(host_table, alloc)


def _not_a_start(ptr: int, allocator: str, other: str) -> str:
    alloc = lookup(ptr)
    if alloc is None:
        return f"{ptr:#x} was not returned by {allocator} (or is already freed)"
    if alloc.ptr != ptr:
        return f"{ptr:#x} points {ptr - alloc.ptr} bytes inside allocation {alloc.ptr:#x}; free its start"
    return f"{ptr:#x} is {'host' if alloc.device is None else 'device'} memory; use acl.rt.{other}"


# --- validation and pinning (for the model manager) -------------------------------------------

def find_allocation(ptr: int, size: int, device: int | None = None,
                    code: int = C.ACL_ERROR_INVALID_PARAM) -> Allocation:
    """The live allocation of `device` (default: the current context's) holding [ptr, ptr+size)."""
    if device is None:
        from omrt.runtime import context
        device = context.current().device
    alloc = device_table(device).containing(ptr) if ptr else None
    if alloc is None or not alloc.contains(ptr, size):
        where = "NULL" if ptr == 0 else f"{ptr:#x}"
        detail = "" if alloc is None else f"; allocation {alloc.ptr:#x} holds {alloc.end - ptr} bytes from there"
        raise OmrtError(code, f"[{where}, +{size}) is not inside one live allocation of device {device}{detail}")
    return alloc


def pin(ptr: int, owner: object) -> Allocation:
    """Mark the allocation holding `ptr` as used by `owner` (e.g. "model 3"); free refuses it then."""
    alloc = lookup(ptr)
    if alloc is None:
        raise OmrtError(C.ACL_ERROR_INVALID_PARAM, f"{ptr:#x} is not inside a live allocation")
    with _table_of(alloc).lock:
        alloc.owners.add(owner)
    return alloc


def unpin(ptr: int, owner: object) -> None:
    """Drop `owner`'s pin; unknown pointers and owners are ignored so unload is always safe."""
    alloc = lookup(ptr)
    if alloc is not None:
        with _table_of(alloc).lock:
            alloc.owners.discard(owner)


def _table_of(alloc: Allocation) -> AllocationTable:
    return host_table if alloc.device is None else device_table(alloc.device)


_PAGE = mmap.PAGESIZE
_MAX_PROBE_PAGES = 1 << 16
try:
    _libc = ctypes.CDLL(None, use_errno=True)
    _mincore = _libc.mincore
    _mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    _mincore.restype = ctypes.c_int
except (OSError, AttributeError):
    _mincore = None


def _pages_mapped(start: int, pages: int) -> bool:
    vec = (ctypes.c_ubyte * pages)()
    return _mincore(start, pages * _PAGE, vec) == 0


def is_mapped(addr: int, size: int) -> bool:
    """Whether every page of [addr, addr+size) is mapped in this process (mincore fails on holes),
    so a freed or invented address is an error instead of a crash. Very long ranges are checked at
    both ends only."""
    if _mincore is None:
        return True
    start = addr - addr % _PAGE
    pages = (addr + max(size, 1) - start + _PAGE - 1) // _PAGE
    if pages <= _MAX_PROBE_PAGES:
        return _pages_mapped(start, pages)
    return _pages_mapped(start, 1) and _pages_mapped(start + (pages - 1) * _PAGE, 1)


def check_range(ptr: int, count: int, what: str, code: int = C.ACL_ERROR_RT_PARAM_INVALID) -> None:
    """[ptr, ptr+count) must be real memory: inside one tracked allocation when it starts in one,
    otherwise mapped memory of the process (numpy arrays, bytes objects, ctypes buffers)."""
    if ptr == 0:
        raise OmrtError(C.ACL_ERROR_INVALID_PARAM, f"{what} is NULL")
    alloc = lookup(ptr)
    if alloc is not None:
        if ptr + count > alloc.end:
            raise OmrtError(code, f"{what} range [{ptr:#x}, +{count}) runs {ptr + count - alloc.end} bytes past "
                                  f"the end of allocation {alloc.ptr:#x} ({alloc.length} bytes)")
    elif not is_mapped(ptr, count):
        raise OmrtError(code, f"{what} range [{ptr:#x}, +{count}) is not mapped memory (freed, or never allocated)")


# --- copy / fill / view -----------------------------------------------------------------------

def check_memcpy(dst: int, dst_max: int, src: int, count: int, kind: int) -> None:
    """All memcpy argument checks, shared by the sync and async forms."""
    if kind not in MEMCPY_KINDS:
        raise OmrtError(C.ACL_ERROR_INVALID_PARAM, f"memcpy kind {kind} is not an aclrtMemcpyKind (0..7)")
    if dst == 0 or src == 0:
        raise OmrtError(C.ACL_ERROR_INVALID_PARAM, f"memcpy {'dst' if dst == 0 else 'src'} is NULL")
    if count > dst_max:
        raise OmrtError(C.ACL_ERROR_RT_PARAM_INVALID, f"memcpy count {count} exceeds destMax {dst_max}")
    if count:
        check_range(dst, count, "memcpy dst")
        check_range(src, count, "memcpy src")


def memcpy(dst: int, dst_max: int, src: int, count: int, kind: int) -> None:
    """Copy between any real addresses; every kind 0..7 behaves the same on a CPU."""
    check_memcpy(dst, dst_max, src, count, kind)
    if count:
        ctypes.memmove(dst, src, count)


def check_memset(ptr: int, max_count: int, count: int) -> None:
    if ptr == 0:
        raise OmrtError(C.ACL_ERROR_INVALID_PARAM, "memset devPtr is NULL")
    if count > max_count:
        raise OmrtError(C.ACL_ERROR_RT_PARAM_INVALID, f"memset count {count} exceeds maxCount {max_count}")
    if count:
        check_range(ptr, count, "memset devPtr")


def memset(ptr: int, max_count: int, value: int, count: int) -> None:
    """Fill `count` bytes with the low byte of `value`."""
    check_memset(ptr, max_count, count)
    if count:
        ctypes.memset(ptr, value & 0xFF, count)


def view(ptr: int, size: int, dtype: np.dtype | str = np.uint8) -> np.ndarray:
    """A writable numpy view of [ptr, ptr+size) (no copy, no export of the mapping, so free stays
    possible); the range is checked against tracked allocations first."""
    check_range(ptr, size, "view")
    dtype = np.dtype(dtype)
    if size == 0:
        return np.empty(0, dtype)
    buf = (ctypes.c_char * size).from_address(ptr)
    return np.frombuffer(buf, dtype=dtype, count=size // dtype.itemsize)


def mem_info(device: int) -> tuple[int, int]:
    """(free, total) bytes of `device`."""
    total = device_capacity()
    return max(total - device_table(device).used, 0), total
