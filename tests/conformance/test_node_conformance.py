"""Every ONNX node test case of the ops omrt promises, compiled to .om and run on user memory."""
from __future__ import annotations

import pytest

from tests.conformance.cases import required_cases, run_case
from tests.conformance.known_gaps import KNOWN_GAPS

CASES = required_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_node_case(case) -> None:
    reason = KNOWN_GAPS.get(case.name)
    if reason:
        pytest.skip(reason)
    run_case(case)
