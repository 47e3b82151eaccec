"""The masked softmax suite on CUDA tensors, every backend (see tests/softmax_suite.py)."""

from softmax_suite import *  # noqa: F401,F403
