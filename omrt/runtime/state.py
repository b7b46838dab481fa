"""Process-wide runtime state: the init counter, the handle table, the error log and recent error.

Nothing here is ever torn down: clients call destroy functions from ``__del__`` at interpreter exit,
and they must still find the state they need.
"""
from __future__ import annotations

import itertools
import json
import os
import sys
import threading
from typing import Any, TypeVar

from omrt import constants as C
from omrt.errors import OmrtError

T = TypeVar("T")

_lock = threading.RLock()
_init_count = 0
_config: dict[str, Any] = {}


# --- init / finalize --------------------------------------------------------------------------

def init(config_path: str = "") -> None:
    """aclInit: counts every call; a repeat still counts but answers 100002 (clients may ignore it)."""
    global _init_count, _config
    config = _read_config(config_path) if config_path else {}
    with _lock:
        _init_count += 1
        if _init_count > 1:
            raise OmrtError(C.ACL_ERROR_REPEAT_INITIALIZE, "acl.init called again; already initialized")
        _config = config


def finalize() -> None:
    """aclFinalize: zeroes the counter; a second finalize (or one without init) answers 100037."""
    global _init_count
    with _lock:
        if _init_count == 0:
            raise OmrtError(C.ACL_ERROR_REPEAT_FINALIZE, "acl.finalize called without a live acl.init")
        _init_count = 0


def is_initialized() -> bool:
    """Whether acl.init is in effect (model functions answer 145001 otherwise)."""
    return _init_count > 0


def config() -> dict[str, Any]:
    """The parsed acl.json given to init (empty when none)."""
    return _config


def _read_config(path: str) -> dict[str, Any]:
    if not os.path.isfile(path):
        raise OmrtError(C.ACL_ERROR_INVALID_FILE, f"acl.init config file not found: {path!r}")
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8").strip()
        data = json.loads(text) if text else {}
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise OmrtError(C.ACL_ERROR_PARSE_FILE, f"acl.init config file {path!r} is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise OmrtError(C.ACL_ERROR_PARSE_FILE, f"acl.init config file {path!r} must hold a JSON object")
    return data


# --- handles ----------------------------------------------------------------------------------

class HandleTable:
    """Maps the plain-int handles clients hold to runtime objects; one counter for all kinds,
    so a handle of one kind is never mistaken for another."""

    _BASE = 0x5A0000000000
    _STEP = 0x40

    def __init__(self) -> None:
        self._objects: dict[int, object] = {}
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    def add(self, obj: object) -> int:
        with self._lock:
            handle = self._BASE + next(self._counter) * self._STEP
            self._objects[handle] = obj
            return handle

    def get(self, handle: int, kind: type[T], what: str, code: int = C.ACL_ERROR_INVALID_PARAM) -> T:
        """The live object of `kind` behind `handle`, or an OmrtError naming `what`."""
        obj = self._objects.get(handle)
        if not isinstance(obj, kind):
            if handle == 0:
                raise OmrtError(C.ACL_ERROR_INVALID_PARAM, f"{what} is NULL")
            raise OmrtError(code, f"{what} {handle:#x} is not a live {what}")
        return obj

    def find(self, handle: int, kind: type[T]) -> T | None:
        obj = self._objects.get(handle)
        return obj if isinstance(obj, kind) else None

    def remove(self, handle: int) -> None:
        with self._lock:
            self._objects.pop(handle, None)


handles = HandleTable()


# --- log and recent error ---------------------------------------------------------------------

_LEVELS = {C.ACL_DEBUG: "DEBUG", C.ACL_INFO: "INFO", C.ACL_WARNING: "WARNING", C.ACL_ERROR: "ERROR"}
_recent = threading.local()


def log_level() -> int:
    """Lowest level written to stderr; ASCEND_GLOBAL_LOG_LEVEL as in CANN (default ERROR)."""
    try:
        return int(os.environ.get("ASCEND_GLOBAL_LOG_LEVEL", C.ACL_ERROR))
    except ValueError:
        return C.ACL_ERROR


def log(level: int, message: str) -> None:
    """Write one log line to stderr if `level` passes the threshold; never raises."""
    if level < log_level():
        return
    try:
        stream = sys.stderr
        if stream is not None:
            stream.write(f"[{_LEVELS.get(level, 'ERROR')}] {message}\n")
            stream.flush()
    except Exception:
        pass


def record_error(api: str, code: int, message: str) -> None:
    """Log a failed call and remember it for this thread's get_recent_err_msg."""
    text = f"{api}: {message} (error {code})"
    _recent.message = text
    log(C.ACL_ERROR, text)


def recent_error() -> str:
    """The last error recorded on the calling thread ('' when none); per thread, as in CANN."""
    return getattr(_recent, "message", "")
