"""The torch.func suite on CUDA tensors, every backend and dtype (see tests/func_suite.py)."""

from func_suite import *  # noqa: F401,F403
