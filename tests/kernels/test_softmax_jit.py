"""The compiled softmax of small inputs (omrt.kernels.softmax_jit) against numpy's passes: values,
NaN and inf rows, log-softmax, and which inputs it takes."""
from __future__ import annotations

import numpy as np
import pytest

from omrt.kernels import OpSpec, TensorSpec, build_kernel, jit, softmax_jit, workspace_bytes

pytestmark = pytest.mark.skipif(not jit.enabled(), reason="compiled loops not available here")


def _numpy(x: np.ndarray, axes: tuple[int, ...], log: bool) -> np.ndarray:
    with np.errstate(invalid="ignore", over="ignore"):
        m = x.max(axis=axes, keepdims=True)
        e = np.exp(x - m)
        s = e.sum(axis=axes, keepdims=True)
        return (x - m) - np.log(s) if log else e / s


def _run(op: str, x: np.ndarray, attrs: dict) -> np.ndarray:
    spec = OpSpec(op, attrs, [TensorSpec(x.shape, x.dtype)], [TensorSpec(x.shape, x.dtype)], {})
    y = np.full_like(x, 7.0)
    with np.errstate(invalid="ignore", over="ignore"):
        build_kernel(spec)([x], [y], np.empty(workspace_bytes(spec), np.uint8))
    return y


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("shape,attrs,axes", [
    ((1, 1000, 1, 1), {"_opset": 9}, (1, 2, 3)),          # a classifier's logits, opset < 13
    ((4, 10), {"_opset": 13}, (1,)),
    ((2, 3, 50), {"_opset": 13, "axis": -1}, (2,)),
])
def test_matches_numpy(op: str, shape, attrs, axes) -> None:
    x = (np.random.default_rng(0).standard_normal(shape) * 30).astype(np.float32)
    assert softmax_jit.fits(shape, axes, np.float32)
    np.testing.assert_allclose(_run(op, x, attrs), _numpy(x, axes, op == "LogSoftmax"), rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
def test_nan_and_inf_rows_come_out_as_numpy_leaves_them(op: str) -> None:
    x = np.array([[1.0, np.nan, 2.0], [1.0, np.inf, 2.0], [-np.inf, -np.inf, -np.inf], [-np.inf, 0.0, 1.0]],
                 np.float32)
    got, want = _run(op, x, {"_opset": 13}), _numpy(x, (1,), op == "LogSoftmax")
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got[3], want[3], rtol=1e-6)
    assert np.isnan(got[:3]).all()


def test_read_only_input() -> None:
    x = np.linspace(-3, 3, 12, dtype=np.float32).reshape(3, 4)
    x.flags.writeable = False
    np.testing.assert_allclose(_run("Softmax", x, {"_opset": 13}), _numpy(x, (1,), False), rtol=1e-6)


@pytest.mark.parametrize("shape,axes,dtype,fits", [
    ((1, 1000), (1,), np.float32, True),
    ((8, 1024), (1,), np.float32, True),
    ((9, 1024), (1,), np.float32, False),      # past MAX_ELEMENTS: numpy's vector exp
    ((2, 5, 3), (1,), np.float32, False),      # not trailing: rows are not contiguous
    ((2, 5), (1,), np.float64, False),
])
def test_fits(shape, axes, dtype, fits: bool) -> None:
    assert softmax_jit.fits(shape, axes, dtype) is fits
