"""Kernel contract and registry.

A kernel is built once per op at load time (`build_kernel`) and then called on every execute with
numpy views of planned memory. It writes its results into the `outputs` views it is handed and
never allocates beyond what it documents; `scratch` is a uint8 view of the op's planned workspace
(`workspace_bytes`), or None when it asked for none.

Kernels never import onnx, onnxruntime or the compiler. The compiler uses the same kernels to fold
constants, so the numbers a model gives do not depend on who ran the op.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from omrt.constants import ACL_ERROR_OP_NOT_FOUND
from omrt.errors import OmrtError, UnsupportedOpError


@dataclass(frozen=True)
class TensorSpec:
    shape: tuple[int, ...]
    dtype: np.dtype


@dataclass
class OpSpec:
    """What a kernel may know when it is built: types, shapes, attrs and constant input values.

    `consts` maps input index -> value for inputs that live in weight memory (Reshape's shape,
    Slice's starts, Conv's weights ...). They are read-only views; a kernel may keep them.
    """

    op_type: str
    attrs: dict[str, Any]
    inputs: list[TensorSpec | None]
    outputs: list[TensorSpec]
    consts: dict[int, np.ndarray] = field(default_factory=dict)
    name: str = ""

    def attr(self, key: str, default: Any = None) -> Any:
        return self.attrs.get(key, default)


class Kernel(Protocol):
    def __call__(
        self,
        inputs: Sequence[np.ndarray | None],
        outputs: Sequence[np.ndarray],
        scratch: np.ndarray | None,
    ) -> None: ...


KernelFactory = Callable[[OpSpec], Kernel]
WorkspaceFn = Callable[[OpSpec], int]
PrepackFn = Callable[[OpSpec], "tuple[dict[str, Any], dict[int, np.ndarray]] | None"]
OverwritesFn = Callable[[OpSpec], "tuple[int, ...]"]
# The attribute the compiler sets on an op whose output took the bytes of input number <value>.
OVERWRITES = "_overwrites"


@dataclass
class _Entry:
    factory: KernelFactory
    workspace: WorkspaceFn | None = None
    prepack: PrepackFn | None = None
    overwrites: OverwritesFn | None = None


_REGISTRY: dict[str, _Entry] = {}


def register(*op_types: str, workspace: WorkspaceFn | None = None, prepack: PrepackFn | None = None,
             overwrites: OverwritesFn | None = None):
    """Class/function decorator: `factory(spec) -> kernel` serves the given ONNX op types.

    `workspace(spec)` returns the scratch bytes the kernel needs (planned by the compiler).
    `prepack(spec)` may return (attrs to add, {input index: new constant value}) so the compiler
    stores weights in the layout the kernel runs fastest on; the kernel must accept both forms.
    `overwrites(spec)` names inputs whose bytes the output may take where the input is read for
    the last time; the compiler then sets the attribute OVERWRITES to the index it chose, and the
    kernel must give the same results with that input and its output in the same bytes.
    """

    def deco(factory: KernelFactory) -> KernelFactory:
        for op in op_types:
            _REGISTRY[op] = _Entry(factory, workspace, prepack, overwrites)
        return factory

    return deco


def _load_all() -> None:
    # Importing the package registers every kernel module.
    import omrt.kernels  # noqa: F401


def is_supported(op_type: str) -> bool:
    _load_all()
    return op_type in _REGISTRY


def supported_ops() -> set[str]:
    _load_all()
    return set(_REGISTRY)


def build_kernel(spec: OpSpec) -> Kernel:
    _load_all()
    entry = _REGISTRY.get(spec.op_type)
    if entry is None:
        raise UnsupportedOpError(ACL_ERROR_OP_NOT_FOUND, f"unsupported op type {spec.op_type} ({spec.name})")
    if spec.outputs and all(o is not None and 0 in tuple(o.shape) for o in spec.outputs):
        return _nothing_to_write  # every output is empty (a window past the input, an empty batch)
    return entry.factory(spec)


def _nothing_to_write(inputs, outputs, scratch) -> None:
    return None


def workspace_bytes(spec: OpSpec) -> int:
    _load_all()
    entry = _REGISTRY.get(spec.op_type)
    if entry is None or entry.workspace is None:
        return 0
    return int(entry.workspace(spec))


def prepack(spec: OpSpec) -> tuple[dict[str, Any], dict[int, np.ndarray]] | None:
    _load_all()
    entry = _REGISTRY.get(spec.op_type)
    if entry is None or entry.prepack is None:
        return None
    return entry.prepack(spec)


def overwritable_inputs(spec: OpSpec) -> tuple[int, ...]:
    """Inputs of a non-elementwise op whose bytes its output may take (see register)."""
    _load_all()
    entry = _REGISTRY.get(spec.op_type)
    if entry is None or entry.overwrites is None:
        return ()
    return tuple(entry.overwrites(spec))


def run_op(spec: OpSpec, inputs: Sequence[np.ndarray | None]) -> list[np.ndarray]:
    """Run one op on fresh arrays (constant folding, tests): allocate outputs, call the kernel."""
    kernel = build_kernel(spec)
    outputs = [np.empty(o.shape, dtype=o.dtype) for o in spec.outputs]
    nbytes = workspace_bytes(spec)
    scratch = np.empty(nbytes, dtype=np.uint8) if nbytes else None
    kernel(list(inputs), outputs, scratch)
    return outputs


def check(cond: bool, message: str) -> None:
    """Reject an op the kernel cannot run (bad attribute, unsupported dtype) with a typed error."""
    if not cond:
        raise OmrtError(ACL_ERROR_OP_NOT_FOUND, message)
