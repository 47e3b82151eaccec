"""The fused FFN suite on the Triton kernels, interpreted on CPU (see tests/ffn_suite.py)."""

from ffn_suite import *  # noqa: F401,F403
