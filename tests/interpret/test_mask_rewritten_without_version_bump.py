"""A key padding mask rewritten between calls without a version bump (numpy buffer, `.data`):
the Triton kernels, interpreted, answer for its new values (tests/mask_rewrites.py)."""

import pytest

import mask_rewrites


@pytest.mark.parametrize("name,make,write", mask_rewrites.rewrites(),
                         ids=[r[0] for r in mask_rewrites.rewrites()])
@pytest.mark.parametrize("causal", [False, True])
def test_attention_sees_the_new_values(name, make, write, causal):
    mask_rewrites.check_attention_sees_the_new_values(make, write, causal, "triton")
