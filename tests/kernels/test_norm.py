"""BatchNormalization and LRN: ONNX node cases, constant-folded statistics, views."""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.kernels.node_cases import cases_for, run_case
from tests.kernels.test_conv import ATOL, RTOL, make_spec, ort_run, run_in_view

# Every test builds its kernels both with the compiled one-pass loop and with numpy only.
pytestmark = pytest.mark.usefixtures("kernel_paths")


@pytest.mark.parametrize("name,case", list(cases_for("BatchNormalization", "LRN")))
def test_node_cases(name: str, case: Any) -> None:
    run_case(case)


@pytest.mark.parametrize("const", [False, True])
@pytest.mark.parametrize("shape", [(2, 4, 5, 6), (3, 4), (1, 4, 7)])
def test_batchnorm_inference(shape, const: bool) -> None:
    rng = np.random.default_rng(0)
    c = shape[1]
    ins = [rng.standard_normal(shape).astype(np.float32)] + [rng.standard_normal(c).astype(np.float32)
                                                             for _ in range(3)]
    ins.append(rng.random(c).astype(np.float32) + 0.5)
    attrs = {"epsilon": 1e-3}
    want = ort_run("BatchNormalization", ins, attrs)[0]
    consts = {i: ins[i] for i in range(1, 5)} if const else {}
    got = run_in_view(make_spec("BatchNormalization", ins, [want], attrs, consts), ins)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("beta", [0.6, 0.75, 0.5])
@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_lrn(size: int, beta: float) -> None:
    x = np.random.default_rng(1).standard_normal((2, 7, 4, 3)).astype(np.float32) * 10
    attrs = {"size": size, "alpha": 0.01, "beta": beta, "bias": 1.5}
    if size % 2:
        want = ort_run("LRN", [x], attrs)[0]
    else:  # onnxruntime only takes odd sizes (and onnx.reference loops over the batch axis): the spec
        lo, hi = (size - 1) // 2, -(-(size - 1) // 2)
        sq = np.stack([(x[:, max(0, c - lo):c + hi + 1] ** 2).sum(axis=1) for c in range(x.shape[1])], axis=1)
        want = x / (1.5 + 0.01 / size * sq) ** beta
    got = run_in_view(make_spec("LRN", [x], [want], attrs), [x])
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("const", [False, True])
@pytest.mark.parametrize("shape", [(1, 37, 9, 8), (3, 5, 6, 7), (2, 6, 11)])
def test_batchnorm_split_over_threads(two_threads, monkeypatch, shape, const: bool) -> None:
    """Large BNs run as whole images (batch >= threads) or channel blocks of each image; the fused
    Relu applies on every piece."""
    from omrt.kernels import norm

    monkeypatch.setattr(norm, "NORM_PARALLEL_BYTES", 0)
    assert len(norm._norm_tasks(shape, 4, 2)) == (2 if shape[0] >= 2 else 2 * shape[0])
    rng = np.random.default_rng(7)
    c = shape[1]
    ins = [rng.standard_normal(shape).astype(np.float32)] + [rng.standard_normal(c).astype(np.float32)
                                                             for _ in range(3)]
    ins.append(rng.random(c).astype(np.float32) + 0.5)
    want = np.maximum(ort_run("BatchNormalization", ins, {})[0], 0)
    consts = {i: ins[i] for i in range(1, 5)} if const else {}
    got = run_in_view(make_spec("BatchNormalization", ins, [want], {"_activation": "Relu"}, consts), ins)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("unit_scale", [False, True])
@pytest.mark.parametrize("shape", [(2, 6, 7, 7), (1, 6, 3)])
def test_batchnorm_with_shift_in_its_consumers(shape, unit_scale: bool) -> None:
    """A BN + Relu whose shift b went into the following convs' biases computes
    relu(a*x + b) - b = max(a*x, -b); with its scale gone too, max(x, -b)."""
    rng = np.random.default_rng(11)
    c = shape[1]
    x = rng.standard_normal(shape).astype(np.float32)
    x.flat[0] = np.nan
    var = rng.random(c).astype(np.float32) + 0.5
    scale = np.sqrt(var + 1e-5).astype(np.float32) if unit_scale else rng.standard_normal(c).astype(np.float32)
    shift, mean = rng.standard_normal(c).astype(np.float32), rng.standard_normal(c).astype(np.float32)
    ins = [x, scale, shift, mean, var]
    a = scale.astype(np.float64) / np.sqrt(var.astype(np.float64) + 1e-5)
    b = shift - mean * a
    bshape = (c,) + (1,) * (len(shape) - 2)
    want = np.maximum(x * a.astype(np.float32).reshape(bshape), (-b).astype(np.float32).reshape(bshape))
    if unit_scale:
        want = np.maximum(x, (-(shift - mean)).astype(np.float32).reshape(bshape))
    attrs = {"_activation": "Relu", "_bias_to_consumers": 1}
    got = run_in_view(make_spec("BatchNormalization", ins, [want], attrs, {i: ins[i] for i in range(1, 5)}), ins)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
    assert np.isnan(got.flat[0])
