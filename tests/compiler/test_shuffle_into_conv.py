"""Channel shuffle after a grouped 1x1 Conv: the Conv writes the shuffled tensor, results unchanged."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from omrt.compiler import compile_onnx_report
from omrt.om import write_om
from omrt.session import InferenceSession
from tests.support.small_models import run_onnxruntime

C, HW = 12, 5


def _shuffle_model(batch: int, conv_groups: int = 4, shuffle_groups: int = 4, kernel: int = 1,
                   perm: tuple[int, ...] = (0, 2, 1, 3, 4), expose_split: bool = False,
                   activation: str | None = "Relu"):
    """x -> Conv (grouped) [-> Relu] -> Reshape (N, G, C/G, H, W) -> Transpose -> Reshape -> depthwise 3x3."""
    rng = np.random.default_rng(31)
    pad = kernel // 2
    inits = {
        "w": rng.standard_normal((C, C // conv_groups, kernel, kernel)) * 0.3,
        "b": rng.standard_normal(C),
        "dw": rng.standard_normal((C, 1, 3, 3)) * 0.3,
        "split": np.array([batch, shuffle_groups, C // shuffle_groups, HW, HW]),
        "merge": np.array([batch, C, HW, HW]),
    }
    conv_out = "a" if activation else "g"
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["g"], group=conv_groups, kernel_shape=[kernel, kernel],
                              pads=[pad] * 4)]
    if activation:
        nodes.append(helper.make_node(activation, ["g"], ["a"]))
    nodes += [
        helper.make_node("Reshape", [conv_out, "split"], ["s"]),
        helper.make_node("Transpose", ["s"], ["t"], perm=list(perm)),
        helper.make_node("Reshape", ["t", "merge"], ["m"]),
        helper.make_node("Conv", ["m", "dw"], ["y"], group=C, kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
    ]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, C, HW, HW])]
    if expose_split:
        outputs.append(helper.make_tensor_value_info("s", TensorProto.FLOAT, [batch, 4, C // 4, HW, HW]))
    tensors = [numpy_helper.from_array(v.astype(np.int64 if k in ("split", "merge") else np.float32), k)
               for k, v in inits.items()]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, C, HW, HW])],
                              outputs, tensors)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def _compile_and_compare(model, batch: int) -> dict[str, int]:
    compiled, report = compile_onnx_report(model)
    x = np.random.default_rng(4).standard_normal((batch, C, HW, HW)).astype(np.float32)
    got = InferenceSession(write_om(compiled)).run(None, {"x": x})
    for g, w in zip(got, run_onnxruntime(model, {"x": x})):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)
    return report.graphs[0].fusions


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("activation", ["Relu", None])
def test_shuffle_written_by_grouped_conv(batch: int, activation: str | None) -> None:
    fusions = _compile_and_compare(_shuffle_model(batch, activation=activation), batch)
    assert fusions.get("shuffle_into_conv") == 1


@pytest.mark.parametrize("kwargs", [
    {"conv_groups": 2},                  # groups differ from the shuffle's: not a channel view
    {"conv_groups": 1},
    {"kernel": 3},                       # a padded 3x3 producer: not the direct GEMM path
    {"perm": (0, 1, 2, 4, 3)},           # not a shuffle
    {"expose_split": True},              # the reshaped tensor is also a model output
])
def test_shuffle_stays_a_transpose(kwargs) -> None:
    fusions = _compile_and_compare(_shuffle_model(2, **kwargs), 2)
    assert "shuffle_into_conv" not in fusions
