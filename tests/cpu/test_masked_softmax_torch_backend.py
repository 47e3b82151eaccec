"""The masked softmax suite on the torch backend (see tests/softmax_suite.py)."""

from softmax_suite import *  # noqa: F401,F403
