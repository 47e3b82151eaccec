"""The many-splits decode cases of the triton backend, interpreted (see
tests/split_combine_suite.py)."""

from split_combine_suite import *  # noqa: F401,F403
