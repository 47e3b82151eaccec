"""fastattn benchmark suites (pytest-benchmark) and the timing/report machinery they share."""

import importlib
import importlib.util
import os
import sys

# The repository root last on sys.path (`python -m pytest benchmarks/...` and `python -m
# benchmarks.<tool>` put it first): its kernels/ folder would shadow the PyPI package `kernels`,
# which transformers imports (see fastattn/__init__.py). Importing fastattn here instead would
# define its Triton kernels before the tools can choose the interpreter.
_ROOT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
_AT_ROOT = [p for p in sys.path if os.path.realpath(p or os.curdir) == _ROOT]
sys.path[:] = [p for p in sys.path if p not in _AT_ROOT] + _AT_ROOT
# pytest's default (prepend) import mode puts the root first again for every module of this package
# it imports (benchmarks/ is a package: `python -m fastattn bench`, `pytest benchmarks/`), so the
# PyPI package is imported now, while it is found first: transformers' later import gets it from
# sys.modules (0.7 s, no torch).
_KERNELS = importlib.util.find_spec("kernels")
if _KERNELS is not None and not os.path.realpath(_KERNELS.origin or "").startswith(
        os.path.join(_ROOT, "kernels") + os.sep):
    importlib.import_module("kernels")
