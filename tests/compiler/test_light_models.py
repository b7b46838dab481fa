"""The ONNX project's light models (IR 3, weights made by ConstantOfShape) compile to valid plans."""
from __future__ import annotations

import gc

import pytest

from omrt.compiler import compile_onnx_report
from omrt.om import read_om, write_om
from tests.compiler.compiler_checks import check_bounds, check_no_clobber, check_weights
from tests.om.om_testkit import assert_models_equal
from tests.support.light_models import LIGHT_MODELS, model_path

PLAN_SLACK = 1.10


@pytest.fixture(scope="module", params=LIGHT_MODELS)
def compiled(request):
    om, report = compile_onnx_report(str(model_path(request.param)))
    print("\n" + report.summary())
    yield request.param, om, report
    del om, report
    gc.collect()


def _producers(g):
    return {r.desc.name: op for op in g.ops for r in op.outputs}


def test_structure(compiled):
    name, om, report = compiled
    g = om.graphs[0]
    ops = [op.op_type for op in g.ops]
    assert "ConstantOfShape" not in ops and "Dropout" not in ops
    producer = _producers(g)
    for op in g.ops:
        src = producer.get(op.inputs[0].desc.name) if op.inputs and op.inputs[0] is not None else None
        if op.op_type == "BatchNormalization":
            assert src is None or src.op_type not in ("Conv", "Gemm", "ConvTranspose"), op.name
        if op.op_type == "Relu":
            assert src is None or src.op_type != "Conv", f"Relu {op.name} after Conv not fused"
    if name == "resnet50":
        assert "BatchNormalization" not in ops
        assert sum(op.attrs.get("_residual", 0) for op in g.ops) == 16
    assert any(op.op_type == "Conv" and op.attrs.get("_activation") == "Relu" for op in g.ops)
    assert report.graphs[0].ops_after == len(g.ops) < report.graphs[0].ops_before


def test_memory_plan(compiled):
    name, om, report = compiled
    r = report.graphs[0]
    print(f"\n{name}: planned {r.memory_size} B, lower bound {r.lower_bound} B "
          f"(x{r.memory_size / r.lower_bound:.3f}), naive {r.naive} B")
    assert om.memory_size == r.memory_size
    assert r.lower_bound <= r.memory_size <= r.naive
    assert r.memory_size <= PLAN_SLACK * r.lower_bound


def test_placement(compiled):
    _, om, _ = compiled
    check_bounds(om, om.graphs[0])
    check_no_clobber(om.graphs[0])


def test_weights(compiled):
    _, om, _ = compiled
    check_weights(om)
    assert om.attrs["framework_type"] == "Onnx" and om.attrs["atc_version"].startswith("omrt-")
    assert om.inputs[0].layout == "NCHW" and len(om.inputs[0].shape) == 4


def test_om_round_trip_keeps_every_field(compiled):
    _, om, _ = compiled
    assert_models_equal(read_om(write_om(om)), om)
