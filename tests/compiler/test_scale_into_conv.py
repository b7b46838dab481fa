"""BN + Relu feeding Convs: positive scales move into the Conv weights, results stay the same."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from omrt.compiler import compile_onnx_report
from omrt.om import write_om
from omrt.session import InferenceSession
from tests.support.small_models import run_onnxruntime

C = 6


def _pre_activation_model(scale: np.ndarray, extra_consumer: str | None = None):
    """x -> BN -> Relu -> {Conv 3x3 pad 1, Conv 1x1} -> Add (DenseNet's pre-activation shape)."""
    rng = np.random.default_rng(11)
    inits = {"s": scale, "b": rng.standard_normal(C), "m": rng.standard_normal(C),
             "v": rng.uniform(0.5, 1.5, C), "w3": rng.standard_normal((4, C, 3, 3)) * 0.2,
             "w1": rng.standard_normal((4, C, 1, 1)) * 0.2, "cb": rng.standard_normal(4)}
    nodes = [
        helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["bn"]),
        helper.make_node("Relu", ["bn"], ["r"]),
        helper.make_node("Conv", ["r", "w3", "cb"], ["c3"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["r", "w1"], ["c1"], kernel_shape=[1, 1]),
        helper.make_node("Add", ["c3", "c1"], ["y"]),
    ]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4, 7, 7])]
    if extra_consumer:
        nodes.append(helper.make_node(extra_consumer, ["r"], ["z"]))
        outputs.append(helper.make_tensor_value_info("z", TensorProto.FLOAT, [2, C, 7, 7]))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, C, 7, 7])],
                              outputs, [numpy_helper.from_array(v.astype(np.float32), k) for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def _unpadded_consumers_model(scale: np.ndarray, auto_pad: str = "NOTSET"):
    """x -> BN -> Relu -> {Conv 3x3 unpadded with bias, Conv 1x1 stride 2 without}: two outputs."""
    rng = np.random.default_rng(12)
    inits = {"s": scale, "b": rng.standard_normal(C), "m": rng.standard_normal(C),
             "v": rng.uniform(0.5, 1.5, C), "w3": rng.standard_normal((4, C, 3, 3)) * 0.2,
             "w1": rng.standard_normal((3, C, 1, 1)) * 0.2, "cb": rng.standard_normal(4)}
    pad = {"auto_pad": auto_pad} if auto_pad != "NOTSET" else {"pads": [0, 0, 0, 0]}
    nodes = [
        helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["bn"]),
        helper.make_node("Relu", ["bn"], ["r"]),
        helper.make_node("Conv", ["r", "w3", "cb"], ["c3"], kernel_shape=[3, 3], **pad),
        helper.make_node("Conv", ["r", "w1"], ["c1"], kernel_shape=[1, 1], strides=[2, 2]),
    ]
    side = 5 if auto_pad in ("NOTSET", "VALID") else 7
    outputs = [helper.make_tensor_value_info("c3", TensorProto.FLOAT, [2, 4, side, side]),
               helper.make_tensor_value_info("c1", TensorProto.FLOAT, [2, 3, 4, 4])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, C, 7, 7])],
                              outputs, [numpy_helper.from_array(v.astype(np.float32), k) for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def _compile_and_compare(model) -> dict[str, int]:
    compiled, report = compile_onnx_report(model)
    x = np.random.default_rng(2).standard_normal((2, C, 7, 7)).astype(np.float32)
    got = InferenceSession(write_om(compiled)).run(None, {"x": x})
    for g, w in zip(got, run_onnxruntime(model, {"x": x})):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)
    return report.graphs[0].fusions


def test_positive_scale_moves_into_both_convs() -> None:
    scale = np.random.default_rng(5).uniform(0.3, 3.0, C)
    fusions = _compile_and_compare(_pre_activation_model(scale))
    assert fusions.get("bn_scale_into_conv") == 1
    assert "bn_shift_into_conv" not in fusions  # the 3x3 Conv pads: its border must see zeros


@pytest.mark.parametrize("scale,auto_pad", [
    (np.random.default_rng(6).uniform(0.3, 3.0, C), "NOTSET"),   # one max pass
    (np.random.default_rng(6).uniform(0.3, 3.0, C), "VALID"),
    (np.array([1.0, -0.5, 2.0, -1.5, 0.7, 1.1]), "NOTSET"),       # signs flip, then max
    (np.array([1.0, 0.0, -2.0, 1.5, 1.2, 0.0]), "NOTSET"),        # zero scales: constant relu(t)
])
def test_shift_moves_into_unpadded_convs(scale: np.ndarray, auto_pad: str) -> None:
    """Every consumer unpadded: the BN shift becomes Conv bias (created where there was none)."""
    fusions = _compile_and_compare(_unpadded_consumers_model(scale, auto_pad))
    assert fusions.get("bn_shift_into_conv") == 1 and "bn_scale_into_conv" not in fusions


def test_shift_stays_with_same_padding() -> None:
    scale = np.random.default_rng(6).uniform(0.3, 3.0, C)
    fusions = _compile_and_compare(_unpadded_consumers_model(scale, "SAME_UPPER"))
    assert fusions.get("bn_scale_into_conv") == 1 and "bn_shift_into_conv" not in fusions


@pytest.mark.parametrize("scale,extra", [
    (np.array([1.0, -0.5, 2.0, 1.5, 0.7, 1.1]), None),      # a negative scale: Relu does not commute
    (np.array([1.0, 0.5, 2.0, 1.5, 0.7, 1.1]), "Sigmoid"),  # a consumer that is not a Conv
])
def test_scale_stays_when_it_cannot_move(scale: np.ndarray, extra: str | None) -> None:
    assert "bn_scale_into_conv" not in _compile_and_compare(_pre_activation_model(scale, extra))
