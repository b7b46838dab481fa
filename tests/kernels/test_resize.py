"""Resize/Upsample on the ONNX node cases, against onnxruntime, and with runtime scales/sizes."""
from __future__ import annotations

import numpy as np
import pytest

from omrt.kernels import OpSpec, TensorSpec, build_kernel, run_op, workspace_bytes
from tests.kernels.node_cases import cases_for
from tests.kernels.test_elementwise import run_node_case, skip_reason

CASES = list(cases_for("Resize", "Upsample"))


@pytest.mark.parametrize("name,case", CASES, ids=[n for n, _ in CASES])
def test_node_case(name, case):
    reason = skip_reason(case)
    if reason:
        pytest.skip(reason)
    if any(a.name == "antialias" and a.i for a in case.model.graph.node[0].attribute):
        pytest.skip("antialias resizing is not implemented")
    run_node_case(case, with_opset=True)
