"""Conv geometry the compiled loops rely on: which convs are read in place (ConvGeom.same_3x3) and
the row-edge masks they read with."""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from omrt.kernels import OpSpec, TensorSpec
from omrt.kernels.conv_common import conv_geom, edge_masks


def geom(hw: tuple[int, int], kernel: tuple[int, int], attrs: dict[str, Any], out_hw: tuple[int, int]):
    x = TensorSpec((1, 8) + hw, np.dtype(np.float32))
    w = TensorSpec((8, 1) + kernel, np.dtype(np.float32))
    y = TensorSpec((1, 8) + out_hw, np.dtype(np.float32))
    return conv_geom(OpSpec("Conv", {"kernel_shape": list(kernel), "group": 8, **attrs}, [x, w], [y], {}))


@pytest.mark.parametrize("kernel,attrs,out_hw,expect", [
    ((3, 3), {"pads": [1, 1, 1, 1]}, (14, 12), True),
    ((3, 3), {"auto_pad": "SAME_UPPER"}, (14, 12), True),
    ((3, 3), {"pads": [1, 1, 1, 1], "strides": [2, 2]}, (7, 6), False),
    ((3, 3), {}, (12, 10), False),
    ((3, 3), {"pads": [1, 0, 1, 2]}, (14, 12), False),
    ((3, 3), {"pads": [2, 2, 2, 2], "dilations": [2, 2]}, (14, 12), False),
    ((5, 5), {"pads": [2, 2, 2, 2]}, (14, 12), False),
])
def test_same_3x3(kernel, attrs, out_hw, expect: bool) -> None:
    assert geom((14, 12), kernel, attrs, out_hw).same_3x3 is expect


def test_edge_masks() -> None:
    left, right = edge_masks(geom((2, 3), (3, 3), {"pads": [1, 1, 1, 1]}, (2, 3)))
    np.testing.assert_array_equal(left, [0, 1, 1, 0, 1, 1])
    np.testing.assert_array_equal(right, [1, 1, 0, 1, 1, 0])
