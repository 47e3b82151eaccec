"""The many-splits decode cases of the triton backend on CUDA tensors, every dtype (see
tests/split_combine_suite.py)."""

from split_combine_suite import *  # noqa: F401,F403
