"""The torch backend's closed-form attention backward, taken in blocks of query rows: one row per
block here (the default blocks cover the small suite shapes whole), against the reference."""

import pytest
import torch

import attn_cases
from fastattn.backends import torch_attention_grads


@pytest.fixture
def one_row_blocks(monkeypatch):
    monkeypatch.setattr(torch_attention_grads, "BLOCK_ELEMENTS", 1)


@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
def test_blocked_backward_with_padding_gqa(one_row_blocks, dtype, causal):
    q, k, v = attn_cases.make_qkv(3, 4, 2, 9, 13, 16, dtype, "cpu", seed=21)
    mask = attn_cases.key_padding_mask("empty_row", 3, 13, "cpu")
    attn_cases.check_dense("torch", q, k, v, causal=causal, mask=mask)


def test_blocked_backward_with_dropout(one_row_blocks, dtype):
    q, k, v = attn_cases.make_qkv(2, 2, 1, 7, 11, 16, dtype, "cpu", seed=22)
    attn_cases.check_dropout_against_reference("torch", q, k, v, causal=True,
                                               mask=attn_cases.key_padding_mask("mixed", 2, 11, "cpu"))


def test_blocked_backward_varlen(one_row_blocks, dtype):
    attn_cases.check_varlen("torch", [5, 0, 9], [3, 0, 12], 2, 1, 16, dtype, "cpu", causal=True)


def test_blocks_cover_every_row_once(monkeypatch):
    monkeypatch.setattr(torch_attention_grads, "BLOCK_ELEMENTS", 2 * 3 * 7 * 30)
    blocks = torch_attention_grads._row_blocks(2, 3, 100, 7)
    assert len(blocks) == 4
    assert [row for block in blocks for row in range(100)[block]] == list(range(100))
