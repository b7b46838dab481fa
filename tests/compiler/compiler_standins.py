"""Reference numpy kernels for shape ops, registered only while a test module runs and only for
ops the real kernel modules do not provide yet, so compiler tests do not wait on them."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import numpy as np

from omrt.kernels import base


def _axes(spec, idx: int, attr: str = "axes") -> list[int]:
    if idx in spec.consts:
        return [int(a) for a in spec.consts[idx].reshape(-1)]
    return list(spec.attr(attr, []))


def _factory(fn):
    def build(spec):
        def kernel(inputs, outputs, scratch):
            result = fn(spec, inputs)
            outputs[0][...] = np.asarray(result).reshape(outputs[0].shape)
        return kernel
    return build


def _cos(spec, x):
    value = spec.attr("value")
    fill = value.reshape(-1)[0] if value is not None else 0.0
    return np.full(tuple(int(d) for d in x[0]), fill)


def _gather(spec, x):
    return np.take(x[0], x[1], axis=spec.attr("axis", 0))


def _slice(spec, x):
    data = x[0]
    starts, ends = x[1], x[2]
    axes = x[3] if len(x) > 3 and x[3] is not None else range(len(starts))
    steps = x[4] if len(x) > 4 and x[4] is not None else [1] * len(starts)
    sl = [slice(None)] * data.ndim
    for s, e, a, st in zip(starts, ends, axes, steps):
        sl[int(a)] = slice(int(s), int(e), int(st))
    return data[tuple(sl)]


STANDINS = {
    "ConstantOfShape": _cos,
    "Reshape": lambda spec, x: x[0],
    "Flatten": lambda spec, x: x[0],
    "Squeeze": lambda spec, x: x[0],
    "Unsqueeze": lambda spec, x: x[0],
    "Identity": lambda spec, x: x[0],
    "Expand": lambda spec, x: np.broadcast_to(x[0], spec.outputs[0].shape),
    "Concat": lambda spec, x: np.concatenate([v for v in x if v is not None], axis=spec.attr("axis")),
    "Transpose": lambda spec, x: np.transpose(x[0], spec.attr("perm")),
    "Shape": lambda spec, x: np.array(x[0].shape, dtype=np.int64),
    "Gather": _gather,
    "Slice": _slice,
}


@contextmanager
def standin_kernels() -> Iterator[None]:
    base._load_all()
    saved = dict(base._REGISTRY)
    for op, fn in STANDINS.items():
        if op not in base._REGISTRY:
            base._REGISTRY[op] = base._Entry(_factory(fn))
    try:
        yield
    finally:
        base._REGISTRY.clear()
        base._REGISTRY.update(saved)
