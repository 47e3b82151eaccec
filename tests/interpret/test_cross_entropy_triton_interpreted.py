"""The cross-entropy suite (tests/cross_entropy_suite.py), Triton kernels interpreted on CPU."""

from cross_entropy_suite import *  # noqa: F401,F403
