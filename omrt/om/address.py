"""How a Location becomes one int64 address in OpDef.input_i/output_i, and back.

Work memory is [0, memory_size). Model inputs and outputs live in a zero-copy region placed
right after it: one slot per input, then one per output, each starting on a 64-byte boundary and
at least 64 bytes long, so every (slot, offset) pair has its own address.
"""
from __future__ import annotations

from dataclasses import dataclass

from omrt.constants import ACL_ERROR_GE_EXEC_MODEL_ADDR_INVALID
from omrt.errors import OmrtError
from omrt.om.model import Location, Region, TensorDesc

ZERO_COPY_ALIGN = 64


def _align(n: int) -> int:
    return (n + ZERO_COPY_ALIGN - 1) // ZERO_COPY_ALIGN * ZERO_COPY_ALIGN


@dataclass(frozen=True)
class AddressMap:
    memory_size: int
    n_inputs: int
    starts: tuple[int, ...]     # slot start, relative to memory_size
    sizes: tuple[int, ...]      # tensor bytes of the slot's model input/output

    @classmethod
    def build(cls, memory_size: int, inputs: list[TensorDesc], outputs: list[TensorDesc]) -> "AddressMap":
        starts, sizes, pos = [], [], 0
        for desc in [*inputs, *outputs]:
            starts.append(pos)
            sizes.append(desc.nbytes)
            pos += _align(max(desc.nbytes, 1))
        return cls(memory_size, len(inputs), tuple(starts), tuple(sizes))

    @property
    def zero_copy_size(self) -> int:
        """Bytes of the zero-copy region (model attr zero_copy_memory_size)."""
        if not self.starts:
            return 0
        return self.starts[-1] + _align(max(self.sizes[-1], 1))

    def _slot(self, loc: Location) -> int:
        if loc.region == Region.INPUT and 0 <= loc.index < self.n_inputs:
            return loc.index
        if loc.region == Region.OUTPUT and 0 <= loc.index < len(self.starts) - self.n_inputs:
            return self.n_inputs + loc.index
        raise OmrtError(ACL_ERROR_GE_EXEC_MODEL_ADDR_INVALID,
                        f"{loc.region.name} index {loc.index} names no model input/output")

    def encode(self, loc: Location, nbytes: int, what: str) -> int:
        """Address of a WORK/INPUT/OUTPUT location holding nbytes; out-of-range is an error."""
        if loc.region == Region.WORK:
            if not (0 <= loc.offset < self.memory_size and loc.offset + nbytes <= self.memory_size):
                raise OmrtError(ACL_ERROR_GE_EXEC_MODEL_ADDR_INVALID,
                                f"{what}: work bytes [{loc.offset}, {loc.offset + nbytes}) outside "
                                f"work memory [0, {self.memory_size})")
            return loc.offset
        if loc.region == Region.WEIGHT:
            raise OmrtError(ACL_ERROR_GE_EXEC_MODEL_ADDR_INVALID, f"{what}: weight memory is read-only here")
        slot = self._slot(loc)
        self._check_slot(slot, loc.offset, nbytes, what)
        return self.memory_size + self.starts[slot] + loc.offset

    def decode(self, addr: int, nbytes: int, what: str) -> Location:
        """The Location of an address; anything outside work memory and the I/O slots is an error."""
        if 0 <= addr < self.memory_size:
            if addr + nbytes > self.memory_size:
                raise OmrtError(ACL_ERROR_GE_EXEC_MODEL_ADDR_INVALID,
                                f"{what}: bytes [{addr}, {addr + nbytes}) run past work memory {self.memory_size}")
            return Location(Region.WORK, addr)
        rel = addr - self.memory_size
        for slot in range(len(self.starts) - 1, -1, -1):
            if rel >= self.starts[slot]:
                off = rel - self.starts[slot]
                self._check_slot(slot, off, nbytes, what)
                if slot < self.n_inputs:
                    return Location(Region.INPUT, off, slot)
                return Location(Region.OUTPUT, off, slot - self.n_inputs)
        raise OmrtError(ACL_ERROR_GE_EXEC_MODEL_ADDR_INVALID,
                        f"{what}: address {addr} is outside work memory and the zero-copy region")

    def _check_slot(self, slot: int, off: int, nbytes: int, what: str) -> None:
        if not (0 <= off and off + nbytes <= self.sizes[slot] and off < max(self.sizes[slot], 1)):
            kind = "input" if slot < self.n_inputs else "output"
            idx = slot if slot < self.n_inputs else slot - self.n_inputs
            raise OmrtError(ACL_ERROR_GE_EXEC_MODEL_ADDR_INVALID,
                            f"{what}: bytes [{off}, {off + nbytes}) outside model {kind} {idx} "
                            f"of {self.sizes[slot]} bytes")
