"""Gemm and MatMul: ONNX node cases, onnxruntime on attribute combinations, fused epilogues, views."""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from omrt.kernels import run_op
from omrt.kernels.epilogue import apply_activation
from tests.kernels.node_cases import cases_for, run_case
from tests.kernels.test_conv import ATOL, RTOL, as_stored, assert_sums_close, make_spec, ort_run, run_in_view


@pytest.mark.parametrize("name,case", list(cases_for("Gemm", "MatMul")))
def test_node_cases(name: str, case: Any) -> None:
    run_case(case)


def _rand(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("c_shape", [None, (), (1,), (7,), (1, 7), (5, 1), (5, 7)])
@pytest.mark.parametrize("ta,tb,alpha,beta", [(0, 0, 1.0, 1.0), (1, 0, 0.5, 2.0), (0, 1, 1.0, 0.0), (1, 1, -1.5, 0.3)])
@pytest.mark.parametrize("const", [False, True])
def test_gemm_matches_onnxruntime(c_shape, ta, tb, alpha, beta, const) -> None:
    rng = np.random.default_rng(0)
    a = _rand(rng, *((4, 5) if ta else (5, 4)))
    b = _rand(rng, *((7, 4) if tb else (4, 7)))
    ins = [a, b] + ([_rand(rng, *c_shape)] if c_shape is not None else [])
    attrs = {"transA": ta, "transB": tb, "alpha": alpha, "beta": beta}
    want = ort_run("Gemm", ins, attrs)[0]
    consts = {i: v for i, v in enumerate(ins) if i > 0} if const else {}
    got = run_in_view(make_spec("Gemm", ins, [want], attrs, consts), ins)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("act,params", [("Relu", []), ("Clip", [-0.5, 0.5]), ("Gelu", []), (None, [])])
def test_gemm_fused(act, params) -> None:
    rng = np.random.default_rng(1)
    ins = [_rand(rng, 3, 6), _rand(rng, 6, 4), _rand(rng, 4)]
    res = _rand(rng, 3, 4)
    want = ins[0] @ ins[1] + ins[2] + res
    apply_activation(want, act, params)
    attrs = {"_activation": act, "_activation_params": params, "_residual": 1}
    got = run_in_view(make_spec("Gemm", ins + [res], [want], attrs), ins + [res])
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("sa,sb", [((3, 4), (4, 5)), ((2, 3, 4), (4, 5)), ((2, 1, 3, 4), (3, 4, 2)),
                                   ((4,), (2, 4, 3)), ((2, 3, 4), (4,)), ((4,), (4,)), ((6, 4), (2, 4, 3))])
def test_matmul_matches_onnxruntime(sa, sb) -> None:
    rng = np.random.default_rng(2)
    ins = [_rand(rng, *sa), _rand(rng, *sb)]
    want = ort_run("MatMul", ins, {})[0]
    got = run_in_view(make_spec("MatMul", ins, [want], {}), ins)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
    got = run_op(make_spec("MatMul", ins, [want], {}, {1: ins[1]}), ins)[0]
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("const", [False, True])
def test_matmul_bias_epilogue(residual: bool, const: bool) -> None:
    rng = np.random.default_rng(3)
    a, b, bias = _rand(rng, 2, 3, 8), _rand(rng, 8, 5), _rand(rng, 5)
    res = _rand(rng, 2, 3, 5)
    want = a @ b + bias + (res if residual else 0)
    apply_activation(want, "LeakyRelu", [0.2])
    ins = [a, b, bias] + ([res] if residual else [])
    attrs = {"_bias": 1, "_residual": int(residual), "_activation": "LeakyRelu", "_activation_params": [0.2]}
    got = run_in_view(make_spec("MatMul", ins, [want], attrs, {1: b, 2: bias} if const else {}), ins)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def test_float16_and_double() -> None:
    rng = np.random.default_rng(4)
    a, b = _rand(rng, 3, 8), _rand(rng, 8, 5)
    for dt, tol in ((np.float16, 1e-2), (np.float64, 1e-6)):
        ins = [a.astype(dt), b.astype(dt)]
        for op in ("Gemm", "MatMul"):
            got = run_in_view(make_spec(op, ins, [np.empty((3, 5), dt)], {}), ins)
            assert got.dtype == dt
            np.testing.assert_allclose(got.astype(np.float64), a.astype(np.float64) @ b, rtol=tol, atol=tol * 5)


@pytest.mark.parametrize("m", [2, 4, 9])
@pytest.mark.parametrize("tb", [0, 1])
@pytest.mark.parametrize("c_shape,beta", [(None, 1.0), ((70,), 1.0), ((1, 70), 0.5), ((), 2.0)])
@pytest.mark.parametrize("threads", [1, 2])
def test_fully_connected_layers_run_on_packed_weights(kernel_pool, monkeypatch, m, tb, c_shape, beta, threads) -> None:
    """Constant weights stored as packed panels; A's rows read in place, Y stored row by row; the
    bias, Relu and a residual; blocks of output features over two threads."""
    from omrt.kernels import gemm, packed_gemm

    if not packed_gemm.available():
        pytest.skip("packed micro-kernel not available here")
    kernel_pool(threads)
    monkeypatch.setattr(gemm, "PACKED_MIN_PARALLEL_FLOPS", 0.0)
    rng = np.random.default_rng(3)
    k, n = 300, 70
    a, b = _rand(rng, m, k), _rand(rng, *((n, k) if tb else (k, n)))
    ins = [a, b] + ([_rand(rng, *c_shape)] if c_shape is not None else [])
    attrs = {"transB": tb, "beta": beta}
    res = _rand(rng, m, n)
    want = np.maximum(ort_run("Gemm", ins, attrs)[0] + res, 0)
    ins_all = ins + ([] if c_shape is not None else [None]) + [res]
    fused = dict(attrs, _activation="Relu", _residual=1)
    spec = make_spec("Gemm", [x for x in ins_all if x is not None], [want], fused,
                     {i: v for i, v in enumerate(ins) if i > 0})
    if c_shape is None:   # the residual is input 3, after an absent C
        from omrt.kernels import TensorSpec
        spec.inputs.insert(2, None)
        spec.inputs[3] = TensorSpec(res.shape, res.dtype)
    panels = as_stored(spec)
    assert panels is not None and panels.shape == packed_gemm.panels_shape(1, n, k)
    run_ins = [a, panels] + ins[2:] + ([None] if c_shape is None else []) + [res]
    assert_sums_close(run_in_view(spec, run_ins), want)


def test_packed_weights_unpack_where_the_kernel_does_not_run(monkeypatch) -> None:
    from omrt.kernels import packed_gemm

    rng = np.random.default_rng(4)
    ins = [_rand(rng, 3, 40), _rand(rng, 20, 40), _rand(rng, 20)]
    attrs = {"transB": 1}
    want = ort_run("Gemm", ins, attrs)[0]
    spec = make_spec("Gemm", ins, [want], attrs, {1: ins[1], 2: ins[2]})
    panels = as_stored(spec)
    monkeypatch.setattr(packed_gemm, "available", lambda: False)
    np.testing.assert_allclose(run_in_view(spec, [ins[0], panels, ins[2]]), want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("attrs,c_shape,const,rows", [
    ({"alpha": 0.5}, (20,), True, 3),         # alpha scales the product
    ({"transA": 1}, (20,), True, 3),
    ({}, (3, 20), True, 3),                    # C a whole matrix, not a row
    ({}, (20,), False, 3),                     # C computed at run time
    ({}, (20,), True, 1),                      # one row: BLAS streams the weights as fast
])
def test_other_gemms_keep_plain_weights(attrs, c_shape, const, rows) -> None:
    rng = np.random.default_rng(5)
    a = _rand(rng, *((40, rows) if attrs.get("transA") else (rows, 40)))
    ins = [a, _rand(rng, 40, 20), _rand(rng, *((rows,) + c_shape[1:] if len(c_shape) == 2 else c_shape))]
    consts = {1: ins[1]} | ({2: ins[2]} if const else {})
    want = ort_run("Gemm", ins, attrs)[0]
    spec = make_spec("Gemm", ins, [want], attrs, consts)
    assert as_stored(spec) is None
    np.testing.assert_allclose(run_in_view(spec, ins), want, rtol=RTOL, atol=ATOL)


def test_packed_weights_of_the_wrong_shape_are_refused() -> None:
    from omrt.errors import OmrtError
    from omrt.kernels import TensorSpec, build_kernel

    rng = np.random.default_rng(6)
    ins = [_rand(rng, 3, 40), _rand(rng, 40, 20)]
    spec = make_spec("Gemm", ins, [np.zeros((3, 20), np.float32)], {}, {1: ins[1]})
    panels = as_stored(spec)
    bad = np.ascontiguousarray(panels[:, :, :-1])
    spec.consts[1] = bad
    spec.inputs[1] = TensorSpec(bad.shape, bad.dtype)
    with pytest.raises(OmrtError, match="packed weights"):
        build_kernel(spec)
