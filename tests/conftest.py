"""Shared by every tier. Imports nothing heavy: the compile tier runs where only triton exists."""

import os
import sys

# Every kernel output buffer starts as NaN, so an element a kernel forgets to write fails the test.
os.environ.setdefault("FASTATTN_POISON_OUTPUTS", "1")
# The repository root last on sys.path (`python -m pytest` puts it first): its kernels/ folder would
# shadow the PyPI package `kernels`, which transformers imports (see fastattn/__init__.py). The
# compile tier, which has no transformers, puts the root back in front to import kernels/ directly.
_ROOT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
_AT_ROOT = [p for p in sys.path if os.path.realpath(p or os.curdir) == _ROOT]
sys.path[:] = [p for p in sys.path if p not in _AT_ROOT] + _AT_ROOT
# The helpers (numerics.py, *_cases.py) sit in this folder.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
