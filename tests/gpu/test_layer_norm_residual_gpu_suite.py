"""The LayerNorm + residual suite on CUDA tensors, every backend (see tests/lnr_suite.py)."""

from lnr_suite import *  # noqa: F401,F403
