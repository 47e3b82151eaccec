"""fastattn benchmark suites (pytest-benchmark) and the timing/report machinery they share."""

import os
import sys

# The repository root last on sys.path (`python -m pytest benchmarks/...` and `python -m
# benchmarks.<tool>` put it first): its kernels/ folder would shadow the PyPI package `kernels`,
# which transformers imports (see fastattn/__init__.py). Importing fastattn here instead would
# define its Triton kernels before the tools can choose the interpreter.
_ROOT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
_AT_ROOT = [p for p in sys.path if os.path.realpath(p or os.curdir) == _ROOT]
sys.path[:] = [p for p in sys.path if p not in _AT_ROOT] + _AT_ROOT
