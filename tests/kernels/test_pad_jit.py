"""Constant padding of planes in one IR pass (omrt.kernels.pad_jit) against numpy.pad, and the
padded copies that go through it (conv_common.pad_into, stride-1 pad_phases)."""
from __future__ import annotations

import numpy as np
import pytest

from omrt.kernels import pad_jit
from omrt.kernels.conv_common import pad_into, pad_phases

pytestmark = pytest.mark.skipif(pad_jit._kernel() is None, reason="no compiled IR kernels on this host")


def _reference(x: np.ndarray, out_hw: tuple[int, int], top: int, left: int, fill: float) -> np.ndarray:
    h, w = x.shape[-2:]
    bottom, right = out_hw[0] - h - top, out_hw[1] - w - left
    widths = [(0, 0)] * (x.ndim - 2) + [(top, bottom), (left, right)]
    return np.pad(x, widths, constant_values=fill)


# DenseNet's 14x14 and 56x56, rows over several vectors, a row narrower than its pad, uneven pads,
# one-pixel planes, a border on one side only
@pytest.mark.parametrize("shape,out_hw,top,left", [
    ((3, 14, 14), (16, 16), 1, 1), ((2, 56, 56), (58, 58), 1, 1), ((1, 5, 3), (9, 40), 2, 30),
    ((2, 7, 9), (10, 12), 0, 3), ((4, 1, 1), (3, 3), 1, 1), ((2, 6, 17), (6, 19), 0, 0), ((2, 3, 4, 5), (7, 8), 2, 1),
])
@pytest.mark.parametrize("fill", [0.0, -np.inf])
def test_matches_numpy_pad(shape, out_hw, top: int, left: int, fill: float) -> None:
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    x.flat[0] = np.nan
    y = np.full(shape[:-2] + out_hw, 7.0, np.float32)
    assert pad_jit.fits(x, y)
    pad_jit.pad_planes(x, y, top, left, fill)
    np.testing.assert_array_equal(y, _reference(x, out_hw, top, left, fill))


def test_pad_into_takes_it_and_keeps_numpy_for_the_rest() -> None:
    """Float32 planes go through the kernel; a strided view and float64 through numpy, the same."""
    rng = np.random.default_rng(1)
    whole = rng.standard_normal((4, 10, 12)).astype(np.float32)
    for x in (whole, whole[:, :, 2:9], whole.astype(np.float64)):
        buf = np.full(x.shape[:-2] + (13, 14), 5.0, x.dtype)
        pad_into(x, buf, (1, 2), fill=-1.0)
        np.testing.assert_array_equal(buf, _reference(x, (13, 14), 1, 2, -1.0))


def test_stride_one_phases_are_the_padded_image() -> None:
    x = np.random.default_rng(2).standard_normal((5, 14, 14)).astype(np.float32)
    phases = np.full((1, 1, 5, 17, 16), 3.0, np.float32)
    pad_phases(x, phases, (1, 1), (1, 1))
    np.testing.assert_array_equal(phases[0, 0], _reference(x, (17, 16), 1, 1, 0.0))


def test_avx2_width_build_matches_numpy(avx2_width) -> None:
    x = np.random.default_rng(3).standard_normal((3, 9, 21)).astype(np.float32)
    y = np.empty((3, 12, 25), np.float32)
    pad_jit.pad_planes(x, y, 2, 3)
    np.testing.assert_array_equal(y, _reference(x, (12, 25), 2, 3, 0.0))


@pytest.mark.parametrize("shape,pads", [((3, 224, 224), (3, 3)), ((5, 13, 20), (1, 0)), ((2, 9, 40), (2, 5)),
                                        ((1, 1, 3), (1, 1))])
def test_stride_two_phases_match_numpy(shape, pads) -> None:
    """Each of the four phases of a 2x2 stride: every other padded row and column, from (i, j)."""
    x = np.random.default_rng(4).standard_normal(shape).astype(np.float32)
    (pt, pl), (h, w) = pads, shape[1:]
    padded = np.pad(x, [(0, 0), (pt, pt + 2), (pl, pl + 2)])
    hq, wq = -(-(h + 2 * pt) // 2), -(-(w + 2 * pl) // 2)
    phases = np.full((2, 2, shape[0], hq, wq), 9.0, np.float32)
    pad_phases(x, phases, pads, (2, 2))
    for i in range(2):
        for j in range(2):
            np.testing.assert_array_equal(phases[i, j], padded[:, i::2, j::2][:, :hq, :wq])


@pytest.mark.parametrize("strides,channels,hw,pads", [((2, 2), 13, (21, 30), (1, 2)), ((1, 1), 7, (9, 17), (1, 1)),
                                                      ((2, 2), 3, (8, 8), (3, 3))])
def test_phase_pad_job_pads_blocks_of_channels_into_the_phases(two_threads, strides, channels, hw, pads) -> None:
    """Both threads pad their channels into every phase, as pad_phases does on one."""
    from omrt.kernels.parallel import get_pool, split

    rng = np.random.default_rng(12)
    x = rng.standard_normal((channels,) + hw).astype(np.float32)
    (sh, sw), (pt, pl) = strides, pads
    shape = (sh, sw, channels, -(-(hw[0] + 2 * pt) // sh), -(-(hw[1] + 2 * pl) // sw))
    want = np.full(shape, 7.0, np.float32)
    pad_phases(x, want, (pt, pl, pt, pl), strides)
    got = np.full(shape, 7.0, np.float32)
    job = pad_jit.phase_pad_job(x, got, (pt, pl), strides, split(channels, 2))
    job.run(get_pool())
    np.testing.assert_array_equal(got, want)
    other = rng.standard_normal(x.shape).astype(np.float32)
    pad_phases(other, want, (pt, pl, pt, pl), strides)
    job.set(x=other.ctypes.data)
    job.run(get_pool())
    np.testing.assert_array_equal(got, want)


def test_phase_pad_job_leaves_other_strides_to_numpy() -> None:
    x = np.zeros((2, 9, 9), np.float32)
    assert pad_jit.phase_pad_job(x, np.zeros((3, 3, 2, 3, 3), np.float32), (0, 0), (3, 3), [(0, 2)]) is None


def test_split_pad_binds_one_job_to_each_run_s_arrays(two_threads) -> None:
    """The job is made once and padded into whichever arrays the run gives; strides the compiled
    pad does not take get None (the caller pads another way)."""
    from omrt.kernels.parallel import get_pool, split

    rng = np.random.default_rng(9)
    split_pad = pad_jit.SplitPad((1, 1), (2, 2), split(4, 2))
    jobs = []
    for _ in range(2):
        x = rng.standard_normal((4, 9, 9)).astype(np.float32)
        got = np.full((2, 2, 4, 6, 6), np.nan, np.float32)
        want = np.zeros_like(got)
        pad_phases(x, want, (1, 1), (2, 2))
        jobs.append(split_pad.job(x, got))
        jobs[-1].run(get_pool())
        np.testing.assert_array_equal(got, want)
    assert jobs[0] is jobs[1]
    other = pad_jit.SplitPad((0, 0), (3, 3), [(0, 2)])
    assert other.job(np.zeros((2, 9, 9), np.float32), np.zeros((3, 3, 2, 3, 3), np.float32)) is None
