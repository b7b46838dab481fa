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
import pytest
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


NUMERIC = set(np.dtype(t) for t in ("float16", "float32", "float64", "int8", "int16", "int32", "int64",
                                    "uint8", "uint16", "uint32", "uint64", "bool"))


def as_array(a):
    """Some node cases store their data as TensorProto (float16/bfloat16 casts); numpy for the rest."""
    if isinstance(a, onnx.TensorProto):
        return numpy_helper.to_array(a)
    if isinstance(a, np.generic):
        return np.asarray(a)
    return a


def opset_of(case) -> int:
    return max((o.version for o in case.model.opset_import if o.domain in ("", "ai.onnx")), default=0)


def run_case(case: Any, with_opset: bool = False) -> None:
    """Run every data set of a case and assert the suite's own tolerances; opset-dependent ops
    (`with_opset`) get the model's opset as `_opset`, as the compiler passes it. Cases outside
    what the runtime supports (`skip_reason`) are skipped with the reason."""
    reason = skip_reason(case)
    if reason:
        pytest.skip(reason)
    node = case.model.graph.node[0]
    for inputs, expected in case.data_sets:
        inputs = [as_array(a) for a in inputs]
        expected = [as_array(e) for e in expected]
        spec = spec_from_case(case, inputs, expected)
        if with_opset:
            spec.attrs["_opset"] = opset_of(case)
        it = iter(inputs)
        got = run_op(spec, [None if n == "" else next(it) for n in node.input])
        for g, e in zip(got, expected):
            assert g.shape == e.shape, (g.shape, e.shape)
            if e.dtype.kind in "fc":
                np.testing.assert_allclose(g, e, rtol=case.rtol, atol=case.atol)
            else:
                np.testing.assert_array_equal(g, e)


def skip_reason(case) -> str | None:
    """Why a node case is outside what the runtime supports, or None."""
    for inputs, expected in case.data_sets:
        for a in [*inputs, *expected]:
            a = as_array(a)
            if not isinstance(a, np.ndarray):
                return "sequence/optional inputs are not tensors; the runtime runs tensors only"
            if a.dtype not in NUMERIC:
                return f"dtype {a.dtype} (string/bfloat16/float8/4-bit) is not supported by omrt"
    node = case.model.graph.node[0]
    if node.op_type == "Dropout" and "training" in case.name and "zero_ratio" not in case.name:
        return "Dropout in training mode draws a random mask; omrt runs inference only"
    return None
