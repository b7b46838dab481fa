"""Write docs/conformance.md: every ONNX node test case run through omrt, tallied per op.

    python -m tests.conformance.report
"""
from __future__ import annotations

import collections
import multiprocessing
import sys
import warnings
from pathlib import Path

from tests.conformance.cases import REQUIRED_OPS, all_cases, op_of, run_case
from tests.conformance.known_gaps import KNOWN_GAPS

DOC = Path(__file__).resolve().parents[2] / "docs" / "conformance.md"


def _outcome(index: int) -> tuple[str, str, str]:
    warnings.simplefilter("ignore")
    case = all_cases()[index]
    try:
        run_case(case)
        return case.name, "pass", ""
    except Exception as e:  # every failure is tallied, with its first line as the reason
        text = str(e).strip().splitlines()[0] if str(e).strip() else ""
        return case.name, "fail", f"{type(e).__name__}: {text}"[:160]


def main() -> None:
    cases = all_cases()
    with multiprocessing.Pool(2) as pool:
        outcomes = pool.map(_outcome, range(len(cases)), chunksize=8)
    by_op: dict[str, list[tuple[str, str, str]]] = collections.defaultdict(list)
    for case, outcome in zip(cases, outcomes):
        by_op[op_of(case)].append(outcome)
    required = sorted(op for op in by_op if op in REQUIRED_OPS)
    others = sorted(op for op in by_op if op not in REQUIRED_OPS)
    req_total = sum(len(by_op[o]) for o in required)
    req_pass = sum(1 for o in required for _, r, _ in by_op[o] if r == "pass")
    all_pass = sum(1 for r in outcomes if r[1] == "pass")
    lines = [
        "# Conformance: the ONNX project's node test cases",
        "",
        "Each case is compiled to an in-memory `.om` (`omrt.onnx_backend`), read back, loaded on",
        "caller-owned work and weight memory and executed; outputs are compared with the suite's own",
        "tolerances. Regenerate with `python -m tests.conformance.report`; the promised ops are also a",
        "test (`tests/conformance/test_node_conformance.py`), with the cases listed in",
        "`tests/conformance/known_gaps.py` skipped for the reason given there.",
        "",
        f"* Promised ops: **{req_pass} / {req_total}** cases pass; every other case is listed below with its reason.",
        f"* All node cases, including ops omrt does not promise: {all_pass} / {len(outcomes)} pass.",
        "",
        "## Promised ops",
        "",
        "| op | cases | pass | not passing (reason) |",
        "|---|---:|---:|---|",
    ]
    for op in required:
        rows = by_op[op]
        passed = sum(1 for _, r, _ in rows if r == "pass")
        gaps = [f"`{n}`: {KNOWN_GAPS.get(n, why)}" for n, r, why in rows if r != "pass"]
        lines.append(f"| {op} | {len(rows)} | {passed} | {'<br>'.join(gaps)} |")
    lines += ["", "## Other ops in the suite", "", "| op | cases | pass | first reason |", "|---|---:|---:|---|"]
    for op in others:
        rows = by_op[op]
        passed = sum(1 for _, r, _ in rows if r == "pass")
        reason = next((why for _, r, why in rows if r != "pass"), "")
        lines.append(f"| {op} | {len(rows)} | {passed} | {reason.replace('|', '/')} |")
    DOC.write_text("\n".join(lines) + "\n")
    print(f"promised ops: {req_pass}/{req_total} pass; all cases: {all_pass}/{len(outcomes)}; wrote {DOC}")


if __name__ == "__main__":
    sys.exit(main())
