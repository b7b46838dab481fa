"""Import: sources, external data safety, unsupported ops, input shapes, IR-3 initializer inputs."""
from __future__ import annotations

import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from omrt.compiler import CompileOptions, compile_onnx
from omrt.constants import ACL_ERROR_OP_NOT_FOUND
from omrt.errors import OmrtError, UnsupportedOpError
from omrt.om.model import Region


def _relu_model(shape=(1, 4), ir_version=8, opset=13):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, list(shape))
    w = numpy_helper.from_array(np.arange(4, dtype=np.float32), "w")
    g = helper.make_graph([helper.make_node("Add", ["x", "w"], ["s"], name="add"),
                           helper.make_node("Relu", ["s"], ["y"], name="relu")], "g", [x], [y], [w])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=ir_version)


def test_sources_path_bytes_proto(tmp_path):
    model = _relu_model()
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    for source in (str(path), path, model.SerializeToString(), model):
        om = compile_onnx(source)
        assert [d.name for d in om.inputs] == ["x"] and [d.name for d in om.outputs] == ["y"]
        assert om.outputs[0].shape == (1, 4)


def _save_external(tmp_path, location):
    model = _relu_model()
    w = model.graph.initializer[0]
    w.data_location = TensorProto.EXTERNAL
    raw = np.arange(4, dtype=np.float32).tobytes()
    del w.float_data[:]
    w.ClearField("raw_data")
    entry = w.external_data.add()
    entry.key, entry.value = "location", location
    path = tmp_path / "model" / "m.onnx"
    path.parent.mkdir(exist_ok=True)
    with open(path, "wb") as f:
        f.write(model.SerializeToString())
    return path, raw


def test_external_data_inside_folder(tmp_path):
    path, raw = _save_external(tmp_path, "w.bin")
    (path.parent / "w.bin").write_bytes(raw)
    om = compile_onnx(path)
    assert om.graphs[0].constants and om.weight_size == 1024


@pytest.mark.parametrize("where", ["abs", "dotdot", "symlink"])
def test_external_data_escape(tmp_path, where):
    outside = tmp_path / "secret.bin"
    outside.write_bytes(np.zeros(4, np.float32).tobytes())
    location = {"abs": str(outside), "dotdot": "../secret.bin", "symlink": "link.bin"}[where]
    path, _ = _save_external(tmp_path, location)
    if where == "symlink":
        os.symlink(outside, path.parent / "link.bin")
    with pytest.raises(OmrtError) as e:
        compile_onnx(path)
    assert "external data" in e.value.message and "w" in e.value.message
    assert ("relative" if where == "abs" else "leaves the model's folder") in e.value.message


def test_unsupported_ops_listed_once():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="n0"),
             helper.make_node("Foo", ["a"], ["b"], name="n1", domain="custom"),
             helper.make_node("Bar", ["b"], ["c"], name="n7", domain="custom"),
             helper.make_node("Bar", ["c"], ["y"], name="n9", domain="custom")]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y]),
                              opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("custom", 1)])
    with pytest.raises(UnsupportedOpError) as e:
        compile_onnx(model)
    assert e.value.code == ACL_ERROR_OP_NOT_FOUND
    assert e.value.message == "unsupported operators: custom.Foo (node n1), custom.Bar (nodes n7, n9)"


def test_subgraph_ops_unsupported():
    x = helper.make_tensor_value_info("x", TensorProto.BOOL, [])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    branch = helper.make_graph([helper.make_node("Constant", [], ["k"], value=numpy_helper.from_array(
        np.ones(1, np.float32)))], "b", [], [helper.make_tensor_value_info("k", TensorProto.FLOAT, [1])])
    node = helper.make_node("If", ["x"], ["y"], name="cond", then_branch=branch, else_branch=branch)
    model = helper.make_model(helper.make_graph([node], "g", [x], [y]), opset_imports=[helper.make_opsetid("", 13)])
    with pytest.raises(UnsupportedOpError, match=r"If \(node cond\)"):
        compile_onnx(model)


def test_input_shape_fixes_symbolic_dims():
    model = _relu_model(shape=("N", 4))
    with pytest.raises(OmrtError, match="'x' has a non-static shape.*--input_shape"):
        compile_onnx(model)
    om = compile_onnx(model, CompileOptions(input_shape={"x": [3, 4]}))
    assert om.inputs[0].shape == (3, 4) and om.outputs[0].shape == (3, 4)
    assert om.inputs[0].layout == "ND"


def test_input_shape_unknown_name():
    with pytest.raises(OmrtError, match="'data'.*not an input.*inputs: x"):
        compile_onnx(_relu_model(), CompileOptions(input_shape={"data": [1, 4]}))


def test_input_shape_rank_and_conflict():
    with pytest.raises(OmrtError, match="rank 2"):
        compile_onnx(_relu_model(), CompileOptions(input_shape={"x": [1, 4, 1]}))
    with pytest.raises(OmrtError, match="fixes it to 4"):
        compile_onnx(_relu_model(), CompileOptions(input_shape={"x": [1, 5]}))


def test_ir3_initializer_inputs_are_constants():
    model = _relu_model(ir_version=3, opset=9)
    model.graph.input.append(helper.make_tensor_value_info("w", TensorProto.FLOAT, [4]))
    onnx.checker.check_model(model)
    om = compile_onnx(model)
    assert [d.name for d in om.inputs] == ["x"]
    add = om.graphs[0].ops[0]
    assert add.inputs[1].loc.region == Region.WEIGHT


def test_opset_out_of_range():
    model = _relu_model(opset=6)
    model.graph.node[0].op_type = "Relu"
    del model.graph.node[0].input[1:]
    with pytest.raises(OmrtError, match="opset 6 is not supported"):
        compile_onnx(model)


def test_softmax_gets_opset_attr():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])
    for opset in (11, 13):
        model = helper.make_model(helper.make_graph([helper.make_node("Softmax", ["x"], ["y"])], "g", [x], [y]),
                                  opset_imports=[helper.make_opsetid("", opset)])
        om = compile_onnx(model)
        assert om.graphs[0].ops[0].attrs["_opset"] == opset


def test_model_attrs_and_progress(capsys):
    opts = CompileOptions(model_name="tiny", soc_version="Ascend310P3", atc_cmdline="atc --model=m.onnx",
                          progress=True)
    om = compile_onnx(_relu_model(), opts)
    assert om.name == "tiny" and om.platform_version == "Ascend310P3"
    assert om.attrs["soc_version"] == "Ascend310P3" and om.attrs["atc_cmdline"] == "atc --model=m.onnx"
    assert om.attrs["precision_mode"] == "force_fp32"
    assert "omrt compile" in capsys.readouterr().err
