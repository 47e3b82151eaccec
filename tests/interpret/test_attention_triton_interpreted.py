"""The attention suite on the Triton kernels, interpreted on CPU (see tests/attn_suite.py)."""

from attn_suite import *  # noqa: F401,F403
