"""The switch between compiled loops and numpy, and compiling at load time rather than first run."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from omrt.kernels import jit

# A fresh process loads models whose kernels use every compiled loop (depthwise convs, pools and
# epilogues in ShuffleNet, Winograd in ResNet-50, BatchNormalization in DenseNet-121), then runs
# them and lists any loop signature that was compiled by the run rather than by the load.
FIRST_RUN = textwrap.dedent("""
    from omrt.compiler import compile_onnx
    from omrt.kernels import fused_epilogue, window_jit, winograd_jit
    from omrt.om import write_om
    from omrt.session import InferenceSession
    from tests.support.light_models import random_input, randomized

    loops = {name: getattr(mod, name) for mod in (fused_epilogue, window_jit, winograd_jit)
             for name in dir(mod) if hasattr(getattr(mod, name), "signatures")}
    for name in ("shufflenet", "resnet50", "densenet121"):
        model = randomized(name, expose_logits=False)
        session = InferenceSession(write_om(compile_onnx(model)))
        loaded = {n: set(f.signatures) for n, f in loops.items()}
        session.run(None, random_input(model))
        for n, f in loops.items():
            for sig in set(f.signatures) - loaded[n]:
                print(name, n, sig)
""")


@pytest.mark.slow
@pytest.mark.skipif(not jit.enabled(), reason="numba is not available")
def test_first_run_compiles_nothing() -> None:
    done = subprocess.run([sys.executable, "-c", FIRST_RUN], capture_output=True, text=True, timeout=600,
                          cwd=str(Path(__file__).resolve().parents[2]))
    assert done.returncode == 0, done.stderr
    assert done.stdout == "", f"compiled during the first run:\n{done.stdout}"


@pytest.mark.parametrize("value,on", [("0", False), ("off", False), ("False", False), ("1", True), ("", True)])
def test_switch(monkeypatch, value: str, on: bool) -> None:
    monkeypatch.setenv(jit.ENV, value)
    assert jit.enabled() == (on and jit.numba is not None)


def test_tiny_matches_read_only_flag() -> None:
    assert not jit.tiny(1, 2, writeable=False).flags.writeable
    assert jit.tiny(3).flags.writeable and jit.tiny(3).shape == (3,)
