"""fastattn's AttentionMaskInterface function against transformers' own sdpa_mask: where it
returns a 2D key padding mask (or None), that must say exactly what the dense mask says."""

import pytest
import torch
from transformers import masking_utils

from fastattn.hf.attention import fastattn_mask

CAUSAL = masking_utils.causal_mask_function


def _dense(batch, q_length, kv_length, q_offset, attention_mask):
    return masking_utils.sdpa_mask(batch_size=batch, q_length=q_length, kv_length=kv_length,
                                   q_offset=q_offset, mask_function=CAUSAL,
                                   attention_mask=attention_mask, allow_is_causal_skip=False)


def _as_dense(mask, batch, kv_length):
    """A 2D key padding mask (None: every key) as the [B, 1, 1, Sk] dense mask of one query."""
    if mask is None:
        return torch.ones(batch, 1, 1, kv_length, dtype=torch.bool)
    assert mask.dtype == torch.bool and mask.shape == (batch, kv_length)
    return mask[:, None, None, :]


@pytest.mark.parametrize("seed", range(6))
def test_a_static_cache_decoding_step_is_a_key_padding_mask(seed):
    """One query at a tensor position (a static cache's decoding step) over the whole cache: the
    unwritten tail and the padding hidden, the written keys shown."""
    generator = torch.Generator().manual_seed(seed)
    batch, kv_length = 3, 20
    position = int(torch.randint(0, kv_length, (1,), generator=generator))
    attention_mask = (torch.rand(batch, position + 1, generator=generator) < 0.7).long()
    attention_mask[:, -1] = 1  # the new token is real
    q_offset = torch.tensor(position)
    got = fastattn_mask(batch, 1, kv_length, q_offset=q_offset, mask_function=CAUSAL,
                        attention_mask=attention_mask, device="cpu")
    expected = _dense(batch, 1, kv_length, q_offset, attention_mask)
    assert torch.equal(_as_dense(got, batch, kv_length), expected)


@pytest.mark.parametrize("position", [0, 5, 19])
def test_a_static_cache_decoding_step_without_an_attention_mask(position):
    got = fastattn_mask(2, 1, 20, q_offset=torch.tensor(position), mask_function=CAUSAL,
                        attention_mask=None, device="cpu")
    expected = _dense(2, 1, 20, torch.tensor(position), None)
    assert torch.equal(_as_dense(got, 2, 20), expected.expand(2, 1, 1, 20))
    assert (got is None) == (position == 19)  # the whole cache written: nothing to mask


def test_a_static_cache_prefill_stays_dense():
    """Several queries from position 0 over a longer cache: causality aligned top-left, which a
    key padding mask with fastattn's bottom-right causal cannot say."""
    attention_mask = torch.ones(2, 6, dtype=torch.long)
    got = fastattn_mask(2, 6, 10, q_offset=0, mask_function=CAUSAL, attention_mask=attention_mask,
                        device="cpu")
    assert got.shape == (2, 1, 6, 10)
    assert torch.equal(got, _dense(2, 6, 10, 0, attention_mask))
