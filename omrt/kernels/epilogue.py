"""Fused epilogues: the activation (and residual add) a producer applies to its own output.

The compiler folds an activation that follows Conv/ConvTranspose/Gemm/MatMul into the producer's
attrs (`_activation`, `_activation_params`, `_residual`), so each tensor is written once and read
once. Everything here works in place on the output view. Relu, Clip, LeakyRelu, Sigmoid, Tanh and
HardSigmoid allocate nothing; the others stream through a small per-thread chunk buffer.
"""
from __future__ import annotations

import math
import threading
from typing import Any, Callable, Sequence

import numpy as np

from omrt.kernels import fused_epilogue, jit
from omrt.kernels.base import check

ACTIVATIONS = (
    "Relu", "Clip", "Sigmoid", "LeakyRelu", "HardSwish", "HardSigmoid",
    "Tanh", "Elu", "Selu", "Softplus", "Gelu",
)
_CHUNK = 1 << 14
_local = threading.local()


def relu(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """max(x, 0) into out. numpy's clip has a SIMD path for scalar bounds; maximum with a scalar
    operand takes a strided loop about 4x slower (numpy 2.x), so floats go through clip."""
    if out.dtype.kind == "f":
        return np.clip(x, 0, np.inf, out=out)
    return np.maximum(x, 0, out=out)


def negative_part(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """min(x, 0) into out (clip for floats, see relu)."""
    if out.dtype.kind == "f":
        return np.clip(x, -np.inf, 0, out=out)
    return np.minimum(x, 0, out=out)


def _tmp(dtype: np.dtype) -> np.ndarray:
    """A per-thread chunk buffer: models running in parallel threads never share it."""
    bufs = getattr(_local, "bufs", None)
    if bufs is None:
        bufs = _local.bufs = {}
    buf = bufs.get(np.dtype(dtype))
    if buf is None:
        buf = bufs[np.dtype(dtype)] = np.empty(_CHUNK, dtype=dtype)
    return buf


def _chunked(arr: np.ndarray, fn: Callable[[np.ndarray, np.ndarray], None]) -> None:
    """Apply fn(chunk, tmp) over a flat view of arr in cache-sized pieces."""
    if arr.flags.c_contiguous:
        flat = arr.reshape(-1)
        tmp = _tmp(arr.dtype)
        for start in range(0, flat.size, _CHUNK):
            chunk = flat[start:start + _CHUNK]
            fn(chunk, tmp[:chunk.size])
    else:
        fn(arr, np.empty_like(arr))


def _erf(x: np.ndarray, t: np.ndarray) -> None:
    """erf in place (Abramowitz-Stegun 7.1.26, |error| < 1.5e-7): numpy has no erf."""
    sign = np.sign(x)
    np.abs(x, out=x)
    np.multiply(x, 0.3275911, out=t)
    t += 1.0
    np.reciprocal(t, out=t)
    np.square(x, out=x)
    np.negative(x, out=x)
    np.exp(x, out=x)
    poly = 1.061405429 * t - 1.453152027
    poly *= t
    poly += 1.421413741
    poly *= t
    poly -= 0.284496736
    poly *= t
    poly += 0.254829592
    poly *= t
    x *= poly
    np.subtract(1.0, x, out=x)
    x *= sign


def _gelu(c: np.ndarray, t: np.ndarray) -> None:
    half = c * 0.5
    np.multiply(c, 1.0 / math.sqrt(2.0), out=c)
    _erf(c, t)
    c += 1.0
    c *= half


def _elu(alpha: float, gamma: float = 1.0) -> Callable[[np.ndarray, np.ndarray], None]:
    def fn(c: np.ndarray, t: np.ndarray) -> None:
        negative_part(c, t)
        np.expm1(t, out=t)
        t *= alpha
        relu(c, c)
        c += t
        if gamma != 1.0:
            c *= gamma
    return fn


def _leaky(alpha: float) -> Callable[[np.ndarray, np.ndarray], None]:
    def fn(c: np.ndarray, t: np.ndarray) -> None:
        negative_part(c, t)
        t *= alpha
        relu(c, c)
        c += t
    return fn


def _hardswish(c: np.ndarray, t: np.ndarray) -> None:
    np.multiply(c, 1.0 / 6.0, out=t)
    t += 0.5
    np.clip(t, 0.0, 1.0, out=t)
    c *= t


def _softplus(c: np.ndarray, t: np.ndarray) -> None:
    np.abs(c, out=t)
    np.negative(t, out=t)
    np.exp(t, out=t)
    np.log1p(t, out=t)
    relu(c, c)
    c += t


def apply_activation(arr: np.ndarray, name: str | None, params: Sequence[float] | None = None) -> None:
    """Apply the named ONNX activation to arr in place (ONNX default parameters when absent)."""
    if not name:
        return
    p = list(params or [])
    if name == "Relu":
        relu(arr, arr)
    elif name == "Clip":
        lo = p[0] if len(p) > 0 else -np.inf
        hi = p[1] if len(p) > 1 else np.inf
        np.clip(arr, lo, hi, out=arr)
    elif name == "LeakyRelu":
        alpha = p[0] if p else 0.01
        if 0.0 <= alpha <= 1.0:
            # max(x, a*x) == LeakyRelu for 0 <= a <= 1, without a temporary buffer
            _chunked(arr, lambda c, t: np.maximum(c, np.multiply(c, alpha, out=t), out=c))
        else:
            _chunked(arr, _leaky(alpha))
    elif name == "Sigmoid":
        np.negative(arr, out=arr)
        np.exp(arr, out=arr)
        arr += 1.0
        np.reciprocal(arr, out=arr)
    elif name == "Tanh":
        np.tanh(arr, out=arr)
    elif name == "HardSigmoid":
        alpha = p[0] if len(p) > 0 else 0.2
        beta = p[1] if len(p) > 1 else 0.5
        arr *= alpha
        arr += beta
        np.clip(arr, 0.0, 1.0, out=arr)
    elif name == "HardSwish":
        _chunked(arr, _hardswish)
    elif name == "Elu":
        _chunked(arr, _elu(p[0] if p else 1.0))
    elif name == "Selu":
        alpha = p[0] if len(p) > 0 else 1.67326319217681884765625
        gamma = p[1] if len(p) > 1 else 1.05070102214813232421875
        _chunked(arr, _elu(alpha, gamma))
    elif name == "Softplus":
        _chunked(arr, _softplus)
    elif name == "Gelu":
        _chunked(arr, _gelu)
    else:
        check(False, f"unsupported fused activation {name}")


class Epilogue:
    """What a producer does after its main product: bias, residual add, activation, in that order."""

    def __init__(self, attrs: dict[str, Any]):
        self.activation: str | None = attrs.get("_activation") or None
        params = attrs.get("_activation_params")
        self.params: list[float] = [float(v) for v in params] if params is not None else []
        self.residual = bool(attrs.get("_residual", 0))
        check(self.activation is None or self.activation in ACTIVATIONS,
              f"unsupported fused activation {self.activation}")
        code = fused_epilogue.activation_code(self.activation, self.params)
        # With an activation the compiled pass lacks, it adds bias and residual; numpy does the rest.
        self._numpy_after = code is None
        self._pass = (code or fused_epilogue.NO_PASS) if jit.enabled() else None
        if self._pass is not None:
            fused_epilogue.warm_up()

    def __call__(self, out: np.ndarray, residual: np.ndarray | None) -> None:
        if self.fused(out, None, residual):
            return
        if residual is not None:
            np.add(out, residual, out=out)
        apply_activation(out, self.activation, self.params)

    @property
    def one_pass(self) -> tuple[int, np.float32, np.float32] | None:
        """The compiled pass's (code, lo, hi) when it applies the whole epilogue's activation
        (omrt.kernels.fused_epilogue), for kernels with a compiled pass of their own."""
        return None if self._pass is None or self._numpy_after else self._pass

    @property
    def clamp(self) -> tuple[float, float] | None:
        """(lo, hi) where the activation is none, Relu or Clip, so y = min(max(y, lo), hi) is all of
        it and a kernel can apply it as it stores its output; None for other activations."""
        if self.activation is None:
            return -np.inf, np.inf
        if self.activation == "Relu":
            return 0.0, np.inf
        if self.activation == "Clip":
            lo = self.params[0] if len(self.params) > 0 else -np.inf
            hi = self.params[1] if len(self.params) > 1 else np.inf
            return lo, hi
        return None

    def fused(self, y: np.ndarray, bias: np.ndarray | None, residual: np.ndarray | None) -> bool:
        """Bias, residual and activation on y in one compiled pass (omrt.kernels.fused_epilogue);
        False, with y untouched, where that pass does not apply."""
        if self._pass is None or not fused_epilogue.run(y, bias, residual, self._pass):
            return False
        if self._numpy_after:
            apply_activation(y, self.activation, self.params)
        return True


def float16_via_float32(factory: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Wrap a kernel factory so float16 ops compute in float32 and store float16.

    The float32 kernel sees float32 specs; per call it allocates float32 copies of the float16
    inputs and outputs (float16 models are rare on a CPU runtime, so this is not planned memory).
    Float16 inputs listed in `consts` are widened once at build time.
    """
    from omrt.kernels.base import OpSpec, TensorSpec

    def widen(t: TensorSpec | None) -> TensorSpec | None:
        if t is None or np.dtype(t.dtype) != np.float16:
            return t
        return TensorSpec(tuple(t.shape), np.dtype(np.float32))

    def build(spec: OpSpec):
        if not any(t is not None and np.dtype(t.dtype) == np.float16 for t in spec.inputs + spec.outputs):
            return factory(spec)
        consts = {i: (v.astype(np.float32) if v.dtype == np.float16 else v) for i, v in spec.consts.items()}
        inner = factory(OpSpec(spec.op_type, dict(spec.attrs), [widen(t) for t in spec.inputs],
                               [widen(t) for t in spec.outputs], consts, spec.name))

        def kernel(inputs, outputs, scratch):
            ins = [x.astype(np.float32) if x is not None and x.dtype == np.float16 else x for x in inputs]
            outs = [np.empty(o.shape, np.float32) if o.dtype == np.float16 else o for o in outputs]
            inner(ins, outs, scratch)
            for o, w in zip(outputs, outs):
                if o is not w:
                    np.copyto(o, w, casting="unsafe")

        return kernel

    return build
