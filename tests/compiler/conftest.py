import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from compiler_standins import standin_kernels  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def _shape_kernels():
    with standin_kernels():
        yield
