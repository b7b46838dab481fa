import os
import sys

# compiler_checks.py sits beside the tests that use it.
sys.path.insert(0, os.path.dirname(__file__))
