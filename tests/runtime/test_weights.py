"""Weights are copied into weight memory once; memory that already holds them is left alone."""
from __future__ import annotations

import numpy as np

from omrt.om.model import OfflineModel
from omrt.runtime.weights import place_weights


def _model(weights: bytes) -> OfflineModel:
    return OfflineModel("m", [], [], [], weights)


def test_copies_once_and_notices_changed_bytes() -> None:
    model = _model(bytes(range(200)))
    target = np.zeros(256, np.uint8)
    assert place_weights(model, target) is True
    assert bytes(target[:200]) == model.weights
    assert not target[200:].any()
    assert place_weights(model, target) is False
    target[7] ^= 1
    assert place_weights(model, target) is True
    assert bytes(target[:200]) == model.weights


def test_model_without_weights_touches_nothing() -> None:
    target = np.full(8, 5, np.uint8)
    assert place_weights(_model(b""), target) is False
    assert (target == 5).all()
