"""Padded images laid out flat, side by side per channel: the geometry flat_im2col and tap_gemm share.

For a 2-D stride-1 conv, tap (i, j) of the output at (r, q) reads the padded input at
(r + i*dh, q + j*dw). With the padded image flattened (row length Wp), that is flat index
f + i*dh*Wp + j*dw for the output position f = r*Wp + q on the padded-width grid: every tap is a
shifted flat slice, so a whole image's tap is one contiguous run per channel. The last Wp - Wo
columns of each grid row are computed and discarded.

A block of images is stored (C, images, span): per channel the padded images one after another,
each followed by the slack the last tap reads past its end. Taps then run along the whole block
in one slice; positions between images mix two images but are never read back. One numpy call
covers a block, so small maps at batch size do not pay numpy's per-call cost once per image.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import as_strided

from omrt.kernels.conv_common import IMAGE_SLOTS, ConvGeom, pad_into
from omrt.kernels.parallel import split


@dataclass(frozen=True)
class FlatImages:
    """Flat geometry of one conv's padded images and where each tap reads in them."""

    c: int
    hp: int
    wp: int
    span: int                    # elements per padded image, with the slack the last tap reads past
    rows_len: int                # output positions per image on the padded-width grid (Ho * Wp)
    halo: int                    # the farthest tap offset
    kernel: tuple[int, int]
    steps: tuple[int, int]       # flat offset between neighbouring taps along each kernel axis
    pb: tuple[int, ...]
    out_sp: tuple[int, ...]

    @classmethod
    def of(cls, g: ConvGeom) -> "FlatImages":
        hp, wp = g.pad_sp
        (kh, kw), (dh, dw) = g.kernel, g.dilations
        halo = (kh - 1) * dh * wp + (kw - 1) * dw
        return cls(g.c, hp, wp, hp * wp + (kw - 1) * dw, g.out_sp[0] * wp, halo, (kh, kw),
                   (dh * wp, dw), tuple(g.pb), tuple(g.out_sp))

    @property
    def plane(self) -> int:
        return self.hp * self.wp

    @property
    def offsets(self) -> list[int]:
        """Flat offset of each tap, row-major over the kernel."""
        (kh, kw), (si, sj) = self.kernel, self.steps
        return [i * si + j * sj for i in range(kh) for j in range(kw)]

    def fill(self, x: np.ndarray, block: np.ndarray) -> None:
        """Pad images x (nb, C, H, W) into block (C, >= nb, span). The slack is zeroed although only
        discarded positions read it: stale scratch would put NaNs and denormals into the GEMM."""
        nb = x.shape[0]
        block[:, :nb, self.plane:] = 0
        view = block[:, :nb, :self.plane].reshape(self.c, nb, self.hp, self.wp).transpose(1, 0, 2, 3)
        pad_into(x, view, self.pb)

    def taps(self, rows: np.ndarray, start: int, length: int) -> np.ndarray:
        """(C, kh, kw, length) read-only view: tap (i, j) of the positions start .. start+length-1
        of rows (C, flat), a view with contiguous rows."""
        s = rows.strides[1]
        (kh, kw), (si, sj) = self.kernel, self.steps
        return as_strided(rows[:, start:], (self.c, kh, kw, length), (rows.strides[0], si * s, sj * s, s),
                          writeable=False)

    def block_len(self, nb: int) -> int:
        """Positions a block of nb images is computed for (the last image's slack excluded)."""
        return nb * self.span - self.halo

    def valid(self, sums: np.ndarray, nb: int) -> np.ndarray:
        """(nb, M, Ho, Wo) view of the outputs in sums (M, >= nb * span), laid out like a block."""
        m = sums.shape[0]
        grid = sums[:, :nb * self.span].reshape(m, nb, self.span)[:, :, :self.rows_len]
        return grid.reshape(m, nb, self.out_sp[0], self.wp)[..., :self.out_sp[1]].transpose(1, 0, 2, 3)


def block_plan(n: int, image_bytes: int, block_bytes: int) -> tuple[int, int, list[tuple[int, int]]]:
    """(images per block, scratch slots, blocks) for a batch of n: blocks of about block_bytes,
    at least two of them so two threads share a batch."""
    per_block = max(1, min(-(-n // 2), block_bytes // max(1, image_bytes)))
    blocks = split(n, -(-n // per_block))
    return per_block, min(len(blocks), IMAGE_SLOTS), blocks
