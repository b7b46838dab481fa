"""Reductions, ArgMax/ArgMin and Softmax/LogSoftmax on the ONNX node cases and on both axes forms."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from omrt.kernels import OpSpec, TensorSpec, build_kernel, run_op, workspace_bytes
from tests.kernels.node_cases import cases_for, run_case as run_node_case

OPS = ["ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL2", "ReduceL1",
       "ReduceSumSquare", "ReduceLogSumExp", "ArgMax", "ArgMin", "Softmax", "LogSoftmax"]
CASES = list(cases_for(*OPS))


@pytest.mark.parametrize("name,case", CASES, ids=[n for n, _ in CASES])
def test_node_case(name, case):
    run_node_case(case, with_opset=True)


def _reduce_spec(op, x, out_shape, attrs, axes_input=None, const=False):
    ins = [TensorSpec(x.shape, x.dtype)]
    consts = {}
    if axes_input is not None:
        ins.append(TensorSpec(axes_input.shape, axes_input.dtype))
        if const:
            consts[1] = axes_input
    return OpSpec(op, attrs, ins, [TensorSpec(tuple(out_shape), x.dtype)], consts)


REF = {"ReduceSum": np.sum, "ReduceMean": np.mean, "ReduceMax": np.max, "ReduceMin": np.min,
       "ReduceProd": np.prod, "ReduceL1": lambda x, axis, keepdims: np.sum(np.abs(x), axis=axis, keepdims=keepdims),
       "ReduceL2": lambda x, axis, keepdims: np.sqrt(np.sum(x * x, axis=axis, keepdims=keepdims)),
       "ReduceSumSquare": lambda x, axis, keepdims: np.sum(x * x, axis=axis, keepdims=keepdims),
       "ReduceLogSumExp": lambda x, axis, keepdims: np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims))}


@pytest.mark.parametrize("form", ["attr", "const", "runtime"])
@pytest.mark.parametrize("op", sorted(REF))
def test_axes_forms_agree(op, form):
    x = np.random.default_rng(3).standard_normal((2, 3, 4)).astype(np.float32)
    axes = np.array([0, -1], np.int64)
    want = REF[op](x, axis=(0, 2), keepdims=False)
    if form == "attr":
        spec = _reduce_spec(op, x, want.shape, {"keepdims": 0, "axes": [0, -1]})
        got = run_op(spec, [x])[0]
    else:
        spec = _reduce_spec(op, x, want.shape, {"keepdims": 0}, axes, const=form == "const")
        got = run_op(spec, [x, axes])[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_noop_with_empty_axes_copies():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    spec = _reduce_spec("ReduceSum", x, x.shape, {"noop_with_empty_axes": 1}, np.zeros(0, np.int64))
    np.testing.assert_array_equal(run_op(spec, [x, np.zeros(0, np.int64)])[0], x)


def test_reduce_float16_accumulates_well():
    x = np.full((4096,), 0.1, np.float16)
    spec = _reduce_spec("ReduceSumSquare", x, (1,), {"keepdims": 1})
    np.testing.assert_allclose(run_op(spec, [x])[0], [4096 * 0.1 * 0.1], rtol=1e-2)


@pytest.mark.parametrize("opset,axis,axes", [(11, 1, (1, 2)), (13, 1, (1,)), (11, 0, (0, 1, 2)), (13, -1, (2,))])
@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
def test_softmax_opset_semantics(op, opset, axis, axes):
    x = np.random.default_rng(4).standard_normal((2, 3, 4)).astype(np.float32)
    spec = OpSpec(op, {"axis": axis, "_opset": opset}, [TensorSpec(x.shape, x.dtype)], [TensorSpec(x.shape, x.dtype)])
    e = np.exp(x - x.max(axis=axes, keepdims=True))
    want = e / e.sum(axis=axes, keepdims=True)
    if op == "LogSoftmax":
        want = np.log(want)
    np.testing.assert_allclose(run_op(spec, [x])[0], want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
def test_softmax_in_place_and_float16(op):
    x = np.random.default_rng(5).standard_normal((3, 7)).astype(np.float16)
    spec = OpSpec(op, {}, [TensorSpec(x.shape, x.dtype)], [TensorSpec(x.shape, x.dtype)])
    want = run_op(spec, [x.copy()])[0]
    ref = np.exp(x.astype(np.float64)) / np.exp(x.astype(np.float64)).sum(-1, keepdims=True)
    np.testing.assert_allclose(want, np.log(ref) if op == "LogSoftmax" else ref, rtol=2e-3, atol=2e-3)
    buf = x.copy()
    build_kernel(spec)([buf], [buf], np.empty(workspace_bytes(spec), np.uint8))
    np.testing.assert_array_equal(buf, want)


def test_reduce_into_view_leaves_neighbours():
    x = np.random.default_rng(6).standard_normal((3, 4)).astype(np.float32)
    big = np.full((5, 5), 9.0, np.float32)
    view = big[1, 1:4]
    spec = _reduce_spec("ReduceL2", x, (3,), {"keepdims": 0, "axes": [1]})
    build_kernel(spec)([x], [view], np.empty(workspace_bytes(spec), np.uint8))
    np.testing.assert_allclose(view, np.sqrt((x * x).sum(1)), rtol=1e-6)
    big[1, 1:4] = 9.0
    assert (big == 9.0).all()


@settings(max_examples=40, deadline=None)
@given(x=hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=4, max_side=4),
                    elements=st.integers(-20, 20)),
       data=st.data(), keep=st.booleans(), last=st.booleans(), op=st.sampled_from(["ArgMax", "ArgMin"]))
def test_arg_matches_numpy(x, data, keep, last, op):
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    fn = np.argmax if op == "ArgMax" else np.argmin
    if last:
        ax = axis % x.ndim
        want = x.shape[ax] - 1 - fn(np.flip(x, ax), axis=ax, keepdims=keep)
    else:
        want = fn(x, axis=axis, keepdims=keep)
    spec = OpSpec(op, {"axis": axis, "keepdims": int(keep), "select_last_index": int(last)},
                  [TensorSpec(x.shape, x.dtype)], [TensorSpec(want.shape, np.dtype(np.int64))])
    np.testing.assert_array_equal(run_op(spec, [x])[0], want)
