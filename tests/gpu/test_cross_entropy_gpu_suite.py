"""The cross-entropy suite on CUDA tensors, every backend and dtype (tests/cross_entropy_suite.py):
triton streams the logits, cuda and torch take torch's float32 cross-entropy."""

from cross_entropy_suite import *  # noqa: F401,F403
