"""Flat padded-image blocks: where taps read, where outputs land, how a batch is cut into blocks."""
from __future__ import annotations

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from omrt.kernels.conv_common import IMAGE_SLOTS, conv_geom
from omrt.kernels.flat_images import FlatImages, block_plan
from tests.kernels.test_conv import make_spec


def _layout(n: int, c: int, h: int, w: int, k: tuple[int, int], dil: tuple[int, int], pads: list[int]):
    x = np.random.default_rng(n * 100 + h).standard_normal((n, c, h, w)).astype(np.float32)
    attrs = {"kernel_shape": list(k), "dilations": list(dil), "pads": pads}
    ho = h + pads[0] + pads[2] - dil[0] * (k[0] - 1)
    wo = w + pads[1] + pads[3] - dil[1] * (k[1] - 1)
    assume(ho > 0 and wo > 0)
    spec = make_spec("Conv", [x, np.zeros((2, c) + k, np.float32)], [np.zeros((n, 2, ho, wo), np.float32)], attrs)
    return x, FlatImages.of(conv_geom(spec))


shapes = st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(3, 7), st.integers(3, 7),
                   st.sampled_from([(3, 3), (2, 3), (3, 1)]), st.sampled_from([(1, 1), (2, 1)]),
                   st.lists(st.integers(0, 2), min_size=4, max_size=4))


@settings(max_examples=40, deadline=None)
@given(shapes)
def test_taps_read_the_padded_window(shape) -> None:
    """Tap (i, j) at output (r, q) of every image in a block is padded[r + i*dh, q + j*dw]."""
    n, c, h, w, k, dil, pads = shape
    x, lay = _layout(n, c, h, w, k, dil, pads)
    block = np.full((c, n, lay.span), np.nan, np.float32)
    lay.fill(x, block)
    taps = lay.taps(block.reshape(c, -1), 0, lay.block_len(n))
    padded = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    ho, wo = lay.out_sp
    for img in range(n):
        for i in range(k[0]):
            for j in range(k[1]):
                got = taps[:, i, j, img * lay.span:img * lay.span + lay.rows_len].reshape(c, ho, lay.wp)[:, :, :wo]
                want = padded[img, :, i * dil[0]:i * dil[0] + ho, j * dil[1]:j * dil[1] + wo]
                np.testing.assert_array_equal(got, want)


@settings(max_examples=40, deadline=None)
@given(shapes)
def test_valid_picks_each_images_outputs(shape) -> None:
    """Sums laid out like the block (position f of image b at b*span + f) come back as (N, M, Ho, Wo)."""
    n, c, h, w, k, dil, pads = shape
    x, lay = _layout(n, c, h, w, k, dil, pads)
    ho, wo = lay.out_sp
    want = np.random.default_rng(7).standard_normal((n, 3, ho, wo)).astype(np.float32)
    sums = np.full((3, n, lay.span), np.nan, np.float32)
    grid = sums[:, :, :lay.rows_len].reshape(3, n, ho, lay.wp)
    grid[..., :wo] = want.transpose(1, 0, 2, 3)
    np.testing.assert_array_equal(lay.valid(sums.reshape(3, -1), n), want)


@given(st.integers(1, 40), st.integers(1, 5_000_000), st.integers(1, 4_000_000))
def test_block_plan_covers_the_batch(n: int, image_bytes: int, block_bytes: int) -> None:
    per_block, slots, blocks = block_plan(n, image_bytes, block_bytes)
    assert blocks[0][0] == 0 and blocks[-1][1] == n
    assert all(b0[1] == b1[0] for b0, b1 in zip(blocks, blocks[1:]))
    assert all(0 < b - a <= per_block for a, b in blocks)
    assert n == 1 or len(blocks) >= 2           # two threads always share a batch
    assert 1 <= slots <= min(len(blocks), IMAGE_SLOTS)
