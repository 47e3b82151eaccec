"""The bias + GELU suite on CUDA tensors, every backend (see tests/gelu_suite.py)."""

from gelu_suite import *  # noqa: F401,F403
