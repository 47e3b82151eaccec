"""The attention suite on the torch backend, CPU tensors, every dtype (see tests/attn_suite.py)."""

from attn_suite import *  # noqa: F401,F403
