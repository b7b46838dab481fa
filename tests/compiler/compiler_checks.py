"""Structural checks every compiled plan must pass: placement bounds, no clobbering, weight rules."""
from __future__ import annotations

import hashlib

from omrt.om.model import GraphPlan, OfflineModel, Region


def align512(n: int) -> int:
    return -(-n // 512) * 512


def check_bounds(om: OfflineModel, g: GraphPlan) -> None:
    for op in g.ops:
        for ref in [r for r in op.inputs if r is not None] + op.outputs:
            loc, n = ref.loc, ref.desc.nbytes
            if loc.region == Region.WORK:
                assert 0 <= loc.offset and loc.offset + n <= g.lane_memory, (op.name, ref)
                assert loc.offset % 64 == 0
            elif loc.region == Region.WEIGHT:
                assert 512 <= loc.offset and loc.offset + n <= om.weight_size, (op.name, ref)
                assert loc.offset % 512 == 0
            elif loc.region == Region.INPUT:
                assert loc.index < len(g.inputs) and loc.offset + n <= g.inputs[loc.index].desc.nbytes
            else:
                assert loc.index < len(g.outputs) and g.outputs[loc.index].desc.name == ref.desc.name
                assert op.outputs.count(ref) or ref in op.inputs
        for off, n in op.workspace:
            assert 0 <= off and off + n <= g.lane_memory
    for i, ref in enumerate(g.inputs):
        assert ref.loc.region == Region.INPUT and ref.loc.index == i
    for i, ref in enumerate(g.outputs):
        assert ref.loc.region == Region.OUTPUT and ref.loc.index == i


def check_no_clobber(g: GraphPlan) -> None:
    """No op writes (outputs or scratch) over work bytes that another live tensor still needs."""
    produced: dict[str, int] = {}
    last_read: dict[str, int] = {}
    ranges: dict[str, tuple[int, int]] = {}
    for k, op in enumerate(g.ops):
        for r in op.inputs:
            if r is not None and r.loc.region == Region.WORK:
                last_read[r.desc.name] = k
        for r in op.outputs:
            if r.loc.region == Region.WORK:
                produced.setdefault(r.desc.name, k)
                last_read.setdefault(r.desc.name, k)
                ranges[r.desc.name] = (r.loc.offset, r.loc.offset + r.desc.nbytes)
    for k, op in enumerate(g.ops):
        if op.alias:
            continue
        reads = {r.desc.name for r in op.inputs if r is not None and r.loc.region == Region.WORK}
        writes = [(r.desc.name, r.loc.offset, r.loc.offset + r.desc.nbytes) for r in op.outputs
                  if r.loc.region == Region.WORK]
        writes += [(f"scratch:{op.name}", o, o + n) for o, n in op.workspace]
        for name, lo, hi in writes:
            for other, (olo, ohi) in ranges.items():
                if other == name or not (olo < hi and lo < ohi):
                    continue
                if not produced[other] < k <= last_read[other]:
                    continue
                same = ranges.get(name) == (olo, ohi)
                if k == last_read[other] and other in reads and not name.startswith("scratch:") and same:
                    continue  # in-place: input read for the last time here
                if same and _aliased(g, other, name):
                    continue
                raise AssertionError(f"op {k} {op.name} writes {name} [{lo},{hi}) over live {other} [{olo},{ohi})")


def _aliased(g: GraphPlan, a: str, b: str) -> bool:
    for op in g.ops:
        if op.alias and {op.inputs[0].desc.name, op.outputs[0].desc.name} == {a, b}:
            return True
    return False


def check_weights(om: OfflineModel) -> None:
    blob = om.weights
    if not blob:
        return
    assert blob[:512] == bytes(512)
    spans = {}
    for g in om.graphs:
        for ref in g.constants:
            assert ref.loc.region == Region.WEIGHT
            spans[ref.loc.offset] = max(spans.get(ref.loc.offset, 0), ref.desc.nbytes)
    last = max(spans)
    assert len(blob) == align512(last + spans[last] + 32)
    dtype_of: dict[int, str] = {}
    for g in om.graphs:
        for ref in g.constants:
            dtype_of.setdefault(ref.loc.offset, str(ref.desc.dtype))
    seen: dict[tuple[str, int, str], int] = {}
    for o, n in spans.items():
        key = (hashlib.sha1(blob[o:o + n]).hexdigest(), n, dtype_of[o])
        assert key not in seen, f"weights at {seen.get(key)} and {o} are identical"
        seen[key] = o
