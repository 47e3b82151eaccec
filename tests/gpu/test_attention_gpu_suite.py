"""The attention suite on CUDA tensors, every backend and dtype (see tests/attn_suite.py)."""

from attn_suite import *  # noqa: F401,F403
