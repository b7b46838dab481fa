"""Putting a model's weights into weight memory, once, even when several loads share the memory."""
from __future__ import annotations

import threading

import numpy as np

from omrt.om.model import OfflineModel

_lock = threading.Lock()


def place_weights(model: OfflineModel, target: np.ndarray) -> bool:
    """Copy the weights into `target` (a uint8 view) unless they are already there; True when a
    copy was made. Comparing bytes, rather than trusting a recorded digest, stays right when the
    client wrote to the memory in between by any route."""
    if model.weight_size == 0:
        return False
    blob = np.frombuffer(model.weights, dtype=np.uint8)
    with _lock:
        target = target[: blob.nbytes]
        if np.array_equal(target, blob):
            return False
        target[...] = blob
        return True
