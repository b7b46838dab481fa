"""The kernel registry: ops whose every output is empty build to a kernel that writes nothing."""
from __future__ import annotations

import numpy as np
import pytest

from omrt.kernels import OpSpec, TensorSpec, run_op

F32 = np.dtype(np.float32)


@pytest.mark.parametrize("op,attrs,in_shapes,out_shape", [
    ("Conv", {"kernel_shape": [3, 3], "strides": [2, 2]}, [(2, 3, 2, 5), (4, 3, 3, 3)], (2, 4, 0, 2)),
    ("Conv", {"kernel_shape": [3, 3]}, [(0, 3, 5, 5), (4, 3, 3, 3)], (0, 4, 3, 3)),
    ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2]}, [(2, 3, 2, 5)], (2, 3, 0, 2)),
    ("AveragePool", {"kernel_shape": [3, 3], "strides": [2, 2]}, [(2, 3, 2, 5)], (2, 3, 0, 2)),
    ("LRN", {"size": 3}, [(0, 3, 5, 5)], (0, 3, 5, 5)),
])
def test_ops_with_empty_outputs_run(op: str, attrs, in_shapes, out_shape) -> None:
    """A window past the input or an empty batch gives an empty result, not an exception."""
    spec = OpSpec(op, attrs, [TensorSpec(s, F32) for s in in_shapes], [TensorSpec(out_shape, F32)])
    assert run_op(spec, [np.ones(s, np.float32) for s in in_shapes])[0].shape == out_shape
