"""The fused FFN suite on the torch backend (see tests/ffn_suite.py)."""

from ffn_suite import *  # noqa: F401,F403
