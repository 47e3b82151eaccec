"""The float64 suite on the torch backend (see tests/float64_suite.py)."""

from float64_suite import *  # noqa: F401,F403
