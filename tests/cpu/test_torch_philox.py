"""The torch backend's Philox stream (one int64 product per 32x32-bit multiply, a round's words in
[2, n] tensors, the keep test on integers, in chunks) gives the oracle's numbers exactly: fastattn.reference.philox_words, itself checked against Triton's tl.randint4x in the
interpret tier and against the CUDA kernels' Philox on the host."""

import pytest
import torch

from fastattn import reference
from fastattn.backends import torch_philox


@pytest.mark.parametrize("seed", [0, 1, 12345, 2**32 - 1, 2**32 + 5, 2**62 - 7])
def test_words_match_the_oracle(seed):
    for start in (0, 7, 2**32 - 3000, 2**40 + 11):  # offsets crossing into the counter's high word
        offsets = torch.arange(start, start + 4321)
        got = torch_philox.words(seed, offsets)
        expected = torch.stack(reference.philox_words(seed, offsets))
        assert got.dtype == torch.int64 and torch.equal(got, expected), (seed, start)


@pytest.mark.parametrize("dropout_p", [0.3, 0.1, 0.5, 1e-9, 0.999999, 1.0 / 3.0, 0.7, 1.0,
                                       2.0**-16, 1.5 * 2.0**-16])
def test_attention_keep_mask_matches_the_oracle(dropout_p, monkeypatch):
    # 408 Philox evaluations (2 * 3 * 17 rows, 4 a row): many chunks, a ragged last one.
    monkeypatch.setitem(torch_philox.CHUNK, "cpu", 50)
    got = torch_philox.attention_keep_mask(987654321, 2, 3, 17, 29, dropout_p, "cpu")
    expected = reference.attention_dropout_keep_mask(987654321, 2, 3, 17, 29, dropout_p)
    assert got.dtype == torch.bool and torch.equal(got, expected)


def test_attention_keep_mask_in_one_chunk_matches_the_oracle():
    got = torch_philox.attention_keep_mask(5, 1, 2, 33, 64, 0.1, "cpu")
    assert torch.equal(got, reference.attention_dropout_keep_mask(5, 1, 2, 33, 64, 0.1))


@pytest.mark.parametrize("seed", [3, 2**40 + 1])
def test_keep_test_at_a_drawn_half(seed):
    """p just above / exactly at a drawn half u (key 0: word 0's low half): u / 2^16 >= p decides,
    so u is dropped just above and kept at it. Off-by-one thresholds fail here."""
    drawn = int(reference.philox_words(seed, torch.tensor([0]))[0][0]) & 0xFFFF
    for dropout_p, kept in (((drawn + 0.5) / 65536, False), (drawn / 65536, True)):
        got = torch_philox.attention_keep_mask(seed, 1, 1, 1, 8, dropout_p, "cpu")
        assert bool(got[0, 0, 0, 0]) is kept, (drawn, dropout_p)
        assert torch.equal(got, reference.attention_dropout_keep_mask(seed, 1, 1, 1, 8, dropout_p))
