"""Compile time and work-memory plan size (vs its lower bound and the naive sum) per light model.

    python benchmarks/compile_report.py
"""
from __future__ import annotations

import time

from common import ROOT  # noqa: F401  (puts the repo on sys.path)

from omrt.compiler import compile_onnx_report
from omrt.om import write_om
from tests.support.light_models import LIGHT_MODELS, model_path


def main() -> None:
    print(f"{'model':<14}{'compile s':>10}{'ops':>6}{'plan MiB':>10}{'LB MiB':>9}{'plan/LB':>9}{'naive MiB':>11}{'.om MiB':>9}")
    for name in LIGHT_MODELS:
        start = time.perf_counter()
        model, report = compile_onnx_report(str(model_path(name)))
        om = write_om(model)
        seconds = time.perf_counter() - start
        g = report.graphs[0]
        mib = 2**20
        print(
            f"{name:<14}{seconds:>10.2f}{len(model.graphs[0].ops):>6}{g.memory_size / mib:>10.2f}"
            f"{g.lower_bound / mib:>9.2f}{g.memory_size / max(g.lower_bound, 1):>9.3f}"
            f"{g.naive / mib:>11.2f}{len(om) / mib:>9.1f}"
        )


if __name__ == "__main__":
    main()
