"""The float64 suite with the Triton kernels interpreted on CPU: they refuse float64 by name (see
tests/float64_suite.py)."""

from float64_suite import *  # noqa: F401,F403
