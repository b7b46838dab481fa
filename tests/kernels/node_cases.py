"""Run one kernel on the ONNX project's own node test cases, without the compiler or runtime.

Each case is a one-node model with input and expected output arrays; the kernel gets an OpSpec
built from the node (shapes from the arrays, attributes as Python values) and `run_op` runs it.
Inputs that the node treats as parameters stay runtime inputs here, as they are in those models.
"""
from __future__ import annotations

import functools
import warnings
from typing import Any, Iterator

import numpy as np
import onnx
from onnx import helper, numpy_helper

from omrt.kernels import OpSpec, TensorSpec, run_op


@functools.lru_cache(maxsize=1)
def _all_cases() -> list[Any]:
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return collect_testcases()


def attr_value(attr: onnx.AttributeProto) -> Any:
    value = helper.get_attribute_value(attr)
    if isinstance(value, onnx.TensorProto):
        return numpy_helper.to_array(value)
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, list) and value and isinstance(value[0], bytes):
        return [v.decode() for v in value]
    return value


def cases_for(*op_types: str) -> Iterator[tuple[str, Any]]:
    """(test name, case) for every single-node case whose node is one of `op_types`."""
    for case in _all_cases():
        nodes = case.model.graph.node
        if len(nodes) == 1 and nodes[0].op_type in op_types:
            yield case.name, case


def spec_from_case(case: Any, inputs: list[np.ndarray], outputs: list[np.ndarray]) -> OpSpec:
    node = case.model.graph.node[0]
    attrs = {a.name: attr_value(a) for a in node.attribute}
    in_specs: list[TensorSpec | None] = []
    it = iter(inputs)
    for name in node.input:
        if name == "":
            in_specs.append(None)
        else:
            arr = next(it)
            in_specs.append(TensorSpec(tuple(arr.shape), arr.dtype))
    out_specs = [TensorSpec(tuple(o.shape), o.dtype) for o in outputs]
    return OpSpec(node.op_type, attrs, in_specs, out_specs, name=node.name or node.op_type)


def run_case(case: Any) -> None:
    """Run every data set of a case and assert the suite's own tolerances."""
    for inputs, expected in case.data_sets:
        spec = spec_from_case(case, list(inputs), list(expected))
        it = iter(inputs)
        args = [None if n == "" else next(it) for n in case.model.graph.node[0].input]
        got = run_op(spec, args)
        for g, e in zip(got, expected):
            assert g.shape == e.shape, (g.shape, e.shape)
            if e.dtype.kind in "fc":
                np.testing.assert_allclose(g, e, rtol=case.rtol, atol=case.atol)
            else:
                np.testing.assert_array_equal(g, e)
