"""The attention suite on the Triton kernels, interpreted on CPU (see tests/attn_suite.py), once with
the sm_80 tiles and once with the sm_90 ones: some kernel forms (the transposed dK/dV tiles that let
Hopper use wgmma) are only launched with the latter."""

import pytest

from attn_suite import *  # noqa: F401,F403


@pytest.fixture(autouse=True, params=["80", "90"], ids=["sm80-tiles", "sm90-tiles"])
def _interpreted_arch(request, monkeypatch):
    monkeypatch.setenv("FASTATTN_INTERPRET_ARCH", request.param)
