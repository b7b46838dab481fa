"""omrt: Ascend-style offline models (.om) on an ordinary computer."""
from __future__ import annotations

__version__ = "0.1.0"


def __getattr__(name: str):
    if name == "InferenceSession":
        from omrt.session import InferenceSession

        return InferenceSession
    raise AttributeError(name)
