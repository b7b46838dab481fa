"""Resize/Upsample on the ONNX node cases, against onnxruntime, and with runtime scales/sizes."""
from __future__ import annotations

import numpy as np
import pytest

from omrt.kernels import OpSpec, TensorSpec, build_kernel, run_op, workspace_bytes
from tests.kernels.node_cases import cases_for, run_case as run_node_case

CASES = list(cases_for("Resize", "Upsample"))


@pytest.mark.parametrize("name,case", CASES, ids=[n for n, _ in CASES])
def test_node_case(name, case):
    if any(a.name == "antialias" and a.i for a in case.model.graph.node[0].attribute):
        pytest.skip("antialias resizing is not implemented")
    run_node_case(case, with_opset=True)


def _ort_resize(x, attrs, scales=None, sizes=None, roi=None, opset=19):
    import onnxruntime as ort
    from onnx import helper, numpy_helper

    inits = [numpy_helper.from_array(np.asarray(v), n) for n, v in
             (("roi", roi), ("scales", scales), ("sizes", sizes)) if v is not None]
    names = ["x", "roi" if roi is not None else "", "scales" if scales is not None else "",
             "sizes" if sizes is not None else ""]
    while names[-1] == "":
        names.pop()
    if opset < 11:
        names = ["x", "scales"]
    node = helper.make_node("Resize", names, ["y"], **attrs)
    elem = helper.np_dtype_to_tensor_dtype(x.dtype)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", elem, x.shape)],
                              [helper.make_tensor_value_info("y", elem, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 9
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


def _spec(x, out_shape, attrs, scales=None, sizes=None, roi=None, const=True):
    arrays = [x, roi, scales, sizes]
    ins = [None if a is None else TensorSpec(a.shape, a.dtype) for a in arrays]
    consts = {i: a for i, a in enumerate(arrays) if i and a is not None} if const else {}
    return OpSpec("Resize", dict(attrs), ins, [TensorSpec(tuple(out_shape), x.dtype)], consts), arrays


CTMS = ["half_pixel", "asymmetric", "align_corners", "pytorch_half_pixel", "half_pixel_symmetric"]


@pytest.mark.parametrize("const", [True, False])
@pytest.mark.parametrize("ctm", CTMS)
@pytest.mark.parametrize("mode,nearest", [("linear", None), ("cubic", None), ("nearest", "round_prefer_floor"),
                                          ("nearest", "round_prefer_ceil"), ("nearest", "floor"), ("nearest", "ceil")])
def test_matches_onnxruntime_4d(mode, nearest, ctm, const):
    # Scales whose products with the input dims are exact: onnxruntime computes coordinates in
    # float32 and align_corners from the rounded output length, the ONNX reference in float64 from
    # scale * length; the two agree exactly on these.
    x = np.random.default_rng(7).standard_normal((2, 3, 4, 8)).astype(np.float32)
    attrs = {"mode": mode, "coordinate_transformation_mode": ctm}
    if nearest:
        attrs["nearest_mode"] = nearest
    for scales in (np.array([1, 1, 2.5, 0.75], np.float32), np.array([1, 1, 2.0, 3.0], np.float32)):
        want = _ort_resize(x, attrs, scales=scales)
        spec, arrays = _spec(x, want.shape, attrs, scales=scales, const=const)
        np.testing.assert_allclose(run_op(spec, arrays)[0], want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("const", [True, False])
def test_sizes_bilinear_matches_onnxruntime(const):
    x = np.random.default_rng(8).standard_normal((1, 2, 9, 6)).astype(np.float32)
    sizes = np.array([1, 2, 4, 13], np.int64)
    attrs = {"mode": "linear"}
    want = _ort_resize(x, attrs, sizes=sizes)
    spec, arrays = _spec(x, want.shape, attrs, sizes=sizes, const=const)
    k = build_kernel(spec)
    out = np.empty(want.shape, np.float32)
    scratch = np.empty(workspace_bytes(spec), np.uint8)
    for _ in range(2):
        k(arrays, [out], scratch)
        np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)


def test_tf_crop_and_resize_extrapolates():
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    roi = np.array([0, 0, -0.2, 0.4, 1, 1, 0.6, 1.3], np.float32)
    scales = np.array([1, 1, 1.5, 1.25], np.float32)
    attrs = {"mode": "linear", "coordinate_transformation_mode": "tf_crop_and_resize", "extrapolation_value": 10.0}
    want = _ort_resize(x, attrs, scales=scales, roi=roi)
    spec, arrays = _spec(x, want.shape, attrs, scales=scales, roi=roi)
    np.testing.assert_allclose(run_op(spec, arrays)[0], want, rtol=1e-5, atol=1e-5)


def test_uint8_linear_rounds_like_onnxruntime():
    x = np.random.default_rng(9).integers(0, 256, (1, 3, 4, 5), dtype=np.uint8)
    scales = np.array([1, 1, 2, 2], np.float32)
    want = _ort_resize(x, {"mode": "linear"}, scales=scales)
    spec, arrays = _spec(x, want.shape, {"mode": "linear"}, scales=scales)
    got = run_op(spec, arrays)[0]
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1


def test_writes_only_its_view():
    x = np.random.default_rng(10).standard_normal((1, 1, 3, 3)).astype(np.float32)
    scales = np.array([1, 1, 2, 2], np.float32)
    spec, arrays = _spec(x, (1, 1, 6, 6), {"mode": "linear"}, scales=scales)
    want = run_op(spec, arrays)[0]
    big = np.full((1, 1, 8, 8), 5.0, np.float32)
    view = big[:, :, 1:7, 1:7]
    build_kernel(spec)(arrays, [view], np.empty(workspace_bytes(spec), np.uint8))
    np.testing.assert_array_equal(view, want)
    big[:, :, 1:7, 1:7] = 5.0
    assert (big == 5.0).all()


@pytest.mark.parametrize("form", ["attr7", "input9"])
@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_upsample(form, mode):
    x = np.arange(12, dtype=np.float32).reshape(1, 1, 3, 4)
    scales = np.array([1, 1, 2, 3], np.float32)
    want = _ort_resize(x, {"mode": mode}, scales=scales, opset=10)
    if form == "attr7":
        spec = OpSpec("Upsample", {"mode": mode, "scales": scales.tolist()}, [TensorSpec(x.shape, x.dtype)],
                      [TensorSpec(want.shape, x.dtype)])
        got = run_op(spec, [x])[0]
    else:
        spec = OpSpec("Upsample", {"mode": mode}, [TensorSpec(x.shape, x.dtype), TensorSpec((4,), scales.dtype)],
                      [TensorSpec(want.shape, x.dtype)])
        got = run_op(spec, [x, scales])[0]
    np.testing.assert_allclose(got, want, rtol=1e-6)
