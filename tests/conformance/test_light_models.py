"""The nine light models from the onnx package: reference outputs, and random weights vs onnxruntime."""
from __future__ import annotations

import numpy as np
import pytest

from omrt.compiler import compile_onnx
from omrt.om import write_om
from omrt.session import InferenceSession
from tests.support.light_models import (
    LIGHT_MODELS,
    load,
    model_path,
    random_input,
    randomized,
    reference_input,
    reference_output,
)

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name", LIGHT_MODELS)
def test_matches_reference_output(name: str) -> None:
    session = InferenceSession(write_om(compile_onnx(str(model_path(name)))))
    (got,) = session.run(None, reference_input(load(name)))
    expected = reference_output(name)
    np.testing.assert_allclose(got, expected.reshape(got.shape), rtol=1e-3, atol=1e-7)


@pytest.mark.parametrize("name", LIGHT_MODELS)
def test_random_weights_match_onnxruntime(name: str) -> None:
    import onnxruntime as ort

    model = randomized(name, seed=7)
    session = InferenceSession(write_om(compile_onnx(model)))
    feeds = random_input(model, seed=3)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    oracle = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    got = session.run(None, feeds)
    expected = oracle.run(None, feeds)
    assert len(got) == len(expected)
    logits = got[-1]
    assert np.std(logits) > 0, "random weights must give non-degenerate logits"
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("name", LIGHT_MODELS)
def test_random_weights_at_batch_2_in_lanes_match_onnxruntime(name: str) -> None:
    """Two images, one per lane: each lane's slice of the output is its own image's."""
    import onnxruntime as ort

    model = randomized(name, seed=5, batch=2)
    compiled = compile_onnx(model)
    assert compiled.graphs[0].lanes == 2
    feeds = random_input(model, seed=4)
    got = InferenceSession(write_om(compiled)).run(None, feeds)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    expected = ort.InferenceSession(model.SerializeToString(), options,
                                    providers=["CPUExecutionProvider"]).run(None, feeds)
    for g, e in zip(got, expected):
        assert g.shape[0] == 2
        np.testing.assert_allclose(g, e, rtol=1e-3, atol=1e-4)
