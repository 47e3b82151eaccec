"""The cross-entropy suite on the Triton kernels, interpreted on CPU (tests/cross_entropy_suite.py)."""

from cross_entropy_suite import *  # noqa: F401,F403
