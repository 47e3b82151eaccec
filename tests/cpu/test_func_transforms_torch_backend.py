"""The torch.func suite on the torch backend (see tests/func_suite.py)."""

from func_suite import *  # noqa: F401,F403
