"""The packed micro-kernel against float64 matmul: shapes around its panel, column-group and K-chunk
edges, strided operands, panel ranges."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omrt.kernels import packed_gemm

pytestmark = pytest.mark.skipif(not packed_gemm.available(), reason="packed micro-kernel not available here")


def reference(w: np.ndarray, x: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    y = w.astype(np.float64) @ x.astype(np.float64)
    return y if bias is None else y + bias[:, None]


def run(w: np.ndarray, x: np.ndarray, bias: np.ndarray | None, first: int = 0, last: int | None = None) -> np.ndarray:
    """multiply into a view with spare columns on both sides (NaN), which must stay untouched."""
    m, n = w.shape[0], x.shape[1]
    out = np.full((m, n + 5), np.nan, np.float32)
    packed = packed_gemm.pack(w, bias)
    packed_gemm.multiply(packed, x, out[:, 2:2 + n], np.empty(packed_gemm.accumulator_floats(n), np.float32),
                         first, last)
    assert np.isnan(out[:, :2]).all() and np.isnan(out[:, 2 + n:]).all()
    return out[:, 2:2 + n]


@settings(max_examples=60, deadline=None)
@given(m=st.integers(1, 80), k=st.integers(1, 300), n=st.integers(1, 30), bias=st.booleans(),
       seed=st.integers(0, 2**16))
def test_multiply_matches_matmul(m: int, k: int, n: int, bias: bool, seed: int) -> None:
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((m, k), dtype=np.float32)
    x = rng.standard_normal((k, n), dtype=np.float32)
    b = rng.standard_normal(m, dtype=np.float32) if bias else None
    np.testing.assert_allclose(run(w, x, b), reference(w, x, b), rtol=1e-4, atol=1e-4 * np.sqrt(k))


def test_strided_columns_and_long_reduction() -> None:
    """x a column slice of a wider array (row stride != columns), K across several chunks."""
    rng = np.random.default_rng(3)
    k = 3 * packed_gemm.K_CHUNK + 17
    w = rng.standard_normal((70, k), dtype=np.float32)
    wide = rng.standard_normal((k, 40), dtype=np.float32)
    x = wide[:, 5:28]
    np.testing.assert_allclose(run(w, x, None), reference(w, x, None), rtol=1e-4, atol=1e-3)


def test_panel_range_writes_only_its_rows() -> None:
    rng = np.random.default_rng(4)
    rows = packed_gemm.PANEL_ROWS
    m = 3 * rows - 5
    w = rng.standard_normal((m, 40), dtype=np.float32)
    x = rng.standard_normal((40, 9), dtype=np.float32)
    y = run(w, x, None, 1, 3)
    assert np.isnan(y[:rows]).all()
    np.testing.assert_allclose(y[rows:], reference(w, x, None)[rows:], rtol=1e-4, atol=1e-4)


def test_nan_and_inf_propagate() -> None:
    """IEEE arithmetic throughout: a NaN or inf in x reaches exactly the outputs that read it."""
    w = np.ones((4, 3), np.float32)
    x = np.zeros((3, 5), np.float32)
    x[1, 2] = np.nan
    x[0, 4] = np.inf
    y = run(w, x, None)
    assert np.isnan(y[:, 2]).all() and (y[:, 4] == np.inf).all()
    assert (y[:, [0, 1, 3]] == 0).all()


def test_packed_weights_are_read_only() -> None:
    packed = packed_gemm.pack(np.ones((3, 2), np.float32), np.ones(3, np.float32))
    assert not packed.panels.flags.writeable and not packed.bias.flags.writeable
    assert packed.panels.shape == (1, 1, 2, packed_gemm.PANEL_ROWS)
    np.testing.assert_array_equal(packed.bias[:3], 1)
    np.testing.assert_array_equal(packed.bias[3:], 0)


def test_shared_panels_are_one_read_only_copy_per_contents() -> None:
    """Kernels that pack the same weights (the lanes of a plan in lanes) share one copy; other
    weights, or the same ones in another panel height, get their own."""
    rng = np.random.default_rng(11)
    w = rng.standard_normal((40, 27)).astype(np.float32)
    first = packed_gemm.shared_panels(w, 8)
    assert packed_gemm.shared_panels(w.copy(), 8) is first
    np.testing.assert_array_equal(first, packed_gemm.pack_panels(w, 8))
    assert not first.flags.writeable
    other = w.copy()
    other[3, 4] += 1.0
    assert packed_gemm.shared_panels(other, 8) is not first
    assert packed_gemm.shared_panels(w, 16) is not first


def _scattered(rng, k: int, n: int, gap: int = 3) -> tuple[np.ndarray, packed_gemm.Gather, np.ndarray]:
    """X (k, n) stored column-major with `gap` spare floats after each column, and the tables that
    find its elements there."""
    x = rng.standard_normal((k, n), dtype=np.float32)
    store = np.full(n * (k + gap), np.nan, np.float32)
    store.reshape(n, k + gap)[:, :k] = x.T
    tables = packed_gemm.Gather(np.arange(k, dtype=np.int64), np.arange(n, dtype=np.int64) * (k + gap))
    return store, tables, x


@settings(max_examples=40, deadline=None)
@given(m=st.integers(1, 80), k=st.integers(1, 300), n=st.integers(1, 30), seed=st.integers(0, 2**16))
def test_gathered_columns_match_the_matrix(m: int, k: int, n: int, seed: int) -> None:
    """X read through offset tables, wherever its elements lie, gives W @ X as the matrix does."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal(m, dtype=np.float32)
    store, tables, x = _scattered(rng, k, n)
    y = np.empty((m, n), np.float32)
    packed_gemm.multiply(packed_gemm.pack(w, b), store, y, np.empty(packed_gemm.accumulator_floats(n), np.float32),
                         gather=tables)
    np.testing.assert_allclose(y, reference(w, x, b), rtol=1e-4, atol=1e-4 * np.sqrt(k))


def test_gathered_job_on_two_threads(two_threads) -> None:
    """The native job with tables: each thread's block of panels, the residual added and clamped."""
    from omrt.kernels.parallel import get_pool

    rng = np.random.default_rng(7)
    m, k, n = 3 * packed_gemm.PANEL_ROWS + 3, 2 * packed_gemm.K_CHUNK + 5, 20
    w = rng.standard_normal((m, k), dtype=np.float32)
    store, tables, x = _scattered(rng, k, n)
    res = rng.standard_normal((m, n), dtype=np.float32)
    y = np.empty((m, n), np.float32)
    weights = packed_gemm.pack(w)
    job = packed_gemm.job(weights, n, [(0, 2), (2, weights.count)], tables)
    job.set(x=store.ctypes.data, y=y.ctypes.data, ldy=n, res=res.ctypes.data, lo=0.0, hi=5.0,
            variant=packed_gemm.variant(True, True))
    job.run(get_pool())
    np.testing.assert_allclose(y, np.clip(reference(w, x, None) + res, 0, 5), rtol=1e-4, atol=1e-3)


def test_gather_tables_are_read_only_and_say_how_far_they_reach() -> None:
    tables = packed_gemm.Gather(np.array([0, 10, 4], np.int64), np.array([2, 7], np.int64))
    assert tables.reach == 18
    with pytest.raises(ValueError):
        tables.koff[0] = 1
    with pytest.raises(AssertionError):
        packed_gemm.multiply(packed_gemm.pack(np.ones((4, 3), np.float32)), np.zeros(17, np.float32),
                             np.empty((4, 2), np.float32), np.empty(packed_gemm.accumulator_floats(2), np.float32),
                             gather=tables)
