"""Gemm and MatMul: ONNX node cases, onnxruntime on attribute combinations, fused epilogues, views."""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from omrt.kernels import run_op
from omrt.kernels.epilogue import apply_activation
from tests.kernels.node_cases import cases_for, run_case
from tests.kernels.test_conv import ATOL, RTOL, make_spec, ort_run, run_in_view


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
