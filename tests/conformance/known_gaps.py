"""Node test cases of promised ops that omrt does not pass, each with the reason."""
from __future__ import annotations

KNOWN_GAPS: dict[str, str] = {}
