"""The bias + GELU suite on the torch backend (see tests/gelu_suite.py)."""

from gelu_suite import *  # noqa: F401,F403
