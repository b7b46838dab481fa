"""--dynamic_batch_size: one plan per gear over one weight blob, validated like ATC."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from omrt.compiler import CompileOptions, compile_onnx, compile_onnx_report
from omrt.constants import ACL_DYNAMIC_TENSOR_NAME
from omrt.errors import OmrtError
from tests.compiler.compiler_checks import check_bounds, check_no_clobber, check_weights


def _model():
    rng = np.random.default_rng(0)
    inits = {"w": rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
             "fc": rng.standard_normal((4 * 8 * 8, 10)).astype(np.float32),
             "zero": np.array([0], np.int64), "minus1": np.array([-1], np.int64)}
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("Shape", ["r"], ["s"], name="shape"),
             helper.make_node("Gather", ["s", "zero"], ["n"], name="gather"),
             helper.make_node("Concat", ["n", "minus1"], ["t"], name="concat", axis=0),
             helper.make_node("Reshape", ["r", "t"], ["f"], name="flat"),
             helper.make_node("MatMul", ["f", "fc"], ["y"], name="fc")]
    g = helper.make_graph(nodes, "dyn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])],
                          [numpy_helper.from_array(v, k) for k, v in inits.items()])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def test_one_plan_per_gear_sharing_weights():
    gears = [1, 4, 2]
    om, report = compile_onnx_report(_model(), CompileOptions(input_shape={"x": [-1, 3, 8, 8]},
                                                              dynamic_batch_size=gears))
    assert om.gears == gears and om.is_dynamic_batch
    assert [g.batch for g in om.graphs] == gears and len(report.graphs) == 3
    assert [g.lanes for g in om.graphs] == [1, 2, 2]
    assert [d.name for d in om.inputs] == ["x", ACL_DYNAMIC_TENSOR_NAME]
    assert om.inputs[0].shape == (4, 3, 8, 8) and om.inputs[0].layout == "NCHW"
    assert om.inputs[1].dtype == np.int32 and om.inputs[1].shape == (1,)
    assert om.outputs[0].shape == (4, 10)
    weight_locs = set()
    for gear, g in zip(gears, om.graphs):
        assert g.input_descs[0].shape == (gear, 3, 8, 8) and g.output_descs[0].shape == (gear, 10)
        conv = g.ops[0]
        weight_locs.add((conv.inputs[1].loc, g.ops[-1].inputs[1].loc))
        reshape = next(op for op in g.ops if op.op_type == "Reshape")
        lo = reshape.inputs[1].loc.offset
        assert np.array_equal(np.frombuffer(om.weights[lo:lo + 16], np.int64), [gear // g.lanes, -1])
        check_bounds(om, g)
        check_no_clobber(g)
    assert len(weight_locs) == 1
    assert om.memory_size == max(g.memory_size for g in om.graphs) == om.graph_for_batch(4).memory_size
    check_weights(om)


@pytest.mark.parametrize("gears, shape, message", [
    ([4], [-1, 3, 8, 8], "at least 2 gears"),
    ([1, 2, 2], [-1, 3, 8, 8], "duplicate"),
    ([0, 2], [-1, 3, 8, 8], "positive"),
    ([1, 2], [1, 3, 8, 8], "first dim is -1"),
    ([1, 2], [-1, 3, -1, 8], "only the first dim"),
])
def test_gear_validation(gears, shape, message):
    with pytest.raises(OmrtError, match=message):
        compile_onnx(_model(), CompileOptions(input_shape={"x": shape}, dynamic_batch_size=gears))


def test_dynamic_dim_without_gears():
    with pytest.raises(OmrtError, match="dynamic dims need --dynamic_batch_size"):
        compile_onnx(_model(), CompileOptions(input_shape={"x": [-1, 3, 8, 8]}))


def test_static_batch():
    om = compile_onnx(_model(), CompileOptions(input_shape={"x": [3, 3, 8, 8]}))
    assert om.gears == [] and len(om.graphs) == 1 and om.graphs[0].batch is None
    assert om.outputs[0].shape == (3, 10)
