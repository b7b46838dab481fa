"""Fused activations: in place, matching the ONNX definitions, and allocation-free where promised."""
from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest

from omrt.errors import OmrtError
from omrt.kernels.epilogue import ACTIVATIONS, apply_activation

X = np.linspace(-6, 6, 40001, dtype=np.float64)


def reference(name: str, x: np.ndarray, p: list[float]) -> np.ndarray:
    if name == "Relu":
        return np.maximum(x, 0)
    if name == "Clip":
        return np.clip(x, p[0], p[1])
    if name == "LeakyRelu":
        return np.where(x < 0, x * p[0], x)
    if name == "Sigmoid":
        return 1 / (1 + np.exp(-x))
    if name == "HardSwish":
        return x * np.clip(x / 6 + 0.5, 0, 1)
    if name == "HardSigmoid":
        return np.clip(x * p[0] + p[1], 0, 1)
    if name == "Tanh":
        return np.tanh(x)
    if name == "Elu":
        return np.where(x < 0, p[0] * np.expm1(x), x)
    if name == "Selu":
        return p[1] * np.where(x < 0, p[0] * np.expm1(x), x)
    if name == "Softplus":
        return np.log1p(np.exp(x))
    if name == "Gelu":
        return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))
    raise AssertionError(name)


PARAMS = {"Clip": [-1.0, 2.0], "LeakyRelu": [0.1], "HardSigmoid": [0.2, 0.5], "Elu": [0.5], "Selu": [1.67, 1.05]}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_matches_definition(name: str, dtype) -> None:
    p = PARAMS.get(name, [])
    arr = X.astype(dtype)
    apply_activation(arr, name, p)
    np.testing.assert_allclose(arr, reference(name, X, p), rtol=1e-5, atol=1e-6)


def test_leaky_relu_with_alpha_above_one_and_strided_view() -> None:
    buf = np.linspace(-3, 3, 200, dtype=np.float32).reshape(20, 10)
    view = buf[:, ::2]
    want = np.where(view < 0, view * 2.5, view)
    apply_activation(view, "LeakyRelu", [2.5])
    np.testing.assert_allclose(view, want, rtol=1e-6)
    assert (buf[:, 1::2] == np.linspace(-3, 3, 200, dtype=np.float32).reshape(20, 10)[:, 1::2]).all()


@pytest.mark.parametrize("name,params", [("Relu", []), ("Clip", [0.0, 6.0]), ("LeakyRelu", [0.01])])
def test_cheap_activations_allocate_nothing(name: str, params: list[float]) -> None:
    arr = np.random.default_rng(0).standard_normal(1 << 20).astype(np.float32)
    apply_activation(arr, name, params)  # warm the per-thread buffer
    tracemalloc.start()
    apply_activation(arr, name, params)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 4096


def test_unknown_activation_is_rejected() -> None:
    with pytest.raises(OmrtError):
        apply_activation(np.zeros(3), "Swish", [])


def test_relu_keeps_nan_and_integers() -> None:
    from omrt.kernels.epilogue import negative_part, relu

    x = np.array([np.nan, -1.0, 2.0, np.inf, -np.inf], np.float32)
    out = np.empty_like(x)
    relu(x, out)
    np.testing.assert_array_equal(out, np.maximum(x, 0))
    negative_part(x, out)
    np.testing.assert_array_equal(out, np.minimum(x, 0))
    i = np.array([-3, 0, 5], np.int32)
    relu(i, i)
    np.testing.assert_array_equal(i, [0, 0, 5])
