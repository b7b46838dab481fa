"""Passes on small models: folding, rewiring, BN and epilogue fusion, output copies."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from omrt.compiler import CompileOptions, compile_onnx, compile_onnx_report
from omrt.om.model import Region
from tests.compiler.compiler_checks import check_bounds, check_no_clobber, check_weights


def weight(om, ref) -> np.ndarray:
    assert ref.loc.region == Region.WEIGHT
    n = ref.desc.nbytes
    return np.frombuffer(om.weights[ref.loc.offset:ref.loc.offset + n], dtype=ref.desc.dtype).reshape(ref.desc.shape)


def model(nodes, inputs, outputs, inits=(), opset=13):
    g = helper.make_graph(nodes, "g", inputs, outputs, [numpy_helper.from_array(v, k) for k, v in inits])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def vi(name, shape, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, shape)


def test_shape_gather_concat_reshape_folds():
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="relu"),
        helper.make_node("Shape", ["r"], ["s"], name="shape"),
        helper.make_node("Gather", ["s", "zero"], ["b"], name="gather", axis=0),
        helper.make_node("Concat", ["b", "minus1"], ["target"], name="concat", axis=0),
        helper.make_node("Reshape", ["r", "target"], ["flat"], name="reshape"),
        helper.make_node("Relu", ["flat"], ["y"], name="relu2"),
    ]
    m = model(nodes, [vi("x", ["N", 2, 3, 4])], [vi("y", ["N", 24])],
              [("zero", np.array([0], np.int64)), ("minus1", np.array([-1], np.int64))])
    om, report = compile_onnx_report(m, CompileOptions(input_shape={"x": [5, 2, 3, 4]}))
    g = om.graphs[0]
    assert [op.op_type for op in g.ops] == ["Relu", "Reshape", "Relu"]
    reshape = g.ops[1]
    assert np.array_equal(weight(om, reshape.inputs[1]), [5, -1])
    assert reshape.alias and reshape.inputs[0].loc == reshape.outputs[0].loc
    assert om.outputs[0].shape == (5, 24)
    assert report.graphs[0].folded == 3
    check_bounds(om, g)
    check_no_clobber(g)


def test_view_of_model_input_points_into_input_buffer():
    nodes = [helper.make_node("Flatten", ["x"], ["f"], name="flat", axis=1),
             helper.make_node("Relu", ["f"], ["y"], name="relu")]
    om = compile_onnx(model(nodes, [vi("x", [2, 3, 4])], [vi("y", [2, 12])]))
    flat = om.graphs[0].ops[0]
    assert flat.alias and flat.outputs[0].loc.region == Region.INPUT and flat.outputs[0].loc.index == 0
    assert om.graphs[0].memory_size == 0


def test_identity_dropout_removed_and_output_copies():
    nodes = [helper.make_node("Identity", ["x"], ["i"], name="id"),
             helper.make_node("Relu", ["i"], ["r"], name="relu"),
             helper.make_node("Dropout", ["r"], ["d"], name="drop"),
             helper.make_node("Identity", ["d"], ["y"], name="id2")]
    om = compile_onnx(model(nodes, [vi("x", [4])], [vi("y", [4]), vi("x", [4]), vi("y", [4]), vi("k", [2])],
                            [("k", np.array([1, 2], np.float32))]))
    g = om.graphs[0]
    assert [op.op_type for op in g.ops].count("Relu") == 1
    assert [op.op_type for op in g.ops].count("Identity") == 3   # x, duplicate y, constant k
    assert [d.name for d in om.outputs] == ["y", "x", "y", "k"]
    relu = next(op for op in g.ops if op.op_type == "Relu")
    assert relu.inputs[0].loc.region == Region.INPUT and relu.outputs[0].loc == g.outputs[0].loc
    for k, ref in enumerate(g.outputs):
        assert ref.loc.region == Region.OUTPUT and ref.loc.index == k
    check_bounds(om, g)


def _conv_bn(extra_nodes, extra_inits, out="y"):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    bn = [rng.random(4).astype(np.float32) + 0.5 for _ in range(4)]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "s", "bb", "m", "v"], ["n"], name="bn", epsilon=1e-3),
             *extra_nodes]
    inits = [("w", w), ("b", b), ("s", bn[0]), ("bb", bn[1]), ("m", bn[2]), ("v", bn[3]), *extra_inits]
    om, report = compile_onnx_report(model(nodes, [vi("x", [1, 3, 8, 8])], [vi(out, [1, 4, 8, 8])], inits))
    scale = bn[0] / np.sqrt(bn[3] + 1e-3)
    return om, report, w * scale[:, None, None, None], (b - bn[2]) * scale + bn[1]


def test_bn_mul_add_relu_into_conv():
    mul = np.array([1.0, 2.0, 3.0, 4.0], np.float32).reshape(4, 1, 1)
    add = np.array([0.5, -0.5, 1.5, 0.0], np.float32).reshape(4, 1, 1)
    om, report, w, b = _conv_bn([helper.make_node("Mul", ["n", "mc"], ["p"], name="mul"),
                                 helper.make_node("Add", ["p", "ac"], ["q"], name="add"),
                                 helper.make_node("Relu", ["q"], ["y"], name="relu")],
                                [("mc", mul), ("ac", add)])
    (conv,) = om.graphs[0].ops
    assert conv.op_type == "Conv" and conv.attrs["_activation"] == "Relu"
    assert conv.attrs["_activation_params"] == []
    assert conv.outputs[0].loc.region == Region.OUTPUT
    k = mul.reshape(4)
    np.testing.assert_allclose(weight(om, conv.inputs[1]), w * k[:, None, None, None], rtol=1e-5)
    np.testing.assert_allclose(weight(om, conv.inputs[2]), b * k + add.reshape(4), rtol=1e-5)
    assert report.graphs[0].fusions == {"bn_into_conv": 1, "mul_into_conv": 1, "add_into_conv": 1,
                                        "activation_relu": 1}
    check_weights(om)


def test_bn_into_gemm():
    rng = np.random.default_rng(1)
    w = rng.standard_normal((5, 3)).astype(np.float32)   # transB: [N, K]
    c = rng.standard_normal(5).astype(np.float32)
    s, bb, m, v = (rng.random(5).astype(np.float32) + 0.5 for _ in range(4))
    nodes = [helper.make_node("Gemm", ["x", "w", "c"], ["g"], name="gemm", transB=1, beta=0.5),
             helper.make_node("BatchNormalization", ["g", "s", "bb", "m", "v"], ["y"], name="bn")]
    om = compile_onnx(model(nodes, [vi("x", [2, 3])], [vi("y", [2, 5])],
                            [("w", w), ("c", c), ("s", s), ("bb", bb), ("m", m), ("v", v)]))
    (gemm,) = om.graphs[0].ops
    x = rng.standard_normal((2, 3)).astype(np.float32)
    want = ((x @ w.T + 0.5 * c) - m) / np.sqrt(v + 1e-5) * s + bb
    got = x @ weight(om, gemm.inputs[1]).T + gemm.attrs["beta"] * weight(om, gemm.inputs[2])
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_mul_add_chain_becomes_one_bn():
    nodes = [helper.make_node("Mul", ["x", "k"], ["p"], name="mul"),
             helper.make_node("Add", ["p", "d"], ["y"], name="add")]
    k = np.array([2.0, 3.0], np.float32).reshape(1, 2, 1, 1)
    d = np.array([1.0, -1.0], np.float32).reshape(2, 1, 1)
    om = compile_onnx(model(nodes, [vi("x", [1, 2, 4, 4])], [vi("y", [1, 2, 4, 4])], [("k", k), ("d", d)]))
    (bn,) = om.graphs[0].ops
    assert bn.op_type == "BatchNormalization" and bn.attrs["epsilon"] == 0.0
    assert np.array_equal(weight(om, bn.inputs[1]), [2, 3]) and np.array_equal(weight(om, bn.inputs[2]), [1, -1])


def test_matmul_bias_residual_clip():
    rng = np.random.default_rng(2)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["mm"], name="mm"),
             helper.make_node("Add", ["mm", "bias"], ["biased"], name="addb"),
             helper.make_node("Add", ["x", "biased"], ["res"], name="addr"),
             helper.make_node("Clip", ["res", "lo", "hi"], ["y"], name="clip")]
    inits = [("w", rng.standard_normal((6, 6)).astype(np.float32)), ("bias", np.arange(6, dtype=np.float32)),
             ("lo", np.array(0.0, np.float32)), ("hi", np.array(6.0, np.float32))]
    om, report = compile_onnx_report(model(nodes, [vi("x", [3, 6])], [vi("y", [3, 6])], inits))
    (mm,) = om.graphs[0].ops
    assert mm.attrs["_bias"] == 1 and mm.attrs["_residual"] == 1
    assert mm.attrs["_activation"] == "Clip" and mm.attrs["_activation_params"] == [0.0, 6.0]
    assert len(mm.inputs) == 4 and mm.inputs[3].desc.name == "x" and mm.inputs[3].loc.region == Region.INPUT
    assert np.array_equal(weight(om, mm.inputs[2]), np.arange(6))
    assert report.graphs[0].fusions == {"bias": 1, "residual": 1, "activation_clip": 1}


def test_conv_residual_pads_missing_bias():
    w = np.ones((2, 2, 1, 1), np.float32)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
             helper.make_node("Sum", ["c", "x"], ["s"], name="sum"),
             helper.make_node("LeakyRelu", ["s"], ["y"], name="act", alpha=0.2)]
    om = compile_onnx(model(nodes, [vi("x", [1, 2, 3, 3])], [vi("y", [1, 2, 3, 3])], [("w", w)]))
    (conv,) = om.graphs[0].ops
    assert conv.inputs[2] is None and conv.inputs[3].desc.name == "x"
    assert conv.attrs["_activation"] == "LeakyRelu" and conv.attrs["_activation_params"] == [pytest.approx(0.2)]


def test_shared_producer_output_not_fused():
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
             helper.make_node("Relu", ["c"], ["y"], name="relu"),
             helper.make_node("Sigmoid", ["c"], ["z"], name="sig")]
    om = compile_onnx(model(nodes, [vi("x", [1, 2, 3, 3])], [vi("y", [1, 2, 3, 3]), vi("z", [1, 2, 3, 3])],
                            [("w", np.ones((2, 2, 1, 1), np.float32))]))
    assert [op.op_type for op in om.graphs[0].ops] == ["Conv", "Relu", "Sigmoid"]
    assert "_activation" not in om.graphs[0].ops[0].attrs


def test_inplace_elementwise_and_no_clobber():
    nodes = [helper.make_node("Exp", ["x"], ["a"], name="exp"),
             helper.make_node("Relu", ["a"], ["b"], name="relu"),       # a dies here: in place
             helper.make_node("Mul", ["b", "b"], ["c"], name="mul"),    # b dies here: in place
             helper.make_node("Add", ["c", "x"], ["y"], name="add")]
    om, report = compile_onnx_report(model(nodes, [vi("x", [16, 16])], [vi("y", [16, 16])]))
    g = om.graphs[0]
    a, b, c = (g.ops[k].outputs[0] for k in range(3))
    assert a.loc == b.loc == c.loc and report.graphs[0].inplace == 2
    assert g.memory_size == 1024
    check_no_clobber(g)


def test_identical_constants_stored_once():
    k = np.full((2, 2, 1, 1), 0.5, np.float32)
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c"], name="c1"),
             helper.make_node("Conv", ["c", "w2"], ["y"], name="c2")]
    om = compile_onnx(model(nodes, [vi("x", [1, 2, 3, 3])], [vi("y", [1, 2, 3, 3])], [("w1", k), ("w2", k.copy())]))
    c1, c2 = om.graphs[0].ops
    assert c1.inputs[1].loc == c2.inputs[1].loc
    assert om.weight_size == 1024 and om.weights[:512] == bytes(512)


def test_relu_after_a_standalone_batchnorm_is_fused_into_it():
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from omrt.compiler import compile_onnx
    from omrt.om import write_om
    from omrt.session import InferenceSession
    from tests.support.small_models import run_onnxruntime

    rng = np.random.default_rng(3)
    c = 4
    inits = [numpy_helper.from_array(v.astype(np.float32), n) for n, v in (
        ("s", rng.uniform(0.5, 1.5, c)), ("b", rng.standard_normal(c)), ("m", rng.standard_normal(c)),
        ("v", rng.uniform(0.5, 1.5, c)), ("k", rng.uniform(0.5, 1.5, (1, c, 1, 1))))]
    nodes = [
        helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["bn"]),
        helper.make_node("Relu", ["bn"], ["r"]),
        helper.make_node("Mul", ["r", "k"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, 5, 5])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, c, 5, 5])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    compiled = compile_onnx(model)
    ops = [(op.op_type, op.attrs.get("_activation")) for op in compiled.graphs[0].ops]
    assert ("BatchNormalization", "Relu") in ops and all(t != "Relu" for t, _ in ops)
    x = rng.standard_normal((1, c, 5, 5)).astype(np.float32)
    (got,) = InferenceSession(write_om(compiled)).run(None, {"x": x})
    np.testing.assert_allclose(got, run_onnxruntime(model, {"x": x})[0], rtol=1e-5, atol=1e-6)
