"""Small stride-1 convs by im2col from flat padded images (one image in bands, a batch in blocks)."""
from __future__ import annotations

import pytest

from omrt.kernels.conv_common import ConvGeom
from omrt.kernels.flat_im2col import flat_eligible
from omrt.kernels.tap_gemm import tap_gemm_eligible
from tests.kernels.test_tap_gemm import check_path

def _flat_path(g: ConvGeom) -> bool:
    """The conv kernel takes the flat im2col path (tap_gemm is tried first)."""
    return flat_eligible(g) and not tap_gemm_eligible(g)


CASES = [
    # (N, C, M, spatial, kernel, attrs)
    (1, 16, 32, (28, 28), (5, 5), {"pads": [2, 2, 2, 2]}),
    (5, 16, 48, (6, 6), (5, 5), {"pads": [2, 2, 2, 2]}),      # blocks of 3 and 2 images
    (3, 6, 20, (9, 11), (3, 2), {"pads": [0, 1, 2, 0]}),
    (2, 5, 8, (10, 10), (3, 3), {"dilations": [2, 1], "pads": [2, 1, 2, 1]}),
    (4, 3, 64, (7, 7), (3, 3), {"auto_pad": "SAME_UPPER"}),
]


@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("const_weights", [True, False])
@pytest.mark.parametrize("cfg", CASES)
def test_flat_im2col_matches_onnxruntime(cfg, const_weights: bool, residual: bool) -> None:
    check_path(cfg, _flat_path, const_weights, residual)


@pytest.mark.parametrize("cfg", [
    (1, 32, 56, (36, 36), (3, 3), {"pads": [1, 1, 1, 1]}),    # one image in row bands over both threads
    (8, 16, 32, (28, 28), (5, 5), {"pads": [2, 2, 2, 2]}),    # Inception's 5x5 at batch 8
    (9, 16, 48, (14, 14), (5, 5), {"pads": [2, 2, 2, 2]}),    # more one-image blocks than slots
    (16, 32, 48, (10, 10), (3, 3), {"pads": [1, 1, 1, 1]}),   # blocks of 4 images over both threads
])
def test_flat_im2col_on_two_threads(two_threads, cfg) -> None:
    check_path(cfg, _flat_path, const_weights=True, residual=True)
