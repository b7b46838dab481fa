"""3x3 windows reduced from unpadded planes: the per-axis runs, and the result against brute force."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from omrt.kernels.window3 import Run, Window3, axis_runs


def test_axis_runs_cut_windows_at_the_edges() -> None:
    assert axis_runs(5, 3, 2, 1) == [Run(0, 1, "pair", 0), Run(1, 2, "full", 1), Run(2, 3, "pair", 3)]
    assert axis_runs(6, 6, 1, 1) == [Run(0, 1, "pair", 0), Run(1, 5, "full", 0), Run(5, 6, "pair", 4)]
    assert axis_runs(4, 3, 2, 1)[-1] == Run(2, 3, "one", 3)


def test_axis_runs_refuse_an_empty_window() -> None:
    assert axis_runs(2, 3, 2, 0) is None


def _brute(x: np.ndarray, out_sp, strides, pads, op) -> np.ndarray:
    rows, h, w = x.shape
    y = np.empty((rows,) + tuple(out_sp), x.dtype)
    for i in range(out_sp[0]):
        r0 = i * strides[0] - pads[0]
        rs = slice(max(r0, 0), min(r0 + 3, h))
        for j in range(out_sp[1]):
            c0 = j * strides[1] - pads[1]
            cs = slice(max(c0, 0), min(c0 + 3, w))
            y[:, i, j] = op.reduce(x[:, rs, cs].reshape(rows, -1), axis=1)
    return y


@settings(max_examples=60, deadline=None)
@given(h=st.integers(2, 9), w=st.integers(2, 9), sh=st.sampled_from([1, 2]), sw=st.sampled_from([1, 2]),
       ph=st.integers(0, 2), pw=st.integers(0, 2), extra=st.integers(0, 1),
       use_max=st.booleans())
def test_window3_matches_brute_force(h, w, sh, sw, ph, pw, extra, use_max) -> None:
    out_sp = ((h + 2 * ph - 3) // sh + 1 + extra, (w + 2 * pw - 3) // sw + 1)
    if min(out_sp) < 1 or any(r is None for r in (axis_runs(h, out_sp[0], sh, ph), axis_runs(w, out_sp[1], sw, pw))):
        return
    op = np.maximum if use_max else np.add
    x = np.random.default_rng(h * 10 + w).standard_normal((3, h, w)).astype(np.float32)
    plan = Window3.plan((h, w), out_sp, (3, 3), (sh, sw), (1, 1), (ph, pw))
    size = 3 * plan.buffer_elems()
    y = np.empty((3,) + out_sp, np.float32)
    plan.run(x, y, (np.empty(size, np.float32), np.empty(size, np.float32)), op)
    np.testing.assert_allclose(y, _brute(x, out_sp, (sh, sw), (ph, pw), op), rtol=1e-6, atol=1e-6)
