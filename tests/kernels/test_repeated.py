"""Repeated filters: exact detection, and Convs that compute each distinct filter once."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omrt.kernels import prepack, workspace_bytes
from omrt.kernels.epilogue import apply_activation
from omrt.kernels.repeated import conv_repeats, find_repeats
from tests.kernels.test_conv import make_spec, ort_run, run_in_view


def test_distinct_rows_have_no_repeats() -> None:
    rows = np.random.default_rng(0).standard_normal((64, 27)).astype(np.float32)
    assert find_repeats(rows) is None


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=2, max_size=40), st.integers(1, 50))
def test_repeats_map_every_row_to_an_equal_row(pattern: list[int], k: int) -> None:
    palette = np.random.default_rng(k).standard_normal((5, k)).astype(np.float32)
    rows = palette[pattern]
    reps = find_repeats(rows)
    if len(set(pattern)) == len(pattern):
        assert reps is None
        return
    assert reps is not None and reps.count == len(set(pattern))
    np.testing.assert_array_equal(rows[reps.first][reps.index], rows)
    assert len({rows[i].tobytes() for i in reps.first}) == reps.count


def test_rows_equal_in_sampled_elements_and_sum_still_differ() -> None:
    """Two rows with the same key (same sampled elements, same sum) but swapped interior values."""
    a = np.arange(100, dtype=np.float32)
    b = a.copy()
    b[[1, 2]] = b[[2, 1]]
    reps = find_repeats(np.stack([a, b, a]))
    assert reps is not None and reps.count == 2 and list(reps.index) == [0, 1, 0]


def test_repeats_compare_bits_not_values() -> None:
    rows = np.array([[0.0, 1.0], [-0.0, 1.0], [np.nan, 1.0], [np.nan, 1.0]], np.float32)
    reps = find_repeats(rows)
    assert reps is not None and list(reps.index) == [0, 1, 2, 2]


@pytest.mark.parametrize("act", [None, "Relu"])
@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("kernel,attrs", [((1, 1), {}), ((3, 3), {"pads": [1, 1, 1, 1]}),
                                          ((3, 3), {"strides": [2, 2]})])
def test_conv_with_repeated_filters(kernel, attrs, act, residual: bool) -> None:
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 16, 20, 20)).astype(np.float32)
    filters = rng.standard_normal((3, 16) + kernel).astype(np.float32)
    w = filters[[0, 1, 0, 2, 2, 0, 1, 0] * 4]
    b = np.zeros(32, np.float32)
    attrs = {"kernel_shape": list(kernel), **attrs}
    plain = ort_run("Conv", [x, w, b], attrs)[0]
    res = rng.standard_normal(plain.shape).astype(np.float32)
    want = plain + res if residual else plain.copy()
    apply_activation(want, act, [])
    fused = dict(attrs, _activation=act, _activation_params=[], _residual=int(residual))
    ins = [x, w, b] + ([res] if residual else [])
    spec = make_spec("Conv", ins, [want], fused, {1: w, 2: b})
    assert conv_repeats(spec) is not None and workspace_bytes(spec) > 0
    got = run_in_view(spec, ins)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    if not residual:
        np.testing.assert_array_equal(got[:, 0], got[:, 2])


def test_identical_filters_give_identical_channels_and_skip_winograd() -> None:
    """Placeholder weights (one value everywhere): every channel is bit-identical whatever BLAS does."""
    x = np.random.default_rng(1).standard_normal((1, 512, 13, 13)).astype(np.float32) * 1e4
    w = np.full((1000, 512, 3, 3), 0.01, np.float32)
    spec = make_spec("Conv", [x, w], [np.empty((1, 1000, 13, 13), np.float32)],
                     {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}, {1: w})
    assert prepack(spec) is None
    got = run_in_view(spec, [x, w])
    assert (got == got[:, :1]).all()
