"""The ONNX project's node test cases, grouped by the op they test, run through OmrtBackend."""
from __future__ import annotations

import functools
import re
import warnings
from typing import Any

import numpy as np

from tests.kernels.node_cases import as_array

# The ops omrt promises (the engine issue's list); every node test of these must pass or be
# listed in KNOWN_GAPS with the reason.
REQUIRED_OPS = frozenset(
    """Conv ConvTranspose BatchNormalization Gemm MatMul MaxPool AveragePool GlobalAveragePool
    GlobalMaxPool LRN Relu LeakyRelu PRelu Sigmoid Tanh HardSigmoid HardSwish Clip Elu Selu Softplus
    Erf Gelu Add Sub Mul Div Pow Sqrt Exp Log Abs Neg Reciprocal Min Max Sum Mean Concat Split Slice
    Gather Transpose Reshape Flatten Squeeze Unsqueeze Expand Tile Pad Resize Upsample Softmax
    LogSoftmax ReduceMean ReduceSum ReduceMax ReduceMin ReduceProd ReduceL2 Cast Where Equal Less
    Greater LessOrEqual GreaterOrEqual ArgMax ArgMin Identity Dropout""".split()
)


@functools.lru_cache(maxsize=1)
def all_cases() -> list[Any]:
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return collect_testcases()


def op_of(case: Any) -> str:
    """The op a case tests: its single node's type, or the node types of an expanded function."""
    nodes = case.model.graph.node
    if len(nodes) == 1:
        return nodes[0].op_type
    base = re.sub(r"_expanded.*$", "", case.name)
    return "expanded:" + base.removeprefix("test_")


def required_cases() -> list[Any]:
    return [c for c in all_cases() if op_of(c) in REQUIRED_OPS]


def run_case(case: Any) -> None:
    from omrt.onnx_backend import OmrtBackend

    rep = OmrtBackend.prepare(case.model)
    for inputs, expected in case.data_sets:
        inputs = [as_array(x) for x in inputs]
        expected = [as_array(x) for x in expected]
        got = rep.run(inputs)
        assert len(got) == len(expected), (len(got), len(expected))
        for g, e in zip(got, expected):
            assert g.shape == e.shape, f"shape {g.shape} != {e.shape}"
            if e.dtype.kind in "fc":
                np.testing.assert_allclose(g, e, rtol=case.rtol, atol=case.atol)
            else:
                np.testing.assert_array_equal(g, e)
