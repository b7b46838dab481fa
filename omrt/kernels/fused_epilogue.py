"""Bias, residual add and a clamp-type activation in one compiled pass over a producer's output;
also BatchNormalization's per-channel scale and shift with its activation.

numpy needs a pass per step (add the bias, add the residual, clip), each reading and writing the
whole output and paying per-row costs when rows are short. One compiled pass: on one Zen 5 thread,
256x3136 with bias, residual and Relu 0.22 -> 0.055 ms; 2048x49 0.030 -> 0.008 ms.

The loop works in place on the output and reads its own index only, so it vectorizes: a separate
source array that overlaps the output makes LLVM's runtime alias check fall back to scalar code
(0.28 ms for the first shape). It runs on C-contiguous float32 output and residual, with the bias
constant along one run of the output's axes; anything else returns False and the caller runs numpy.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from omrt.kernels import jit

# Activations the pass applies itself; others run afterwards on the numpy path.
NO_ACT, RELU, CLIP, LEAKY = 0, 1, 2, 3
_ZERO = np.float32(0)
NO_PASS = (NO_ACT, _ZERO, _ZERO)  # bias and residual only
_NO_RES = np.zeros((1, 1, 1), dtype=np.float32)
_NO_BIAS = np.zeros(1, dtype=np.float32)
# Read-only like a model's constant biases (numba compiles read-only arrays separately).
_NO_BIAS.flags.writeable = False


@jit.inlined
def _activate(v, act, lo, hi):
    """Relu (act 1, lo 0), Clip (2) or LeakyRelu with 0 <= alpha <= 1 (3, lo alpha) of v;
    max/min keep NaN as numpy's clip does."""
    if act == 1:
        return max(v, lo)
    if act == 2:
        return min(max(v, lo), hi)
    if act == 3:
        return max(v, v * lo)
    return v


@jit.compiled
def _bias_res_act(out, bias, res, has_res, act, lo, hi):
    """out[o, r, i] = act((out[o, r, i] + bias[r]) + res[o, r, i]) in numpy's order of adds."""
    outer, rows, cols = out.shape
    for o in range(outer):
        for r in range(rows):
            b = bias[r]
            for i in range(cols):
                v = out[o, r, i] + b
                if has_res:
                    v = v + res[o, r, i]
                out[o, r, i] = _activate(v, act, lo, hi)


@jit.compiled
def _channel_affine(x, y, scale, shift, has_scale, floor, act, lo, hi):
    """y[o, r, i] = act(x * scale[r] + shift[r]), or act(max(x * scale[r], shift[r])) with
    `floor` (a BatchNormalization whose shift moved into its consumers), in numpy's order."""
    outer, rows, cols = y.shape
    for o in range(outer):
        for r in range(rows):
            a = scale[r]
            b = shift[r]
            for i in range(cols):
                v = x[o, r, i]
                if has_scale:
                    v = v * a
                if floor:
                    v = max(v, b)
                else:
                    v = v + b
                y[o, r, i] = _activate(v, act, lo, hi)


def channel_affine(x: np.ndarray, y: np.ndarray, scale: np.ndarray | None, shift: np.ndarray, floor: bool,
                   act: tuple[int, np.float32, np.float32]) -> bool:
    """y = act(x * scale + shift) (or the floor form) per channel (axis 1) in one pass; False, with
    y untouched, where the layout does not fit (see run)."""
    if (y.dtype != np.float32 or x.dtype != y.dtype or x.shape != y.shape or y.ndim < 2
            or not (x.flags.c_contiguous and y.flags.c_contiguous) or y.size == 0):
        return False
    dims = (y.shape[0], y.shape[1], y.size // (y.shape[0] * y.shape[1]))
    b = np.ascontiguousarray(shift, dtype=y.dtype).reshape(dims[1])
    a = b if scale is None else np.ascontiguousarray(scale, dtype=y.dtype).reshape(dims[1])
    code, lo, hi = act
    _channel_affine(x.reshape(dims), y.reshape(dims), a, b, scale is not None, floor, code, lo, hi)
    return True


def bias_rows(shape: tuple[int, ...], bias_shape: tuple[int, ...]) -> tuple[int, int, int] | None:
    """(outer, rows, cols) with the bias one value per row, or None where it does not broadcast so.

    The bias's non-unit axes must be one run of the output's axes, equal in size: (C, 1, 1) over
    (N, C, H, W) gives (N, C, H*W).
    """
    nd = len(shape)
    if len(bias_shape) > nd:
        return None
    full = (1,) * (nd - len(bias_shape)) + tuple(bias_shape)
    axes = [i for i, d in enumerate(full) if d != 1]
    if not axes:
        return 1, 1, math.prod(shape)
    j, k = axes[0], axes[-1] + 1
    if any(full[i] != shape[i] for i in range(j, k)):
        return None
    return math.prod(shape[:j]), math.prod(shape[j:k]), math.prod(shape[k:])


# Kernels call with the same few shapes every run.
_bias_rows = functools.lru_cache(maxsize=256)(bias_rows)


def activation_code(name: str | None, params: list[float]) -> tuple[int, np.float32, np.float32] | None:
    """(code, lo, hi) for the activations the pass applies, None for the others; lo and hi are
    float32 already, as the compiled loops take them.

    LeakyRelu goes in as max(x, a*x), exact only for 0 <= a <= 1 (lo carries a).
    """
    if not name:
        return NO_PASS
    if name == "Relu":
        return RELU, _ZERO, _ZERO
    if name == "Clip":
        lo = params[0] if len(params) > 0 else -np.inf
        hi = params[1] if len(params) > 1 else np.inf
        return CLIP, np.float32(lo), np.float32(hi)
    if name == "LeakyRelu":
        alpha = params[0] if params else 0.01
        return (LEAKY, np.float32(alpha), _ZERO) if 0.0 <= alpha <= 1.0 else None
    return None


def run(y: np.ndarray, bias: np.ndarray | None, res: np.ndarray | None,
        act: tuple[int, np.float32, np.float32]) -> bool:
    """y = act(y + bias + res) in one pass; False (y untouched) where the layout does not fit."""
    if bias is None and res is None and act[0] == NO_ACT:
        return True
    if y.dtype != np.float32 or not y.flags.c_contiguous or y.size == 0:
        return False
    if res is not None and (res.shape != y.shape or res.dtype != y.dtype or not res.flags.c_contiguous):
        return False
    if bias is not None:
        if bias.dtype != y.dtype:
            return False
        dims = _bias_rows(y.shape, bias.shape)
        if dims is None:
            return False
        b = bias.reshape(dims[1]) if bias.flags.c_contiguous else np.ascontiguousarray(bias).reshape(dims[1])
    else:
        dims = (1, 1, y.size)
        b = _NO_BIAS
    r = _NO_RES if res is None else res.reshape(dims)
    code, lo, hi = act
    _bias_res_act(y.reshape(dims), b, r, res is not None, code, lo, hi)
    return True


def warm_up() -> None:
    """Both passes compiled (or loaded from the cache) at kernel build time (omrt.kernels.jit),
    for constant (read-only) and computed biases."""
    tiny, zero = jit.tiny, _ZERO
    for const in (False, True):
        jit.warm_up(f"_bias_res_act {const}", lambda: _bias_res_act(
            tiny(1, 1, 1), tiny(1, writeable=not const), tiny(1, 1, 1), False, NO_ACT, zero, zero))
    jit.warm_up("_channel_affine", lambda: _channel_affine(tiny(1, 1, 1), tiny(1, 1, 1), tiny(1), tiny(1), False,
                                                           False, NO_ACT, zero, zero))
