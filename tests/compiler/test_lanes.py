"""Batch lanes: which models compile into lanes, and that a plan in lanes computes the whole batch."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from omrt.compiler import compile_onnx
from omrt.compiler.lanes import choose_lanes, concat_share
from omrt.compiler.options import CompileOptions
from omrt.constants import ACL_ERROR_INVALID_PARAM
from omrt.errors import OmrtError
from omrt.om import read_om, write_om
from omrt.session import InferenceSession
from tests.compiler.compiler_checks import check_bounds
from tests.support.small_models import run_onnxruntime, small_cnn

RNG = np.random.default_rng(7)


@pytest.mark.parametrize("batch, requested, lanes", [
    (8, None, 2), (4, None, 2), (2, None, 2), (1, None, 1), (3, None, 1), (6, None, 2), (None, None, 1),
    (8, 2, 2), (8, 8, 8), (8, 1, 1), (3, 1, 1),
])
def test_choose_lanes(batch, requested, lanes):
    assert choose_lanes(batch, requested) == lanes


@pytest.mark.parametrize("batch, requested, share, lanes", [
    (8, None, 0.2, 8), (6, None, 0.05, 6), (3, None, 0.2, 3), (8, None, 0.04, 2), (1, None, 0.5, 1),
    (None, None, 0.5, 1), (8, 2, 0.5, 2),
])
def test_concats_give_each_image_a_lane(batch, requested, share, lanes):
    """Where Concat outputs are a large share of the activations, one image per lane (whose
    concats are written in place), unless lanes were asked for."""
    assert choose_lanes(batch, requested, share) == lanes


def _concat_model(batch: int) -> onnx.ModelProto:
    """x -> two 1x1 convs -> Concat along channels -> Relu."""
    w = numpy_helper.from_array(RNG.standard_normal((4, 3, 1, 1)).astype(np.float32), "w")
    nodes = [helper.make_node("Conv", ["x", "w"], ["a"]), helper.make_node("Conv", ["x", "w"], ["b"]),
             helper.make_node("Concat", ["a", "b"], ["c"], axis=1), helper.make_node("Relu", ["c"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, (batch, 3, 8, 8))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, (batch, 8, 8, 8))], [w])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_concat_share_counts_concat_outputs_among_all_op_outputs():
    assert concat_share(_concat_model(2)) == pytest.approx(8 / (4 + 4 + 8 + 8))
    assert concat_share(small_cnn(batch=4)) == 0.0


def test_a_model_of_concats_compiles_one_image_per_lane():
    x = RNG.standard_normal((4, 3, 8, 8)).astype(np.float32)
    model = _concat_model(4)
    om, got = _run(model, x)
    assert om.graphs[0].lanes == 4 and om.graphs[0].inputs[0].desc.shape == (1, 3, 8, 8)
    (want,) = run_onnxruntime(model, {"x": x})
    np.testing.assert_allclose(got[0], want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("batch, requested", [(8, 3), (8, 0), (None, 2)])
def test_lane_counts_that_do_not_divide_the_batch_are_refused(batch, requested):
    with pytest.raises(OmrtError) as info:
        choose_lanes(batch, requested)
    assert info.value.code == ACL_ERROR_INVALID_PARAM


def _run(model: onnx.ModelProto, x: np.ndarray, lanes=None):
    om = read_om(write_om(compile_onnx(model, CompileOptions(lanes=lanes))))
    return om, InferenceSession(write_om(om)).run(None, {"x": x})


def test_small_cnn_in_lanes_matches_onnxruntime_and_one_lane():
    x = RNG.standard_normal((4, 3, 16, 16)).astype(np.float32)
    model = small_cnn(batch=4)
    om, got = _run(model, x)
    plan = om.graphs[0]
    check_bounds(om, plan)
    assert plan.lanes == 2 and plan.memory_size == 2 * plan.lane_memory
    assert plan.inputs[0].desc.shape == (2, 3, 16, 16) and om.inputs[0].shape == (4, 3, 16, 16)
    assert om.outputs[0].shape == (4, 10)
    (want,) = run_onnxruntime(model, {"x": x})
    np.testing.assert_allclose(got[0], want, rtol=1e-4, atol=1e-6)
    whole, one_lane = _run(model, x, lanes=1)
    assert whole.graphs[0].lanes == 1
    np.testing.assert_allclose(got[0], one_lane[0], rtol=1e-5, atol=1e-7)


def test_every_lane_gets_its_own_images():
    """Identical images give the same rows; a lane reading another lane's slice would not."""
    x = np.repeat(RNG.standard_normal((1, 3, 16, 16)).astype(np.float32), 8, axis=0)
    x[5] += 1.0
    _, (probs,) = _run(small_cnn(batch=8), x)
    same = [i for i in range(8) if i != 5]
    np.testing.assert_allclose(probs[same], np.broadcast_to(probs[0], (7, 10)), rtol=1e-5, atol=1e-7)
    assert not np.allclose(probs[5], probs[0])


def _graph(nodes, x_shape, y_shape, inits=(), opset=13) -> onnx.ModelProto:
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)], list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def _const(name, value) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value), name)


MIXING = {
    "softmax over the batch": ([helper.make_node("Softmax", ["x"], ["y"], axis=0)], [4, 3], [4, 3], []),
    "reduce over the batch": ([helper.make_node("ReduceMean", ["x"], ["r"], axes=[0], keepdims=1),
                               helper.make_node("Sub", ["x", "r"], ["y"])], [4, 3], [4, 3], []),
    "reduce over everything": ([helper.make_node("ReduceSum", ["x"], ["r"], keepdims=1),
                                helper.make_node("Mul", ["x", "r"], ["y"])], [4, 3], [4, 3], []),
    "transpose of the batch": ([helper.make_node("Transpose", ["x"], ["y"], perm=[1, 0])], [4, 4], [4, 4], []),
    "concat along the batch": ([helper.make_node("Concat", ["x", "x"], ["c"], axis=0),
                                helper.make_node("Slice", ["c", "s", "e"], ["y"])], [4, 3], [4, 3],
                               [_const("s", [2]), _const("e", [6])]),
    "flatten at axis 0": ([helper.make_node("Flatten", ["x"], ["f"], axis=0),
                           helper.make_node("Reshape", ["f", "shape"], ["y"])], [4, 3], [4, 3],
                          [_const("shape", np.array([4, 3], np.int64))]),
    "a constant that varies along the batch": ([helper.make_node("Add", ["x", "k"], ["y"])], [4, 3], [4, 3],
                                               [_const("k", np.arange(12, dtype=np.float32).reshape(4, 3))]),
    "matmul of two activations without a batch dim": ([helper.make_node("Transpose", ["x"], ["t"], perm=[1, 0]),
                                                       helper.make_node("MatMul", ["x", "t"], ["y"])],
                                                      [4, 3], [4, 4], []),
    "gather of images": ([helper.make_node("Gather", ["x", "idx"], ["y"], axis=0)], [4, 3], [4, 3],
                         [_const("idx", np.array([3, 2, 1, 0], np.int64))]),
    "slice of images": ([helper.make_node("Slice", ["x", "s", "e", "a"], ["y"])], [4, 3], [2, 3],
                        [_const("s", [1]), _const("e", [3]), _const("a", [0])]),
    "unsqueeze in front": ([helper.make_node("Unsqueeze", ["x", "a"], ["y"])], [4, 3], [1, 4, 3],
                           [_const("a", np.array([0], np.int64))]),
}


@pytest.mark.parametrize("case", sorted(MIXING))
def test_ops_along_the_batch_keep_the_whole_batch(case):
    nodes, x_shape, y_shape, inits = MIXING[case]
    model = _graph(nodes, x_shape, y_shape, inits)
    x = RNG.standard_normal(x_shape).astype(np.float32)
    om, (got,) = _run(model, x)
    assert om.graphs[0].lanes == 1
    (want,) = run_onnxruntime(model, {"x": x})
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    with pytest.raises(OmrtError) as info:
        compile_onnx(model, CompileOptions(lanes=2))
    assert info.value.code == ACL_ERROR_INVALID_PARAM


LOCAL = {
    "reshape to a constant [N, -1]": ([helper.make_node("Reshape", ["x", "shape"], ["y"])], [4, 2, 3], [4, 6],
                                      [_const("shape", np.array([4, -1], np.int64))]),
    "softmax per image": ([helper.make_node("Softmax", ["x"], ["y"], axis=1)], [4, 3], [4, 3], []),
    "reduce per image": ([helper.make_node("ReduceMax", ["x"], ["y"], axes=[1, 2], keepdims=0)], [4, 2, 3], [4], []),
    "transpose within images": ([helper.make_node("Transpose", ["x"], ["y"], perm=[0, 2, 1])], [4, 2, 3], [4, 3, 2],
                                []),
    "concat of channels": ([helper.make_node("Relu", ["x"], ["r"]),
                            helper.make_node("Concat", ["x", "r"], ["y"], axis=1)], [4, 3], [4, 6], []),
    "a constant broadcast over images": ([helper.make_node("Mul", ["x", "k"], ["y"])], [4, 3], [4, 3],
                                         [_const("k", np.array([[1.0, -2.0, 3.0]], np.float32))]),
    "batched matmul of two activations": ([helper.make_node("Transpose", ["x"], ["t"], perm=[0, 2, 1]),
                                           helper.make_node("MatMul", ["x", "t"], ["y"])], [4, 2, 3], [4, 2, 2], []),
    "softmax at axis 1 in opset 11": ([helper.make_node("Softmax", ["x"], ["y"], axis=1)], [4, 2, 3], [4, 2, 3], []),
}


@pytest.mark.parametrize("case", sorted(LOCAL))
def test_ops_within_images_go_in_lanes(case):
    nodes, x_shape, y_shape, inits = LOCAL[case]
    model = _graph(nodes, x_shape, y_shape, inits, opset=11 if "opset 11" in case else 13)
    x = RNG.standard_normal(x_shape).astype(np.float32)
    om, (got,) = _run(model, x)
    assert om.graphs[0].lanes == (4 if "concat" in case else 2)  # a concat, half the outputs: a lane per image
    (want,) = run_onnxruntime(model, {"x": x})
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_dynamic_batch_gears_of_even_batch_go_in_lanes():
    model = small_cnn(batch="n")
    om = read_om(write_om(compile_onnx(model, CompileOptions(input_shape={"x": [-1, 3, 16, 16]},
                                                               dynamic_batch_size=[1, 3, 4]))))
    assert [g.lanes for g in om.graphs] == [1, 1, 2]
    assert om.inputs[0].shape == (4, 3, 16, 16) and om.graphs[2].inputs[0].desc.shape == (2, 3, 16, 16)
    session = InferenceSession(write_om(om))
    for batch in (4, 3, 1, 4):
        x = RNG.standard_normal((batch, 3, 16, 16)).astype(np.float32)
        (got,) = session.run(None, {"x": x})
        (want,) = run_onnxruntime(model, {"x": x})
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_concat_share_of_a_dynamic_batch_model():
    """A symbolic batch does not hide the share: a dynamic-batch model's gears get a lane per image
    too."""
    model = _concat_model(2)
    for vi in list(model.graph.input) + list(model.graph.output):
        vi.type.tensor_type.shape.dim[0].dim_param = "n"
    assert concat_share(model) == pytest.approx(8 / (4 + 4 + 8 + 8))
    om = read_om(write_om(compile_onnx(model, CompileOptions(input_shape={"x": [-1, 3, 8, 8]},
                                                               dynamic_batch_size=[1, 4]))))
    assert [g.lanes for g in om.graphs] == [1, 4]
    session = InferenceSession(write_om(om))
    for batch in (4, 1):
        x = RNG.standard_normal((batch, 3, 8, 8)).astype(np.float32)
        (want,) = run_onnxruntime(model, {"x": x})
        np.testing.assert_allclose(session.run(None, {"x": x})[0], want, rtol=1e-5, atol=1e-6)
