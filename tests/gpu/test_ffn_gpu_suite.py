"""The fused FFN suite on CUDA tensors, every backend (see tests/ffn_suite.py)."""

from ffn_suite import *  # noqa: F401,F403
