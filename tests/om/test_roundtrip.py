"""read_om(write_om(m)) == m, for hand-built and generated models."""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.om.om_testkit import ATTRS, assert_models_equal, dynamic_model, laned_model, static_model
from omrt.om import GraphPlan, Location, OfflineModel, OpPlan, Region, TensorDesc, TensorRef, read_om, write_om
from omrt.om.dynamic import SHAPE_DATA_DESC

DTYPES = [np.float32, np.float16, np.int8, np.uint8, np.int16, np.int32, np.int64, np.float64, np.bool_]


def test_static_round_trip():
    m = static_model()
    assert_models_equal(read_om(write_om(m)), m)


def test_laned_round_trip():
    m = laned_model(lanes=2, lane_batch=3)
    got = read_om(write_om(m))
    assert_models_equal(got, m)
    plan = got.graphs[0]
    assert plan.lanes == 2 and plan.lane_memory == 128 * 3 + 32
    assert plan.inputs[0].desc.shape == (3, 4) and got.inputs[0].shape == (6, 4) and got.outputs[0].shape == (6, 3)


def test_dynamic_round_trip():
    m = dynamic_model()
    got = read_om(write_om(m))
    assert_models_equal(got, m)
    assert got.gears == [1, 2, 4] and got.inputs[-1] == SHAPE_DATA_DESC


def test_empty_weights_round_trip():
    m = static_model()
    plan = m.graphs[0]
    plan.constants = []
    plan.ops = [op for op in plan.ops if op.op_type == "Relu"]
    plan.ops[0].inputs = [plan.inputs[0]]
    plan.ops[0].outputs = [plan.outputs[0]]
    m.weights = b""
    got = read_om(write_om(m))
    assert got.weights == b"" and got.weight_size == 0
    assert_models_equal(got, m)


def test_attr_types_survive():
    got = read_om(write_om(static_model())).graphs[0].ops[1].attrs
    assert got["flag"] is True and type(got["axis"]) is int and type(got["alpha"]) is float
    assert got["raw"] == b"\x00\xff" and got["strs"] == ["a", "é"] and got["bools"] == [True, False]
    assert got["t"].dtype == np.int64 and got["nested"] == [[1, 2], [3]]


def test_long_names_survive_though_header_truncates():
    m = static_model(name="n" * 80, platform_version="p" * 40)
    got = read_om(write_om(m))
    assert got.name == "n" * 80 and got.platform_version == "p" * 40


# --- generated models -------------------------------------------------------------------------

scalars = st.one_of(
    st.integers(-(1 << 63), (1 << 63) - 1),
    st.floats(width=32, allow_nan=False),
    st.text(max_size=8),
    st.binary(max_size=8),
    st.booleans(),
)
lists = st.one_of(
    st.lists(st.integers(-(1 << 63), (1 << 63) - 1), max_size=4),
    st.lists(st.floats(width=32, allow_nan=False), min_size=1, max_size=4),
    st.lists(st.text(max_size=4), min_size=1, max_size=3),
    st.lists(st.booleans(), min_size=1, max_size=3),
)
arrays = st.builds(lambda dt, n: np.arange(n).astype(dt), st.sampled_from(DTYPES), st.integers(0, 5))
attr_values = st.one_of(scalars, lists, arrays)
attr_dicts = st.dictionaries(st.text(min_size=1, max_size=6).filter(lambda k: k != "_zero_copy_alias"),
                             attr_values, max_size=4)
shapes = st.lists(st.integers(0, 4), max_size=3).map(tuple)


def _align(n: int, a: int) -> int:
    return (n + a - 1) // a * a


@st.composite
def plans(draw, name="g", n_inputs=None, batch=None):
    counter = iter(range(10_000))

    def desc(label):
        return TensorDesc(f"{label}{next(counter)}_{draw(st.text(max_size=4))}", np.dtype(draw(st.sampled_from(DTYPES))),
                          draw(shapes), draw(st.sampled_from(["ND", "NCHW", "NHWC"])))

    n_in = n_inputs if n_inputs is not None else draw(st.integers(1, 2))
    inputs = [TensorRef(desc("in"), Location(Region.INPUT, 0, i)) for i in range(n_in)]
    consts, woff = [], 512
    for _ in range(draw(st.integers(0, 3))):
        d = desc("c")
        consts.append(TensorRef(d, Location(Region.WEIGHT, woff)))
        woff = _align(woff + d.nbytes, 512)
    available = [*inputs, *consts]
    ops, cursor = [], 0
    n_ops = draw(st.integers(1, 4))
    out_ref = None
    for k in range(n_ops):
        ins = draw(st.lists(st.sampled_from(available), min_size=1, max_size=3))
        if draw(st.booleans()):
            ins.insert(draw(st.integers(0, len(ins))), None)
        outs = []
        for j in range(draw(st.integers(1, 2))):
            d = desc("t")
            if k == n_ops - 1 and j == 0:
                out_ref = TensorRef(d, Location(Region.OUTPUT, 0, 0))
                outs.append(out_ref)
            else:
                outs.append(TensorRef(d, Location(Region.WORK, cursor)))
                cursor = _align(cursor + d.nbytes, 64)
        ws = [(cursor, draw(st.integers(0, 64)))] if draw(st.booleans()) else []
        cursor += 64
        ops.append(OpPlan(f"op{k}_{draw(st.text(max_size=4))}", draw(st.sampled_from(["Add", "Conv", "Custom"])),
                          draw(attr_dicts), ins, outs, ws, draw(st.booleans())))
        available.extend(outs)
    memory_size = cursor + draw(st.integers(1, 100))
    return GraphPlan(name, inputs, [out_ref], consts, ops, memory_size, batch), woff


@st.composite
def models(draw):
    extra_attrs = draw(st.dictionaries(st.sampled_from(["opset", "note", "x"]), scalars, max_size=2))
    if draw(st.booleans()):
        plan, woff = draw(plans())
        weights = draw(st.binary(min_size=woff, max_size=woff)) if plan.constants else b""
        return OfflineModel(draw(st.text(max_size=40)), [r.desc for r in plan.inputs], [r.desc for r in plan.outputs],
                            [plan], weights, [], {**ATTRS, **extra_attrs}, draw(st.text(max_size=25)))
    gears = sorted(draw(st.sets(st.integers(1, 64), min_size=1, max_size=3)))
    graphs = []
    woff = 512
    for g in gears:
        plan, w = draw(plans(name=f"gear{g}", n_inputs=1, batch=g))
        graphs.append(plan)
        woff = max(woff, w)
    weights = bytes(woff)
    return OfflineModel(draw(st.text(max_size=10)), [graphs[-1].inputs[0].desc, SHAPE_DATA_DESC],
                        [graphs[-1].outputs[0].desc], graphs, weights, gears, {**ATTRS, **extra_attrs})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(models())
def test_generated_models_round_trip(m):
    assert_models_equal(read_om(write_om(m)), m)
