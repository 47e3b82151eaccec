"""The float64 suite on CUDA tensors, every backend (see tests/float64_suite.py)."""

from float64_suite import *  # noqa: F401,F403
