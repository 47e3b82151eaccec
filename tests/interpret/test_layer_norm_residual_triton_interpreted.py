"""The LayerNorm + residual suite on the Triton kernels, interpreted on CPU (see tests/lnr_suite.py)."""

from lnr_suite import *  # noqa: F401,F403
