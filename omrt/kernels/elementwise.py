"""Elementwise kernels: activations, arithmetic, comparisons, logic, Where, Cast.

Every kernel writes with `out=` and stays correct when `outputs[0]` is the memory of `inputs[0]`
or `inputs[1]` (the planner reuses buffers in place): each one reads what it needs from an input
before it writes the output, or keeps the intermediate in planned scratch. Simple ops are bound
closures around one ufunc so a call costs about as much as the ufunc itself.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

from omrt.kernels.base import Kernel, OpSpec, check, register
from omrt.kernels.broadcast import cache_miss, carve, layout_bytes
from omrt.kernels.epilogue import negative_part, relu

_F16 = np.dtype(np.float16)
_F32 = np.dtype(np.float32)


def _plain(ufunc: np.ufunc) -> Callable[[OpSpec], Kernel]:
    def factory(spec: OpSpec) -> Kernel:
        return lambda ins, outs, s: ufunc(ins[0], out=outs[0])

    return factory


def _binary(ufunc: np.ufunc) -> Callable[[OpSpec], Kernel]:
    def factory(spec: OpSpec) -> Kernel:
        return lambda ins, outs, s: ufunc(ins[0], ins[1], out=outs[0])

    return factory


for _op, _uf in {
    "Tanh": np.tanh, "Sqrt": np.sqrt, "Exp": np.exp, "Log": np.log, "Abs": np.absolute,
    "Neg": np.negative, "Reciprocal": np.reciprocal, "Floor": np.floor, "Ceil": np.ceil,
    "Round": np.rint, "Sign": np.sign, "Not": np.logical_not,
}.items():
    register(_op)(_plain(_uf))

for _op, _uf in {
    "Add": np.add, "Sub": np.subtract, "Mul": np.multiply,
    "Equal": np.equal, "Less": np.less, "Greater": np.greater, "LessOrEqual": np.less_equal,
    "GreaterOrEqual": np.greater_equal, "And": np.logical_and, "Or": np.logical_or,
    "Xor": np.logical_xor,
}.items():
    register(_op)(_binary(_uf))


@register("Relu")
def _relu(spec: OpSpec) -> Kernel:
    return lambda ins, outs, s: relu(ins[0], outs[0])


@register("Div")
def _div(spec: OpSpec) -> Kernel:
    if spec.outputs[0].dtype.kind in "iu":
        return _int_div
    return lambda ins, outs, s: np.divide(ins[0], ins[1], out=outs[0])


def _int_div(ins: Sequence[np.ndarray], outs: Sequence[np.ndarray], s: object) -> None:
    """ONNX integer Div truncates toward zero; numpy floors. One temporary the size of the output."""
    a, b = ins[0], ins[1]
    r = np.fmod(a, b)
    np.subtract(a, r, out=r)
    np.floor_divide(r, b, out=outs[0])


@register("Pow")
def _pow(spec: OpSpec) -> Kernel:
    # The result has the base's type whatever the exponent's type is.
    return lambda ins, outs, s: np.power(ins[0], ins[1], out=outs[0], casting="unsafe")


@register("HardSigmoid")
def _hard_sigmoid(spec: OpSpec) -> Kernel:
    alpha, beta = float(spec.attr("alpha", 0.2)), float(spec.attr("beta", 0.5))

    def k(ins, outs, s):
        o = outs[0]
        np.multiply(ins[0], alpha, out=o)
        np.add(o, beta, out=o)
        np.clip(o, 0, 1, out=o)

    return k


@register("Softplus")
def _softplus(spec: OpSpec) -> Kernel:
    return lambda ins, outs, s: np.logaddexp(ins[0], 0, out=outs[0])


@register("Clip")
def _clip(spec: OpSpec) -> Kernel:
    dt = spec.outputs[0].dtype
    if dt.kind == "f":
        lo_default, hi_default = -np.inf, np.inf
    else:
        info = np.iinfo(dt)
        lo_default, hi_default = info.min, info.max
    if "min" in spec.attrs or "max" in spec.attrs:
        lo, hi = spec.attr("min", lo_default), spec.attr("max", hi_default)
        return lambda ins, outs, s: np.clip(ins[0], lo, hi, out=outs[0])

    def bound(ins, i: int, default):
        if len(ins) > i and ins[i] is not None:
            return ins[i].reshape(()).item() if ins[i].size == 1 else default
        return default

    n = len(spec.inputs)
    if all(i in spec.consts or i >= n or spec.inputs[i] is None for i in (1, 2)):
        consts = [spec.consts.get(1), spec.consts.get(2)]
        lo = bound(consts, 0, lo_default)
        hi = bound(consts, 1, hi_default)
        return lambda ins, outs, s: np.clip(ins[0], lo, hi, out=outs[0])

    def k(ins, outs, s):
        np.clip(ins[0], bound(ins, 1, lo_default), bound(ins, 2, hi_default), out=outs[0])

    return k


def _variadic(ufunc: np.ufunc, mean: bool = False) -> Callable[[OpSpec], Kernel]:
    def factory(spec: OpSpec) -> Kernel:
        n = len(spec.inputs)
        if n == 1 and not mean:
            return lambda ins, outs, s: np.copyto(outs[0], ins[0])

        def k(ins, outs, s):
            o = outs[0]
            order = list(ins)
            if n > 2:
                # An input that shares the output's memory must be consumed first.
                for i in range(2, n):
                    if np.may_share_memory(o, order[i]):
                        order[0], order[i] = order[i], order[0]
                        break
            if n == 1:
                np.copyto(o, order[0])
            else:
                ufunc(order[0], order[1], out=o)
                for x in order[2:]:
                    ufunc(o, x, out=o)
            if mean:
                np.divide(o, n, out=o, casting="unsafe")

        return k

    return factory


register("Max")(_variadic(np.maximum))
register("Min")(_variadic(np.minimum))
register("Sum")(_variadic(np.add))
register("Mean")(_variadic(np.add, mean=True))


@register("Where")
def _where(spec: OpSpec) -> Kernel:
    """copyto(y) then copyto(x, where=c); when the output is x's memory, a negated-mask temporary."""
    def k(ins, outs, s):
        c, x, y = ins
        o = outs[0]
        if np.may_share_memory(o, x):
            np.copyto(o, y, where=np.logical_not(c))
        else:
            np.copyto(o, y)
            np.copyto(o, x, where=c)

    return k


@register("Cast", "CastLike")
def _cast(spec: OpSpec) -> Kernel:
    check(spec.outputs[0].dtype.kind in "biuf", f"Cast to {spec.outputs[0].dtype} is not supported")
    return lambda ins, outs, s: np.copyto(outs[0], ins[0], casting="unsafe")


@register("Identity")
def _identity(spec: OpSpec) -> Kernel:
    return lambda ins, outs, s: np.copyto(outs[0], ins[0])


@register("Dropout")
def _dropout(spec: OpSpec) -> Kernel:
    """Inference: the output is the input and the mask is all True."""
    training = spec.consts.get(2)
    ratio = spec.consts.get(1)
    check(
        training is None or not bool(training) or ratio is None or float(ratio) == 0.0,
        f"Dropout in training mode is not supported ({spec.name})",
    )

    def k(ins, outs, s):
        np.copyto(outs[0], ins[0])
        if len(outs) > 1 and outs[1] is not None:
            outs[1].fill(True)

    return k


# Composite activations: f(ins, o, *tmps) writes into o; tmps are float arrays shaped like o.
# They read ins[0] fully before writing o, so o may be ins[0]'s memory. float16 runs in float32.

_SQRT1_2 = 1.0 / math.sqrt(2.0)
_SQRT_2_PI = math.sqrt(2.0 / math.pi)


def erf_into(x: np.ndarray, out: np.ndarray) -> None:
    """erf with ~1e-7 relative error: Taylor series below 0.5, Numerical Recipes' erfc above.

    numpy has no erf; this keeps float64 temporaries the size of x per call.
    """
    a = np.abs(x, dtype=np.float64)
    z = a * a
    series = a * (1.0 + z * (-1 / 3 + z * (1 / 10 + z * (-1 / 42 + z * (1 / 216 + z * (-1 / 1320 + z / 9360))))))
    series *= 2.0 / math.sqrt(math.pi)
    t = 1.0 / (1.0 + 0.5 * a)
    poly = -z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (
        0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))))
    tail = 1.0 - t * np.exp(poly)
    res = np.where(a < 0.5, series, tail)
    np.copysign(res, x, out=res)
    np.copyto(out, res, casting="unsafe")


def _f_erf(ins, o):
    erf_into(ins[0], o)


def _f_sigmoid(ins, o):
    # 0.5 * tanh(x / 2) + 0.5: no overflow for large |x|, and no temporary.
    np.multiply(ins[0], 0.5, out=o)
    np.tanh(o, out=o)
    np.multiply(o, 0.5, out=o)
    np.add(o, 0.5, out=o)


def _f_leaky(alpha: float):
    pick = np.maximum if alpha <= 1 else np.minimum

    def f(ins, o, t):
        np.multiply(ins[0], alpha, out=t)
        pick(ins[0], t, out=o)

    return f


def _f_prelu(ins, o, t):
    negative_part(ins[0], t)
    np.multiply(t, ins[1], out=t)
    relu(ins[0], o)
    np.add(o, t, out=o)


def _f_elu(alpha: float, gamma: float = 1.0):
    def f(ins, o, t):
        negative_part(ins[0], t)
        np.expm1(t, out=t)
        np.multiply(t, alpha, out=t)
        relu(ins[0], o)
        np.add(o, t, out=o)
        if gamma != 1.0:
            np.multiply(o, gamma, out=o)

    return f


def _f_hardswish(ins, o, t):
    np.multiply(ins[0], 1.0 / 6.0, out=t)
    np.add(t, 0.5, out=t)
    np.clip(t, 0, 1, out=t)
    np.multiply(ins[0], t, out=o)


def _f_softsign(ins, o, t):
    np.absolute(ins[0], out=t)
    np.add(t, 1, out=t)
    np.divide(ins[0], t, out=o)


def _f_gelu(approximate: str):
    def f(ins, o, t):
        x = ins[0]
        if approximate == "tanh":
            np.multiply(x, x, out=t)
            np.multiply(t, x, out=t)
            np.multiply(t, 0.044715, out=t)
            np.add(t, x, out=t)
            np.multiply(t, _SQRT_2_PI, out=t)
            np.tanh(t, out=t)
        else:
            np.multiply(x, _SQRT1_2, out=t)
            erf_into(t, t)
        np.add(t, 1, out=t)
        np.multiply(t, 0.5, out=t)
        np.multiply(x, t, out=o)

    return f


def _composite(f: Callable, ntmp: int) -> tuple[Callable[[OpSpec], Kernel], Callable[[OpSpec], int]]:
    def layout(spec: OpSpec):
        out = spec.outputs[0]
        if out.dtype == _F16:
            return [(out.shape, _F32)] * (1 + ntmp)
        return [(out.shape, out.dtype)] * ntmp

    def workspace(spec: OpSpec) -> int:
        return layout_bytes(layout(spec))

    def factory(spec: OpSpec) -> Kernel:
        lay = layout(spec)
        f16 = spec.outputs[0].dtype == _F16
        cache: list = [cache_miss, None]

        def views(s):
            if cache[0] is not s:
                cache[0], cache[1] = s, carve(s, lay) if lay else []
            return cache[1]

        if not f16:
            if ntmp == 0:
                return lambda ins, outs, s: f(ins, outs[0])

            def k(ins, outs, s):
                f(ins, outs[0], *views(s))

            return k

        def k16(ins, outs, s):
            w, *tmps = views(s)
            np.copyto(w, ins[0])
            f([w, *ins[1:]], w, *tmps)
            np.copyto(outs[0], w, casting="same_kind")

        return k16

    return factory, workspace


def _register_composite(op: str, make: Callable[[OpSpec], Callable], ntmp: int) -> None:
    def factory(spec: OpSpec) -> Kernel:
        fac, _ = _composite(make(spec), ntmp)
        return fac(spec)

    def workspace(spec: OpSpec) -> int:
        return _composite(make(spec), ntmp)[1](spec)

    register(op, workspace=workspace)(factory)


_register_composite("Sigmoid", lambda spec: _f_sigmoid, 0)
_register_composite("Erf", lambda spec: _f_erf, 0)
_register_composite("LeakyRelu", lambda spec: _f_leaky(float(spec.attr("alpha", 0.01))), 1)
_register_composite("PRelu", lambda spec: _f_prelu, 1)
_register_composite("Elu", lambda spec: _f_elu(float(spec.attr("alpha", 1.0))), 1)
_register_composite(
    "Selu",
    lambda spec: _f_elu(float(spec.attr("alpha", 1.67326319217681884765625)),
                        float(spec.attr("gamma", 1.05070102214813232421875))),
    1,
)
_register_composite("HardSwish", lambda spec: _f_hardswish, 1)
_register_composite("Softsign", lambda spec: _f_softsign, 1)
_register_composite("Gelu", lambda spec: _f_gelu(str(spec.attr("approximate", "none"))), 1)
