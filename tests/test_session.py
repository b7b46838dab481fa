"""omrt.InferenceSession: onnxruntime-style use, caller-owned memory, sharing, dynamic batch."""
from __future__ import annotations

import numpy as np
import pytest

from omrt.compiler import compile_onnx
from omrt.compiler.options import CompileOptions
from omrt.constants import ACL_ERROR_GE_DYNAMIC_BATCH_SIZE_INVALID, ACL_ERROR_GE_PARAM_INVALID
from omrt.errors import OmrtError
from omrt.om import read_om, write_om
from omrt.runtime.address import aligned_empty
from omrt.session import InferenceSession
from tests.support.small_models import mlp, run_onnxruntime, small_cnn


@pytest.fixture(scope="module")
def cnn_om() -> bytes:
    return write_om(compile_onnx(small_cnn()))


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return np.random.default_rng(5).standard_normal((1, 3, 16, 16)).astype(np.float32)


def test_run_matches_onnxruntime(cnn_om: bytes, image: np.ndarray) -> None:
    with InferenceSession(cnn_om) as sess:
        (probs,) = sess.run(None, {"x": image})
    (expected,) = run_onnxruntime(small_cnn(), {"x": image})
    np.testing.assert_allclose(probs, expected, rtol=1e-4, atol=1e-6)


def test_describes_inputs_and_outputs(cnn_om: bytes) -> None:
    sess = InferenceSession(cnn_om)
    (inp,) = sess.get_inputs()
    (out,) = sess.get_outputs()
    assert (inp.name, inp.shape, inp.type) == ("x", (1, 3, 16, 16), np.dtype(np.float32))
    assert (out.name, out.shape, out.type) == ("probs", (1, 10), np.dtype(np.float32))


def test_loads_from_path(tmp_path, cnn_om: bytes, image: np.ndarray) -> None:
    path = tmp_path / "cnn.om"
    path.write_bytes(cnn_om)
    a = InferenceSession(str(path)).run(["probs"], {"x": image})[0]
    b = InferenceSession(cnn_om).run(None, {"x": image})[0]
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "feeds, message",
    [
        ({}, "missing input"),
        ({"x": np.zeros((1, 3, 16, 16), np.float32), "y": np.zeros(1)}, "unknown input"),
        ({"x": np.zeros((2, 3, 16, 16), np.float32)}, "shape"),
    ],
)
def test_bad_feeds_are_refused(cnn_om: bytes, feeds, message: str) -> None:
    with pytest.raises(OmrtError, match=message):
        InferenceSession(cnn_om).run(None, feeds)


def test_unknown_output_name_is_refused(cnn_om: bytes, image: np.ndarray) -> None:
    with pytest.raises(OmrtError, match="unknown output"):
        InferenceSession(cnn_om).run(["nope"], {"x": image})


def test_closed_session_refuses_to_run(cnn_om: bytes, image: np.ndarray) -> None:
    with InferenceSession(cnn_om) as sess:
        pass
    with pytest.raises(OmrtError, match="closed"):
        sess.run(None, {"x": image})


def test_caller_owned_memory_too_small_names_sizes(cnn_om: bytes) -> None:
    model = read_om(cnn_om)
    with pytest.raises(OmrtError) as err:
        InferenceSession(cnn_om, work=np.zeros(model.memory_size - 1, np.uint8))
    assert err.value.code == ACL_ERROR_GE_PARAM_INVALID
    assert str(model.memory_size) in err.value.message and str(model.memory_size - 1) in err.value.message


def test_two_sessions_share_one_weight_buffer(cnn_om: bytes, image: np.ndarray) -> None:
    model = read_om(cnn_om)
    weights = aligned_empty(model.weight_size)
    first = InferenceSession(cnn_om, weights=weights)
    snapshot = weights.copy()
    second = InferenceSession(cnn_om, weights=weights)
    np.testing.assert_array_equal(weights, snapshot)
    np.testing.assert_array_equal(first.run(None, {"x": image})[0], second.run(None, {"x": image})[0])
    np.testing.assert_array_equal(weights, snapshot)  # executing never writes weight memory


def test_models_run_in_turn_share_one_work_buffer(cnn_om: bytes, image: np.ndarray) -> None:
    mlp_om = write_om(compile_onnx(mlp()))
    work = aligned_empty(max(read_om(cnn_om).memory_size, read_om(mlp_om).memory_size))
    cnn = InferenceSession(cnn_om, work=work)
    net = InferenceSession(mlp_om, work=work)
    x = np.random.default_rng(2).standard_normal((2, 16)).astype(np.float32)
    for _ in range(3):
        np.testing.assert_allclose(cnn.run(None, {"x": image})[0], run_onnxruntime(small_cnn(), {"x": image})[0], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(net.run(None, {"x": x})[0], run_onnxruntime(mlp(), {"x": x})[0], rtol=1e-4, atol=1e-5)


def test_dynamic_batch_picks_the_gear(image: np.ndarray) -> None:
    options = CompileOptions(input_shape={"x": [-1, 3, 16, 16]}, dynamic_batch_size=[1, 2, 4])
    sess = InferenceSession(write_om(compile_onnx(small_cnn(batch="N"), options)))
    assert sess.get_inputs()[0].shape == (-1, 3, 16, 16)
    batch = np.random.default_rng(9).standard_normal((4, 3, 16, 16)).astype(np.float32)
    for n in (1, 2, 4):
        (got,) = sess.run(None, {"x": batch[:n]})
        (expected,) = run_onnxruntime(small_cnn(batch="N"), {"x": batch[:n]})
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
    with pytest.raises(OmrtError) as err:
        sess.run(None, {"x": batch[:3]})
    assert err.value.code == ACL_ERROR_GE_DYNAMIC_BATCH_SIZE_INVALID


def test_unordered_gears_default_to_the_largest() -> None:
    options = CompileOptions(input_shape={"x": [-1, 3, 16, 16]}, dynamic_batch_size=[4, 1, 2])
    model = read_om(write_om(compile_onnx(small_cnn(batch="N"), options)))
    assert model.graph_for_batch(None).batch == 4
    assert model.graph_for_batch(2).batch == 2
