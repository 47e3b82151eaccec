"""The bias + GELU suite on the Triton kernels, interpreted on CPU (see tests/gelu_suite.py)."""

from gelu_suite import *  # noqa: F401,F403
