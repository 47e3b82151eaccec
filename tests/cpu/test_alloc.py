"""Output buffers start as NaN in the test suites (FASTATTN_POISON_OUTPUTS, read once at import):
an element a kernel forgets to write then fails its test."""

import torch

from fastattn import _alloc


def test_poisoning_is_on_in_the_test_suites():
    assert _alloc.POISON_OUTPUTS  # tests/conftest.py sets the variable before fastattn is imported
    like = torch.zeros(3)
    assert torch.isnan(_alloc.empty((2, 3), like)).all()
    assert torch.isnan(_alloc.empty_like(like)).all()


def test_integer_buffers_are_left_alone():
    out = _alloc.empty((4,), torch.zeros(1, dtype=torch.int32))
    assert out.dtype == torch.int32 and out.shape == (4,)
