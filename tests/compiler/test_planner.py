"""The memory planner's invariants, checked against brute-force oracles on random block sets."""
from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omrt.compiler.planner import (Block, MemoryPlan, align_up, lower_bound, plan_memory,
                                   validate_plan)

ALIGNMENTS = st.sampled_from([1, 8, 64, 512])


@st.composite
def block_sets(draw: st.DrawFn, max_blocks: int = 40) -> list[Block]:
    specs = draw(st.lists(st.tuples(st.integers(0, 5000), st.integers(0, 30), st.integers(0, 10)),
                          max_size=max_blocks))
    return [Block(i, size, first, first + span) for i, (size, first, span) in enumerate(specs)]


def live_together(a: Block, b: Block) -> bool:
    return a.first <= b.last and b.first <= a.last


def clashes(blocks: list[Block], offsets: dict, alignment: int) -> list[tuple]:
    """Every pair live at a common step whose address ranges intersect (pairwise, no cleverness)."""
    out = []
    for a, b in itertools.combinations(blocks, 2):
        sa, sb = align_up(a.size, alignment), align_up(b.size, alignment)
        if sa and sb and live_together(a, b):
            oa, ob = offsets[a.key], offsets[b.key]
            if oa < ob + sb and ob < oa + sa:
                out.append((a.key, b.key))
    return out


def step_peak(blocks: list[Block], alignment: int) -> int:
    steps = range(max((b.last for b in blocks), default=-1) + 1)
    return max((sum(align_up(b.size, alignment) for b in blocks if b.first <= t <= b.last)
                for t in steps), default=0)


# --- properties of plan_memory ---------------------------------------------------------------

@given(block_sets(), ALIGNMENTS)
@settings(max_examples=300, deadline=None)
def test_plan_is_valid_and_between_bounds(blocks: list[Block], alignment: int) -> None:
    plan = plan_memory(blocks, alignment)
    assert set(plan.offsets) == {b.key for b in blocks}
    assert clashes(blocks, plan.offsets, alignment) == []
    assert all(o % alignment == 0 and o >= 0 for o in plan.offsets.values())
    assert plan.lower_bound == step_peak(blocks, alignment) == lower_bound(blocks, alignment)
    assert plan.naive == sum(align_up(b.size, alignment) for b in blocks)
    assert plan.lower_bound <= plan.size <= plan.naive
    assert plan.size == max((plan.offsets[b.key] + align_up(b.size, alignment) for b in blocks),
                            default=0)
    validate_plan(blocks, plan, alignment)


@given(block_sets(), ALIGNMENTS, st.randoms(use_true_random=False))
@settings(max_examples=100, deadline=None)
def test_plan_is_deterministic_and_ignores_list_order(blocks: list[Block], alignment: int,
                                                      rnd) -> None:
    plan = plan_memory(blocks, alignment)
    assert plan_memory(list(blocks), alignment) == plan
    shuffled = list(blocks)
    rnd.shuffle(shuffled)
    assert plan_memory(shuffled, alignment) == plan


@pytest.mark.parametrize("alignment", [64, 512])
@given(blocks=block_sets())
@settings(max_examples=100, deadline=None)
def test_alignment_is_honoured(alignment: int, blocks: list[Block]) -> None:
    plan = plan_memory(blocks, alignment)
    assert all(o % alignment == 0 for o in plan.offsets.values())
    assert plan.size % alignment == 0
    assert clashes(blocks, plan.offsets, alignment) == []


@given(block_sets(max_blocks=12), ALIGNMENTS, st.data())
@settings(max_examples=300, deadline=None)
def test_validate_plan_agrees_with_brute_force(blocks: list[Block], alignment: int,
                                               data: st.DataObject) -> None:
    """Arbitrary (mostly invalid) placements: validate_plan rejects exactly the bad ones."""
    offsets = {b.key: data.draw(st.integers(0, 6)) * 512 // data.draw(st.sampled_from([1, 2, 512]))
               for b in blocks}
    size = max((offsets[b.key] + align_up(b.size, alignment) for b in blocks), default=0)
    plan = MemoryPlan(offsets, size, 0, 0)
    bad = (clashes(blocks, offsets, alignment)
           or any(o % alignment for o in offsets.values())
           or size < step_peak(blocks, alignment))
    if bad:
        with pytest.raises(ValueError):
            validate_plan(blocks, plan, alignment)
    else:
        validate_plan(blocks, plan, alignment)


# --- examples ---------------------------------------------------------------------------------

def test_empty_input() -> None:
    assert plan_memory([]) == MemoryPlan({}, 0, 0, 0)
    assert lower_bound([]) == 0
    validate_plan([], plan_memory([]))


def test_zero_size_blocks_take_no_memory() -> None:
    blocks = [Block("empty", 0, 0, 5), Block("a", 100, 0, 5)]
    plan = plan_memory(blocks)
    assert plan == MemoryPlan({"empty": 0, "a": 0}, 128, 128, 128)


def test_chain_reuses_memory_of_dead_tensors() -> None:
    """a -> b -> c: a is dead once b is written, so c lands on a's bytes."""
    blocks = [Block("a", 1000, 0, 1), Block("b", 2000, 1, 2), Block("c", 1000, 2, 3)]
    plan = plan_memory(blocks)
    assert plan.offsets["a"] == plan.offsets["c"]
    assert plan.offsets == {"b": 0, "a": 2048, "c": 2048}
    assert (plan.size, plan.lower_bound, plan.naive) == (3072, 3072, 4096)


def test_residual_block_reaches_lower_bound() -> None:
    """x feeds conv1 -> t1 -> conv2 -> t2 and the add y = t2 + x: peak is x + t2 + y at step 3."""
    kib = 1024
    blocks = [Block("x", 4 * kib, 0, 3), Block("t1", 2 * kib, 1, 2),
              Block("t2", 2 * kib, 2, 3), Block("y", 4 * kib, 3, 4)]
    plan = plan_memory(blocks)
    assert plan.size == plan.lower_bound == 10 * kib
    assert plan.naive == 12 * kib
    validate_plan(blocks, plan)


def test_sizes_are_rounded_up_to_alignment() -> None:
    blocks = [Block("a", 1, 0, 0), Block("b", 65, 0, 0)]
    plan = plan_memory(blocks, alignment=64)
    assert plan.offsets == {"b": 0, "a": 128}
    assert (plan.size, plan.lower_bound, plan.naive) == (192, 192, 192)
    assert plan_memory(blocks, alignment=1).size == 66


def test_smallest_fitting_gap_wins() -> None:
    """At step 2, L1, L2 and L3 leave gaps of 20 bytes at 10 and 5 bytes at 40; Z (5) takes 40."""
    blocks = [Block("F", 30, 3, 4), Block("G", 15, 4, 4),
              Block("L1", 10, 1, 2), Block("L2", 10, 2, 3), Block("L3", 10, 2, 4),
              Block("Z", 5, 2, 2)]
    plan = plan_memory(blocks, alignment=1)
    assert plan.offsets == {"F": 0, "G": 30, "L1": 0, "L2": 30, "L3": 45, "Z": 40}
    assert plan.size == 55


def test_ties_break_by_first_step_then_key() -> None:
    blocks = [Block("b", 64, 0, 1), Block("a", 64, 1, 1), Block("c", 64, 0, 1)]
    assert plan_memory(blocks).offsets == {"b": 0, "c": 64, "a": 128}


def test_keys_that_do_not_compare_fall_back_to_list_order() -> None:
    blocks = [Block(("t", 1), 64, 0, 0), Block(7, 64, 0, 0)]
    assert plan_memory(blocks).offsets == {("t", 1): 0, 7: 64}


# --- rejections -------------------------------------------------------------------------------

@pytest.mark.parametrize("alignment", [0, -64, 3, 48, 64.0])
def test_alignment_must_be_a_power_of_two(alignment) -> None:
    with pytest.raises(ValueError, match="alignment"):
        plan_memory([Block("a", 1, 0, 0)], alignment)


@pytest.mark.parametrize("blocks", [
    [Block("a", 1, 0, 0), Block("a", 2, 1, 1)],
    [Block("a", -1, 0, 0)],
    [Block("a", 1, 2, 1)],
    [Block("a", 1, -1, 0)],
])
def test_bad_blocks_are_rejected(blocks: list[Block]) -> None:
    with pytest.raises(ValueError):
        plan_memory(blocks)


def test_validate_plan_names_what_is_wrong() -> None:
    blocks = [Block("a", 100, 0, 1), Block("b", 100, 1, 2)]
    with pytest.raises(ValueError, match="'a'.*'b'.*overlap"):
        validate_plan(blocks, MemoryPlan({"a": 0, "b": 64}, 256, 0, 0))
    with pytest.raises(ValueError, match="'b'.*multiple of 64"):
        validate_plan(blocks, MemoryPlan({"a": 0, "b": 160}, 288, 0, 0))
    with pytest.raises(ValueError, match="lower bound 256"):
        validate_plan(blocks, MemoryPlan({"a": 0, "b": 128}, 128, 0, 0))
    with pytest.raises(ValueError, match="'b' has no offset"):
        validate_plan(blocks, MemoryPlan({"a": 0}, 256, 0, 0))
    validate_plan(blocks, MemoryPlan({"a": 0, "b": 128}, 256, 0, 0))
    validate_plan([Block("a", 100, 0, 0), Block("b", 100, 1, 1)],
                  MemoryPlan({"a": 0, "b": 0}, 128, 0, 0))
