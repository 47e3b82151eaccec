"""The torch backend's Philox stream (one int64 product per 32x32-bit multiply, in chunks) gives the
oracle's numbers exactly: fastattn.reference.philox_uniform, itself checked against Triton's
tl.rand in the interpret tier and against the CUDA kernels' Philox on the host."""

import pytest
import torch

from fastattn import reference
from fastattn.backends import torch_philox


@pytest.mark.parametrize("seed", [0, 1, 12345, 2**32 - 1, 2**32 + 5, 2**62 - 7])
def test_uniform_matches_the_oracle(seed, monkeypatch):
    monkeypatch.setitem(torch_philox.CHUNK, "cpu", 1000)  # many chunks, a ragged last one
    for start in (0, 7, 2**32 - 3000, 2**40 + 11):  # offsets crossing into the counter's high word
        got = torch_philox.uniform(seed, start, 4321, "cpu")
        expected = reference.philox_uniform(seed, torch.arange(start, start + 4321))
        assert torch.equal(got, expected), (seed, start)


@pytest.mark.parametrize("dropout_p", [0.3, 0.1, 0.5, 1e-9, 0.999999, 1.0 / 3.0, 0.7])
def test_attention_keep_mask_matches_the_oracle(dropout_p, monkeypatch):
    monkeypatch.setitem(torch_philox.CHUNK, "cpu", 400)  # many chunks, a ragged last one
    got = torch_philox.attention_keep_mask(987654321, 2, 3, 17, 29, dropout_p, "cpu")
    expected = reference.attention_dropout_keep_mask(987654321, 2, 3, 17, 29, dropout_p)
    assert got.dtype == torch.bool and torch.equal(got, expected)
