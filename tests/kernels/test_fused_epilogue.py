"""The one-pass bias + residual + activation against numpy's passes, and where it steps aside."""
from __future__ import annotations

import numpy as np
import pytest

from omrt.kernels import fused_epilogue, jit
from omrt.kernels.epilogue import Epilogue, apply_activation

pytestmark = pytest.mark.skipif(not jit.enabled(), reason="numba is not available")


@pytest.mark.parametrize("shape,bias_shape,want", [
    ((2, 8, 5, 5), (8, 1, 1), (2, 8, 25)),
    ((2, 8, 5, 5), (1, 8, 1, 1), (2, 8, 25)),
    ((4, 6, 10), (2, 3, 1), None),           # bias axes do not match the output's
    ((3, 16, 49), (16, 1), (3, 16, 49)),
    ((16, 49), (16, 1), (1, 16, 49)),
    ((2, 4, 8, 3), (4, 8, 1), (2, 32, 3)),   # a run of two axes
    ((5, 7), (7,), (5, 7, 1)),               # Gemm: one bias per column
    ((5, 7), (1,), (1, 1, 35)),
    ((5, 7), (), (1, 1, 35)),
    ((2, 3), (2, 1, 3), None),               # more axes than the output
    ((4, 6, 10), (4, 1, 10), None),          # not one run of axes
])
def test_bias_rows(shape, bias_shape, want) -> None:
    assert fused_epilogue.bias_rows(shape, bias_shape) == want


ACTS = [(None, []), ("Relu", []), ("Clip", [-0.5, 0.7]), ("Clip", []), ("LeakyRelu", [0.1]),
        ("LeakyRelu", [1.5]), ("Sigmoid", []), ("Gelu", [])]


@pytest.mark.parametrize("act,params", ACTS)
@pytest.mark.parametrize("bias_shape", [None, (16, 1, 1), (1,)])
@pytest.mark.parametrize("residual", [False, True])
def test_fused_matches_numpy_passes(act, params, bias_shape, residual: bool) -> None:
    rng = np.random.default_rng(9)
    y = rng.standard_normal((2, 16, 7, 7), dtype=np.float32)
    y[0, 0, 0, :3] = [np.nan, np.inf, -np.inf]
    bias = None if bias_shape is None else rng.standard_normal(bias_shape, dtype=np.float32)
    res = rng.standard_normal(y.shape, dtype=np.float32) if residual else None
    want = y.copy()
    if bias is not None:
        want += bias
    if res is not None:
        want += res
    epi = Epilogue({"_activation": act, "_activation_params": params})
    with np.errstate(invalid="ignore"):  # Gelu of inf, on either path
        apply_activation(want, act, params)
        assert epi.fused(y, bias, res)
    np.testing.assert_allclose(y, want, rtol=1e-6, atol=1e-6)
    assert np.isnan(y[0, 0, 0, 0]) == np.isnan(want[0, 0, 0, 0])


@pytest.mark.parametrize("case", ["strided", "float64", "residual_strided", "bias_mismatch"])
def test_layouts_it_does_not_take_are_left_untouched(case: str) -> None:
    rng = np.random.default_rng(2)
    base = rng.standard_normal((4, 8, 12), dtype=np.float32)
    y, bias, res = base[:, :, :10], None, None
    if case == "float64":
        y = base.astype(np.float64)
    elif case == "residual_strided":
        y = np.ascontiguousarray(base[:, :, :10])
        res = base[:, :, 2:]
    elif case == "bias_mismatch":
        y = np.ascontiguousarray(base)
        bias = rng.standard_normal((4, 1, 12), dtype=np.float32)
    before = y.copy()
    assert not Epilogue({"_activation": "Relu"}).fused(y, bias, res)
    np.testing.assert_array_equal(y, before)


def test_numpy_path_when_disabled(monkeypatch) -> None:
    monkeypatch.setenv("OMRT_JIT", "0")
    y = np.full((3, 4), -1.0, dtype=np.float32)
    epi = Epilogue({"_activation": "Relu"})
    assert not epi.fused(y, None, None)
    epi(y, None)
    assert (y == 0).all()
