"""Static memory planner: one byte offset in work memory for every intermediate block.

Algorithm: greedy by size, offset-calculation form (Pisarchyk & Lee 2020, arXiv:2001.03288; the
same scheme as TFLite's arena planner). Blocks are placed largest first; each one goes into the
smallest gap between already-placed blocks whose lifetimes overlap its own, or above the highest
of them when no gap is big enough. Placing large blocks first leaves small ones to fill the holes,
which on chain-like CNNs reaches the max-live lower bound (reference/peers.md §5.3).

Invariants (checked by `validate_plan` and the property tests):
  * two blocks live at a common step never share a byte of memory;
  * every offset is a multiple of `alignment`; every block occupies its size rounded up to it;
  * lower_bound <= size <= naive, where lower_bound is the most aligned bytes live at one step
    and naive is the sum of all aligned sizes (one buffer per block);
  * the plan depends only on the set of blocks and the alignment (never on hash or list order
    where keys are mutually comparable), so the same model always compiles to the same bytes.

Cost: each placement scans the placed blocks once, in offset order, so planning is O(n^2) at
worst; the scan is vectorised, which keeps a few thousand blocks well under a second.
"""
from __future__ import annotations

import bisect
import heapq
from dataclasses import dataclass
from typing import Any, Hashable, Sequence, cast

import numpy as np

DEFAULT_ALIGNMENT = 64


@dataclass(frozen=True, slots=True)
class Block:
    """A span of work memory live from step `first` to step `last`, both inclusive.

    A tensor lives from the step that produces it to the last step that reads it; op scratch
    lives one step. Tensors that share memory (in-place reuse, zero-copy aliases) arrive here
    already merged into one block.
    """

    key: Hashable
    size: int
    first: int
    last: int


@dataclass(frozen=True)
class MemoryPlan:
    """Offsets per block key and the work-memory size they need, with the two yardsticks."""

    offsets: dict[Hashable, int]
    size: int          # max(offset + aligned size): the work memory to allocate
    lower_bound: int   # most aligned bytes live at one step: no plan can be smaller
    naive: int         # sum of aligned sizes: one buffer per block


def align_up(size: int, alignment: int) -> int:
    return -(-size // alignment) * alignment


def plan_memory(blocks: Sequence[Block], alignment: int = DEFAULT_ALIGNMENT) -> MemoryPlan:
    """Give every block an aligned offset so that blocks live at the same step never overlap.

    Greedy by size places blocks in aligned size descending order (ties by earlier `first`, then
    by key, or by position in `blocks` when the keys do not compare). Large one-step blocks (op
    scratch) placed first can push long-lived tensors up, so the same greedy placement is also run
    with two other orders — long-lived blocks before one-step ones, and lifetime area — and the
    smallest plan wins (the first order on ties). Zero-size blocks get offset 0 and take no memory.
    """
    _check_blocks(blocks, alignment)
    sizes = [align_up(b.size, alignment) for b in blocks]
    rank = _key_rank(blocks)
    nonzero = [i for i in range(len(blocks)) if sizes[i] > 0]
    orders = [
        lambda i: (-sizes[i], blocks[i].first, rank[i]),
        lambda i: (blocks[i].first == blocks[i].last, -sizes[i], blocks[i].first, rank[i]),
        lambda i: (-sizes[i] * (blocks[i].last - blocks[i].first + 1), blocks[i].first, rank[i]),
    ]
    best: tuple[int, dict[Hashable, int]] | None = None
    for key in orders:
        top, offsets = _place(blocks, sizes, sorted(nonzero, key=key))
        if best is None or top < best[0]:
            best = (top, offsets)
    assert best is not None
    return MemoryPlan(best[1], best[0], lower_bound(blocks, alignment), sum(sizes))


def _place(blocks: Sequence[Block], sizes: list[int], order: list[int]) -> tuple[int, dict[Hashable, int]]:
    """Best-fit placement of `order`'s blocks, one after another; returns (size, offsets)."""
    offsets: dict[Hashable, int] = {b.key: 0 for b in blocks}
    # Placed blocks as rows (offset, end, first, last), kept sorted by offset.
    placed = np.empty((len(order), 4), dtype=np.int64)
    count = 0
    top = 0
    for i in order:
        b, size = blocks[i], sizes[i]
        rows = placed[:count]
        live = rows[(rows[:, 2] <= b.last) & (rows[:, 3] >= b.first)]
        offset = _best_fit(live[:, 0], live[:, 1], size)
        offsets[b.key] = offset
        top = max(top, offset + size)
        at = int(np.searchsorted(rows[:, 0], offset, side="right"))
        placed[at + 1:count + 1] = placed[at:count]
        placed[at] = (offset, offset + size, b.first, b.last)
        count += 1
    return top, offsets


def _best_fit(starts: np.ndarray, ends: np.ndarray, size: int) -> int:
    """Lowest offset of the smallest gap that holds `size` among blocks sorted by start.

    The blocks may overlap one another (they need not be live at the same time as each other),
    so the free space below block j starts at the highest end among blocks before it. All values
    are multiples of the alignment, so every candidate offset is aligned too.
    """
    if len(starts) == 0:
        return 0
    reach = np.maximum.accumulate(ends)
    below = np.concatenate(([0], reach[:-1]))
    gaps = starts - below
    fits = np.flatnonzero(gaps >= size)
    if len(fits) == 0:
        return int(reach[-1])
    return int(below[fits[np.argmin(gaps[fits])]])


def lower_bound(blocks: Sequence[Block], alignment: int = DEFAULT_ALIGNMENT) -> int:
    """The most aligned bytes live at any one step: no valid plan is smaller."""
    _check_blocks(blocks, alignment)
    events: list[tuple[int, int]] = []
    for b in blocks:
        size = align_up(b.size, alignment)
        if size:
            events.append((b.first, size))
            events.append((b.last + 1, -size))
    events.sort()
    live = peak = 0
    for n, (step, delta) in enumerate(events):
        live += delta
        if n + 1 == len(events) or events[n + 1][0] != step:
            peak = max(peak, live)
    return peak


def validate_plan(blocks: Sequence[Block], plan: MemoryPlan,
                  alignment: int = DEFAULT_ALIGNMENT) -> None:
    """Raise ValueError unless `plan` is a valid placement of `blocks` at `alignment`.

    Sweeps the steps in order, keeping the blocks live at the current step sorted by offset;
    a new block can only collide with its neighbours in that order, since the live ones are
    already known to be disjoint.
    """
    _check_blocks(blocks, alignment)
    bound = lower_bound(blocks, alignment)
    if plan.size < bound:
        raise ValueError(f"plan size {plan.size} is below the lower bound {bound}")
    spans: list[tuple[int, int, int, Block]] = []
    for b in blocks:
        if b.key not in plan.offsets:
            raise ValueError(f"block {b.key!r} has no offset")
        offset, size = plan.offsets[b.key], align_up(b.size, alignment)
        if not isinstance(offset, int) or offset < 0 or offset % alignment:
            raise ValueError(f"block {b.key!r}: offset {offset!r} is not a non-negative "
                             f"multiple of {alignment}")
        if offset + size > plan.size:
            raise ValueError(f"block {b.key!r} ends at {offset + size}, past plan size {plan.size}")
        if size:
            spans.append((b.first, offset, offset + size, b))
    spans.sort(key=lambda s: (s[0], s[1]))

    starts: list[int] = []                  # offsets of live blocks, ascending
    live: list[tuple[int, Block]] = []      # (end, block), parallel to `starts`
    expiry: list[tuple[int, int]] = []      # heap of (last step, offset)
    for first, start, end, b in spans:
        while expiry and expiry[0][0] < first:
            _, gone = heapq.heappop(expiry)
            at = bisect.bisect_left(starts, gone)
            del starts[at], live[at]
        at = bisect.bisect_right(starts, start)
        for other in ([live[at - 1]] if at else []) + ([live[at]] if at < len(live) else []):
            o_start = plan.offsets[other[1].key]
            if o_start < end and start < other[0]:
                raise ValueError(
                    f"blocks {other[1].key!r} [{o_start}, {other[0]}) steps "
                    f"{other[1].first}..{other[1].last} and {b.key!r} [{start}, {end}) steps "
                    f"{b.first}..{b.last} overlap in memory while both live")
        starts.insert(at, start)
        live.insert(at, (end, b))
        heapq.heappush(expiry, (b.last, start))


def _check_blocks(blocks: Sequence[Block], alignment: int) -> None:
    if not isinstance(alignment, int) or alignment < 1 or alignment & (alignment - 1):
        raise ValueError(f"alignment must be a power of two >= 1, got {alignment!r}")
    seen: set[Hashable] = set()
    for b in blocks:
        if b.key in seen:
            raise ValueError(f"duplicate block key {b.key!r}")
        seen.add(b.key)
        if b.size < 0 or not 0 <= b.first <= b.last:
            raise ValueError(f"block {b.key!r}: need size >= 0 and 0 <= first <= last, "
                             f"got size={b.size} first={b.first} last={b.last}")


def _key_rank(blocks: Sequence[Block]) -> list[int]:
    """Each block's place in key order, or in the list where the keys do not compare."""
    try:
        by_key = sorted(range(len(blocks)), key=lambda i: cast(Any, blocks[i].key))
    except TypeError:
        return list(range(len(blocks)))
    rank = [0] * len(blocks)
    for r, i in enumerate(by_key):
        rank[i] = r
    return rank


if __name__ == "__main__":
    import time

    def chain(ops: int) -> list[Block]:
        """Op i reads tensor i-1 and writes tensor i, with one step of scratch of its own."""
        rng = np.random.default_rng(0)
        out = []
        for i in range(ops):
            out.append(Block(("t", i), int(rng.integers(1, 1 << 20)), i, min(i + 1, ops - 1)))
            out.append(Block(("s", i), int(rng.integers(0, 1 << 18)), i, i))
        return out

    def branchy(n: int, steps: int) -> list[Block]:
        rng = np.random.default_rng(1)
        out = []
        for i in range(n):
            first = int(rng.integers(0, steps))
            last = min(steps - 1, first + int(rng.geometric(0.2)))
            out.append(Block(i, int(rng.integers(1, 1 << 20)), first, last))
        return out

    for name, blocks in (("1000-op chain", chain(1000)),
                         ("5000 random blocks over 1000 steps", branchy(5000, 1000))):
        t0 = time.perf_counter()
        plan = plan_memory(blocks)
        t1 = time.perf_counter()
        validate_plan(blocks, plan)
        t2 = time.perf_counter()
        print(f"{name}: {len(blocks)} blocks planned in {(t1 - t0) * 1e3:.1f} ms "
              f"(validated in {(t2 - t1) * 1e3:.1f} ms); size {plan.size} B, "
              f"lower bound {plan.lower_bound} B (+{plan.size / plan.lower_bound - 1:.2%}), "
              f"naive {plan.naive} B ({plan.size / plan.naive:.1%} of naive)")
