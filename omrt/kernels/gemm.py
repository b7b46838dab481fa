"""Gemm and MatMul: one BLAS call writing into the output view, then the fused epilogue in place."""
from __future__ import annotations

import numpy as np

from omrt.kernels.base import OpSpec, check, register
from omrt.kernels.epilogue import Epilogue, float16_via_float32


def _operand(x: np.ndarray, trans: bool) -> np.ndarray:
    return x.T if trans else x


@register("Gemm")
@float16_via_float32
def gemm(spec: OpSpec):
    """Y = alpha * A' B' + beta * C, C broadcast to (M, N); beta * C is precomputed when C is constant."""
    alpha = float(spec.attr("alpha", 1.0))
    beta = float(spec.attr("beta", 1.0))
    ta, tb = bool(spec.attr("transA", 0)), bool(spec.attr("transB", 0))
    epi = Epilogue(spec.attrs)
    dtype = np.dtype(spec.outputs[0].dtype)
    n_plain = len(spec.inputs) - (1 if epi.residual else 0)
    has_c = n_plain > 2 and spec.inputs[2] is not None and beta != 0.0
    c_const = spec.consts.get(2)
    c_scaled = (c_const * beta).astype(dtype) if has_c and c_const is not None else None
    b_const = spec.consts.get(1)
    b_op = _operand(b_const, tb) if b_const is not None else None

    def run(inputs, outputs, scratch):
        y = outputs[0]
        b = b_op if b_op is not None else _operand(inputs[1], tb)
        np.matmul(_operand(inputs[0], ta), b, out=y)
        if alpha != 1.0:
            y *= alpha
        if has_c:
            if c_scaled is not None:
                np.add(y, c_scaled, out=y)
            elif beta == 1.0:
                np.add(y, inputs[2], out=y)
            else:
                np.add(y, inputs[2] * beta, out=y)  # small temporary: C is at most (M, N)
        epi(y, inputs[-1] if epi.residual else None)
    return run


@register("MatMul")
@float16_via_float32
def matmul(spec: OpSpec):
    """numpy matmul semantics (batched, broadcast, 1-D operands) plus the `_bias` epilogue.

    A batched A times a 2-D B is run as one (batch*M, K) x (K, N) GEMM when A is contiguous.
    """
    epi = Epilogue(spec.attrs)
    has_bias = bool(spec.attr("_bias", 0))
    a_spec, b_spec = spec.inputs[0], spec.inputs[1]
    check(a_spec is not None and b_spec is not None, f"MatMul {spec.name}: missing operand")
    b_const = spec.consts.get(1)
    bias_const = spec.consts.get(2) if has_bias else None
    flat = len(a_spec.shape) > 2 and len(b_spec.shape) == 2
    k = a_spec.shape[-1]

    def run(inputs, outputs, scratch):
        a, y = inputs[0], outputs[0]
        b = b_const if b_const is not None else inputs[1]
        if flat and a.flags.c_contiguous and y.flags.c_contiguous:
            np.matmul(a.reshape(-1, k), b, out=y.reshape(-1, y.shape[-1]))
        else:
            np.matmul(a, b, out=y)
        if has_bias:
            np.add(y, bias_const if bias_const is not None else inputs[2], out=y)
        epi(y, inputs[-1] if epi.residual else None)
    return run
