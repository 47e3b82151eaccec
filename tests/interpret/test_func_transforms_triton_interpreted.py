"""The torch.func suite on the Triton kernels, interpreted on CPU (see tests/func_suite.py)."""

from func_suite import *  # noqa: F401,F403
