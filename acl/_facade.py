"""The one adapter between pyACL calls and the runtime: parse arguments the way PyArg_ParseTuple
does, run the function, and turn any failure into its return code in the function's usual shape.

Only the parse TypeError (and exceptions a function hands to `Escape` on purpose) leave a call.
"""
from __future__ import annotations

import functools
import operator
from typing import Any, Callable

from omrt import constants as C
from omrt.errors import OmrtError
from omrt.runtime import state

RET = object()
"""Marks where the error code goes in a `fail` shape, e.g. (0, RET) for `ptr, ret = ...`."""

_U64 = (1 << 64) - 1
_U32 = (1 << 32) - 1
_I32_MIN, _I32_MAX = -(1 << 31), (1 << 31) - 1


class Escape(Exception):
    """Wraps an exception that pyACL itself raises (e.g. ValueError from bytes_to_ptr)."""

    def __init__(self, exc: BaseException) -> None:
        super().__init__(str(exc))
        self.exc = exc


class _ParseError(Exception):
    pass


def _unsigned(mask: int) -> Callable[[Any], int]:
    def conv(value: Any) -> int:
        if not isinstance(value, int):
            raise _ParseError
        return int(value) & mask  # no overflow check: -1 wraps, as in C
    return conv


def _int32(value: Any) -> int:
    if isinstance(value, float):
        raise _ParseError
    try:
        n = operator.index(value)
    except TypeError:
        raise _ParseError from None
    if not _I32_MIN <= n <= _I32_MAX:
        raise _ParseError
    return n


def _str(value: Any) -> str:
    if not isinstance(value, str) or "\0" in value:
        raise _ParseError
    return value


def _float(value: Any) -> float:
    if isinstance(value, (str, bytes)) or value is None:
        raise _ParseError
    try:
        return float(value)
    except (TypeError, ValueError):
        raise _ParseError from None


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "k": _unsigned(_U64), "K": _unsigned(_U64), "I": _unsigned(_U32),
    "i": _int32, "s": _str, "O": lambda v: v, "f": _float, "d": _float,
}


def parse(api: str, fmt: str, args: tuple, kwargs: dict) -> tuple:
    """Convert `args` per format `fmt` ('|' starts optional ones); a mismatch raises pyACL's TypeError.
    An empty format takes nothing and ignores whatever is passed (METH_VARARGS without parsing)."""
    if not fmt:
        return ()
    required, _, optional = fmt.partition("|")
    codes = required + optional
    if kwargs or not len(required) <= len(args) <= len(codes):
        raise TypeError(f"acl.{api} args parse failed")
    try:
        return tuple(_CONVERTERS[c](a) for c, a in zip(codes, args))
    except _ParseError:
        raise TypeError(f"acl.{api} args parse failed") from None


def failure_value(fail: Any, code: int, args: tuple) -> Any:
    if fail is RET:
        return code
    if callable(fail):
        return fail(code, args)
    if isinstance(fail, tuple):
        return tuple(code if v is RET else v for v in fail)
    return fail


def report(api: str, code: int, message: str) -> None:
    try:
        state.record_error(f"acl.{api}", code, message)
    except Exception:
        pass


def acl_api(api: str, fmt: str = "", fail: Any = RET) -> Callable[[Callable], Callable]:
    """Declare a pyACL function: `api` is its name under acl ("rt.malloc"), `fmt` its
    PyArg_ParseTuple format, `fail` the value returned on failure (RET marks the code).
    The function returns its success value; it signals failure by raising OmrtError."""

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def call(*args: Any, **kwargs: Any) -> Any:
            parsed = parse(api, fmt, args, kwargs)
            try:
                return fn(*parsed)
            except Escape as e:
                raise e.exc from None
            except OmrtError as e:
                code, message = e.code, e.message
            except Exception as e:
                code, message = C.ACL_ERROR_INTERNAL_ERROR, f"internal error: {type(e).__name__}: {e}"
            report(api, code, message)
            return failure_value(fail, code, parsed)

        call.acl_name = f"acl.{api}"  # type: ignore[attr-defined]
        call.acl_format = fmt  # type: ignore[attr-defined]
        return call

    return decorate


def not_supported(api: str, fail: Any = RET) -> Callable[..., Any]:
    """A pyACL function omrt does not implement: any arguments, answers 200001 in its usual shape."""

    def call(*args: Any, **kwargs: Any) -> Any:
        report(api, C.ACL_ERROR_API_NOT_SUPPORT, f"acl.{api} is not supported by omrt")
        return failure_value(fail, C.ACL_ERROR_API_NOT_SUPPORT, args)

    call.__name__ = call.__qualname__ = api.rsplit(".", 1)[-1]
    call.__doc__ = f"acl.{api}: not supported (returns {C.ACL_ERROR_API_NOT_SUPPORT})."
    return call
