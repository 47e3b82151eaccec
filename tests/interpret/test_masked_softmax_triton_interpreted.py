"""The masked softmax suite on the Triton kernels, interpreted on CPU (see tests/softmax_suite.py)."""

from softmax_suite import *  # noqa: F401,F403
