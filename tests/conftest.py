"""Shared by every tier. Imports nothing heavy: the compile tier runs where only triton exists."""

import os
import sys

# Every kernel output buffer starts as NaN, so an element a kernel forgets to write fails the test.
os.environ.setdefault("FASTATTN_POISON_OUTPUTS", "1")
# The helpers (numerics.py, *_cases.py) sit in this folder.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
