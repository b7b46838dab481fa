"""Which depthwise convs read their taps in place (omrt.kernels.depthwise_jit.same_3x3)."""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from omrt.kernels import OpSpec, TensorSpec
from omrt.kernels.conv_common import conv_geom
from omrt.kernels.depthwise_jit import same_3x3


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
    assert same_3x3(geom((14, 12), kernel, attrs, out_hw)) is expect
