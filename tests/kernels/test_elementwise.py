"""Elementwise kernels on the ONNX node cases, in place, into views, and against numpy broadcasting."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from omrt.kernels import OpSpec, TensorSpec, build_kernel, run_op, workspace_bytes
from tests.kernels.node_cases import cases_for, run_case as run_node_case

UNARY = ["Relu", "LeakyRelu", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "Clip", "Elu", "Selu",
         "Softplus", "Softsign", "Erf", "Gelu", "Sqrt", "Exp", "Log", "Abs", "Neg", "Reciprocal",
         "Floor", "Ceil", "Round", "Sign", "Not", "Identity", "Dropout", "Cast"]
BINARY = ["PRelu", "Add", "Sub", "Mul", "Div", "Pow", "Equal", "Less", "Greater", "LessOrEqual",
          "GreaterOrEqual", "And", "Or", "Xor"]
VARIADIC = ["Min", "Max", "Sum", "Mean"]
OTHER = ["Where", "CastLike"]
CASES = list(cases_for(*UNARY, *BINARY, *VARIADIC, *OTHER))


@pytest.mark.parametrize("name,case", CASES, ids=[n for n, _ in CASES])
def test_node_case(name, case):
    run_node_case(case)


def _spec(op, shapes, dtype=np.float32, out_shape=None, out_dtype=None, **attrs):
    ins = [TensorSpec(tuple(s), np.dtype(dtype)) for s in shapes]
    out = out_shape if out_shape is not None else tuple(np.broadcast_shapes(*shapes))
    return OpSpec(op, attrs, ins, [TensorSpec(tuple(out), np.dtype(out_dtype or dtype))])


def _call(spec, inputs, outputs):
    n = workspace_bytes(spec)
    build_kernel(spec)(inputs, outputs, np.empty(n, np.uint8) if n else None)


ALIAS_UNARY = ["Relu", "LeakyRelu", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "Elu", "Selu",
               "Softplus", "Softsign", "Erf", "Gelu", "Exp", "Abs", "Neg", "Floor", "Ceil", "Round",
               "Sign", "Clip", "Identity"]
ALIAS_BINARY = ["PRelu", "Add", "Sub", "Mul", "Div", "Pow", "Min", "Max", "Sum", "Mean"]


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("op", ALIAS_UNARY)
def test_unary_in_place(op, dtype):
    x = np.random.default_rng(0).standard_normal((3, 5)).astype(dtype)
    spec = _spec(op, [x.shape], dtype)
    want = run_op(spec, [x.copy()])[0]
    buf = x.copy()
    _call(spec, [buf], [buf])
    np.testing.assert_array_equal(buf, want)


@pytest.mark.parametrize("which", [0, 1])
@pytest.mark.parametrize("op", ALIAS_BINARY)
def test_binary_in_place(op, which):
    rng = np.random.default_rng(1)
    a = np.abs(rng.standard_normal((4, 6))).astype(np.float32) + 0.5
    b = rng.standard_normal((4, 6)).astype(np.float32)
    spec = _spec(op, [a.shape, b.shape])
    want = run_op(spec, [a.copy(), b.copy()])[0]
    ins = [a.copy(), b.copy()]
    _call(spec, ins, [ins[which]])
    np.testing.assert_array_equal(ins[which], want)


def test_variadic_output_aliases_third_input():
    xs = [np.full((2, 3), v, np.float32) for v in (1, 2, 3)]
    spec = _spec("Sum", [x.shape for x in xs])
    _call(spec, xs, [xs[2]])
    np.testing.assert_array_equal(xs[2], np.full((2, 3), 6, np.float32))


def test_where_output_aliases_x():
    c = np.array([[True, False, True]])
    x = np.array([[1, 2, 3]], np.float32)
    y = np.array([[9, 9, 9]], np.float32)
    spec = OpSpec("Where", {}, [TensorSpec(c.shape, c.dtype), TensorSpec(x.shape, x.dtype),
                                TensorSpec(y.shape, y.dtype)], [TensorSpec(x.shape, x.dtype)])
    _call(spec, [c, x, y], [x])
    np.testing.assert_array_equal(x, [[1, 9, 3]])


@pytest.mark.parametrize("op", ["Relu", "Gelu", "Sigmoid", "LeakyRelu", "Add", "Where", "Cast"])
def test_writes_only_its_view(op):
    big = np.full((6, 8), 7.0, np.float32)
    view = big[1:4, 2:6]
    x = np.linspace(-2, 2, 12, dtype=np.float32).reshape(3, 4)
    if op == "Add":
        spec, ins = _spec(op, [(3, 4), (4,)]), [x, np.ones(4, np.float32)]
    elif op == "Where":
        c = x > 0
        spec = OpSpec(op, {}, [TensorSpec(c.shape, c.dtype), TensorSpec(x.shape, x.dtype),
                               TensorSpec((1,), x.dtype)], [TensorSpec(x.shape, x.dtype)])
        ins = [c, x, np.zeros(1, np.float32)]
    elif op == "Cast":
        spec, ins = _spec(op, [(3, 4)], np.float64, out_dtype=np.float32, to=1), [x.astype(np.float64)]
    else:
        spec, ins = _spec(op, [(3, 4)]), [x]
    want = run_op(spec, ins)[0]
    _call(spec, ins, [view])
    np.testing.assert_array_equal(view, want)
    mask = np.ones(big.shape, bool)
    mask[1:4, 2:6] = False
    assert (big[mask] == 7.0).all()


def test_integer_div_truncates():
    a = np.array([7, -7, 7, -7], np.int32)
    b = np.array([2, 2, -2, -2], np.int32)
    np.testing.assert_array_equal(run_op(_spec("Div", [(4,), (4,)], np.int32), [a, b])[0], [3, -3, -3, 3])


def test_clip_opset6_attributes_and_int_defaults():
    x = np.arange(-5, 5, dtype=np.float32)
    got = run_op(_spec("Clip", [x.shape], min=-1.0, max=2.0), [x])[0]
    np.testing.assert_array_equal(got, np.clip(x, -1, 2))
    xi = np.arange(-5, 5, dtype=np.int64)
    spec = OpSpec("Clip", {}, [TensorSpec(xi.shape, xi.dtype), None, TensorSpec((), xi.dtype)],
                  [TensorSpec(xi.shape, xi.dtype)])
    np.testing.assert_array_equal(run_op(spec, [xi, None, np.array(3)])[0], np.minimum(xi, 3))


def test_clip_constant_bounds_are_precomputed():
    x = np.arange(-5, 5, dtype=np.float32)
    spec = _spec("Clip", [x.shape, (), ()])
    spec.consts = {1: np.array(-2, np.float32), 2: np.array(1, np.float32)}
    np.testing.assert_array_equal(run_op(spec, [x, None, None])[0], np.clip(x, -2, 1))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_erf_matches_math(dtype):
    import math
    x = np.linspace(-6, 6, 1001).astype(dtype)
    want = np.array([math.erf(float(v)) for v in x])
    got = run_op(_spec("Erf", [x.shape], dtype), [x])[0]
    tol = {np.float16: 1e-3, np.float32: 1e-6, np.float64: 1e-6}[dtype]
    np.testing.assert_allclose(got.astype(np.float64), want, rtol=tol, atol=tol * 1e-2)


def test_relu_dispatch_is_cheap():
    import timeit
    x = np.ones(8, np.float32)
    o = np.empty_like(x)
    k = build_kernel(_spec("Relu", [x.shape]))
    ins, outs = [x], [o]
    best = min(timeit.repeat(lambda: k(ins, outs, None), number=2000, repeat=5)) / 2000
    assert best < 20e-6, best


_BIN = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Max": np.maximum, "Min": np.minimum,
        "Less": np.less, "Equal": np.equal, "GreaterOrEqual": np.greater_equal}


@settings(max_examples=60, deadline=None)
@given(op=st.sampled_from(sorted(_BIN)),
       shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=4, max_side=4),
       dtype=st.sampled_from([np.float32, np.int32, np.float64]),
       data=st.data())
def test_binary_broadcasting_matches_numpy(op, shapes, dtype, data):
    a_shape, b_shape = shapes.input_shapes
    elems = st.integers(-50, 50)
    a = data.draw(hnp.arrays(dtype, a_shape, elements=elems))
    b = data.draw(hnp.arrays(dtype, b_shape, elements=elems))
    want = _BIN[op](a, b)
    spec = _spec(op, [a_shape, b_shape], dtype, out_shape=want.shape, out_dtype=want.dtype)
    np.testing.assert_array_equal(run_op(spec, [a, b])[0], want)


@settings(max_examples=30, deadline=None)
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=3, max_dims=3, max_side=3), data=st.data())
def test_variadic_broadcasting_matches_numpy(shapes, data):
    xs = [data.draw(hnp.arrays(np.float32, s, elements=st.integers(-9, 9))) for s in shapes.input_shapes]
    spec = _spec("Max", list(shapes.input_shapes))
    np.testing.assert_array_equal(run_op(spec, xs)[0], np.maximum(np.maximum(xs[0], xs[1]), xs[2]))
