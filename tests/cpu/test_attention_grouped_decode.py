"""Decoding steps whose query heads share KV heads (MQA, GQA) reach the backends with the heads of
a group as query rows (fastattn.ops.attention._grouped_query_rows): one KV read a group, not one
a query head. The numbers are checked on every tier by the attention suite
(test_decode_with_grouped_kv_heads); this checks which calls are packed and how."""

import pytest
import torch

import attn_cases
import fastattn
from fastattn.ops import attention as attention_op


@pytest.fixture
def backend_calls(monkeypatch):
    """(q shape, causal) of each call that reaches the backend dispatch."""
    calls, run = [], attention_op._run

    def recording_run(op, q, k, v, mask, cu_q, cu_k, max_q, max_k, causal, *args):
        calls.append((tuple(q.shape), causal))
        return run(op, q, k, v, mask, cu_q, cu_k, max_q, max_k, causal, *args)

    monkeypatch.setattr(attention_op, "_run", recording_run)
    return calls


@pytest.mark.parametrize("heads,kv_heads,packed_heads,rows", [
    (12, 1, 1, 12),   # multi-query, GPTBigCode's 12 heads: one head of 12 rows
    (48, 1, 3, 16),   # more heads than the decode tile's 16 rows: three heads of 16
    (8, 2, 2, 4),     # grouped-query attention
    (6, 3, 3, 2),
    (7, 1, 1, 7),     # a prime group
])
def test_a_decoding_step_runs_its_groups_as_query_rows(backend_calls, heads, kv_heads,
                                                      packed_heads, rows):
    q, k, v = attn_cases.make_qkv(2, heads, kv_heads, 1, 40, 16, torch.float32, "cpu")
    out = fastattn.attention(q, k, v, causal=True)
    assert out.shape == q.shape
    # A single query hides no key causally: the packed rows run without the causal mask.
    assert backend_calls == [((2, packed_heads, rows, 16), False)]


@pytest.mark.parametrize("case", ["one head a KV head", "two queries", "dropout"])
def test_other_calls_are_not_packed(backend_calls, case):
    sq, kv_heads, dropout_p = {"one head a KV head": (1, 4, 0.0), "two queries": (2, 1, 0.0),
                               "dropout": (1, 1, 0.1)}[case]
    q, k, v = attn_cases.make_qkv(2, 4, kv_heads, sq, 40, 16, torch.float32, "cpu")
    fastattn.attention(q, k, v, causal=True, dropout_p=dropout_p)
    assert backend_calls == [((2, 4, sq, 16), True)]


def test_packed_step_keeps_its_gradients():
    q, k, v = attn_cases.make_qkv(2, 12, 1, 1, 9, 8, torch.float64, "cpu")
    q, k, v = (t.requires_grad_() for t in (q, k, v))
    mask = attn_cases.key_padding_mask("empty_row", 2, 9, "cpu")
    torch.autograd.gradcheck(
        lambda q, k, v: fastattn.attention(q, k, v, key_padding_mask=mask, causal=True),
        (q, k, v))
