"""Data-movement kernels on the ONNX node cases, with constant and runtime parameter inputs."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omrt.kernels import OpSpec, TensorSpec, build_kernel, run_op
from tests.kernels.node_cases import cases_for, run_case as run_node_case

OPS = ["Concat", "Split", "Slice", "Gather", "Transpose", "Reshape", "Flatten", "Squeeze", "Unsqueeze",
       "Expand", "Tile", "Pad", "Shape", "ConstantOfShape", "Size", "Range"]
CASES = list(cases_for(*OPS))


@pytest.mark.parametrize("name,case", CASES, ids=[n for n, _ in CASES])
def test_node_case(name, case):
    run_node_case(case, with_opset=True)


def _spec(op, arrays, out, attrs=None, consts=()):
    ins = [None if a is None else TensorSpec(a.shape, a.dtype) for a in arrays]
    return OpSpec(op, attrs or {}, ins, [TensorSpec(out.shape, out.dtype)],
                  {i: arrays[i] for i in consts})


@settings(max_examples=80, deadline=None)
@given(n=st.integers(0, 7), start=st.integers(-10, 10), end=st.integers(-10, 10),
       step=st.sampled_from([-3, -2, -1, 1, 2, 3]), const=st.booleans())
def test_slice_matches_onnx_reference(n, start, end, step, const):
    from onnx.reference.ops.op_slice import _slice
    x = np.arange(n * 2, dtype=np.float32).reshape(n, 2)
    p = [np.array([v], np.int64) for v in (start, end, [0], step)]
    p[2] = np.array([0], np.int64)
    want = _slice(x, *p)
    arrays = [x, *p]
    spec = _spec("Slice", arrays, want, consts=(1, 2, 3, 4) if const else ())
    np.testing.assert_array_equal(run_op(spec, arrays)[0], want)


def test_slice_opset1_attributes():
    x = np.arange(20, dtype=np.float32).reshape(4, 5)
    want = x[1:3, -4:]
    spec = _spec("Slice", [x], want, {"starts": [1, -4], "ends": [3, 1000], "axes": [0, 1]})
    np.testing.assert_array_equal(run_op(spec, [x])[0], want)


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge", "wrap"])
@pytest.mark.parametrize("form", ["attr", "const", "runtime"])
def test_pad_modes_match_numpy(mode, form):
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    width = [(2, 1), (3, 2)]
    kw = {"constant_values": 5.0} if mode == "constant" else {}
    want = np.pad(x, width, mode={"edge": "edge", "reflect": "reflect", "wrap": "wrap", "constant": "constant"}[mode], **kw)
    pads = np.array([2, 3, 1, 2], np.int64)
    if form == "attr":
        spec = _spec("Pad", [x], want, {"mode": mode, "pads": pads.tolist(), "value": 5.0})
        got = run_op(spec, [x])[0]
    else:
        arrays = [x, pads, np.array(5.0, np.float32)]
        spec = _spec("Pad", arrays, want, {"mode": mode}, consts=(1, 2) if form == "const" else ())
        got = run_op(spec, arrays)[0]
    np.testing.assert_array_equal(got, want)


def test_pad_negative_crops():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    pads = np.array([0, -1, 1, 1], np.int64)
    want = np.pad(x[:, 1:], [(0, 1), (0, 1)])
    arrays = [x, pads]
    np.testing.assert_array_equal(run_op(_spec("Pad", arrays, want), arrays)[0], want)


@pytest.mark.parametrize("const", [True, False])
def test_gather_negative_indices(const):
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    idx = np.array([[-1, 0], [1, -3]], np.int64)
    want = np.take(x, idx, axis=1)
    spec = _spec("Gather", [x, idx], want, {"axis": 1}, consts=(1,) if const else ())
    np.testing.assert_array_equal(run_op(spec, [x, idx])[0], want)


def test_tile_into_strided_view_falls_back_and_keeps_neighbours():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    want = np.tile(x, (2, 2))
    big = np.full((4, 12), -1.0, np.float32)
    view = big[:, ::2]
    reps = np.array([2, 2], np.int64)
    build_kernel(_spec("Tile", [x, reps], want))([x, reps], [view], None)
    np.testing.assert_array_equal(view, want)
    assert (big[:, 1::2] == -1).all()


def test_split_into_views_of_one_buffer():
    x = np.arange(10, dtype=np.float32)
    big = np.zeros(12, np.float32)
    outs = [big[1:4], big[5:12]]
    spec = OpSpec("Split", {"axis": 0}, [TensorSpec(x.shape, x.dtype)],
                  [TensorSpec((3,), x.dtype), TensorSpec((7,), x.dtype)])
    build_kernel(spec)([x], outs, None)
    np.testing.assert_array_equal(big, [0, 0, 1, 2, 0, 3, 4, 5, 6, 7, 8, 9])


def test_reshape_in_place_is_a_no_op_copy():
    buf = np.arange(6, dtype=np.float32)
    out = buf.reshape(2, 3)
    build_kernel(_spec("Reshape", [buf, np.array([2, 3])], out))([buf, None], [out], None)
    np.testing.assert_array_equal(out, np.arange(6).reshape(2, 3))


def test_gather_out_of_range_index_is_an_error_not_a_wrap():
    from omrt.errors import OmrtError

    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    spec = OpSpec("Gather", {"axis": 0}, [TensorSpec((3, 4), np.dtype(np.float32)), TensorSpec((2,), np.dtype(np.int64))],
                  [TensorSpec((2, 4), np.dtype(np.float32))])
    np.testing.assert_array_equal(run_op(spec, [x, np.array([-1, 2])])[0], x[[2, 2]])
    with pytest.raises(OmrtError, match="out of range"):
        run_op(spec, [x, np.array([0, 3])])
    const = OpSpec("Gather", {"axis": 0}, spec.inputs, spec.outputs, consts={1: np.array([0, -4])})
    with pytest.raises(OmrtError, match="out of range"):
        run_op(const, [x, np.array([0, -4])])


def test_gather_scalar_constant_index():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    spec = OpSpec("Gather", {"axis": 1}, [TensorSpec((3, 4), np.dtype(np.float32)), TensorSpec((), np.dtype(np.int64))],
                  [TensorSpec((3,), np.dtype(np.float32))], consts={1: np.array(2)})
    np.testing.assert_array_equal(run_op(spec, [x, np.array(2)])[0], x[:, 2])
