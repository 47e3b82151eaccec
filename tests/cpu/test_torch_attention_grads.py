"""The torch backend's closed-form attention backward, taken in blocks of query rows: one row per
block here (the default blocks cover the small suite shapes whole), against the reference.

In eager mode the backward differentiates the recomputed forward with autograd (the attention
suite covers that); the closed form runs where autograd is off, inside the custom op's
implementation (the torch.compile path). These tests force it."""

import pytest
import torch

import attn_cases
import fastattn
from fastattn.backends import torch_attention, torch_attention_grads


@pytest.fixture
def one_row_blocks(monkeypatch):
    monkeypatch.setattr(torch_attention_grads, "BLOCK_ELEMENTS", 1)
    monkeypatch.setattr(torch_attention, "_autograd_works_here", lambda: False)


@pytest.fixture
def closed_form_calls(monkeypatch):
    calls = []
    closed_form = torch_attention._closed_form_grads

    def counted(*args):
        calls.append(1)
        return closed_form(*args)

    monkeypatch.setattr(torch_attention, "_closed_form_grads", counted)
    return calls


def test_eager_backward_recomputes_with_autograd(closed_form_calls):
    q, k, v = (t.requires_grad_() for t in attn_cases.make_qkv(2, 2, 2, 5, 5, 16, torch.float32, "cpu"))
    fastattn.attention(q, k, v, causal=True, backend="torch").sum().backward()
    assert closed_form_calls == [] and q.grad is not None


def test_custom_op_backward_uses_the_closed_form(closed_form_calls):
    """Inside the custom op (as torch.compile runs it) autograd is dispatched below: closed form."""
    q, k, v = attn_cases.make_qkv(2, 2, 2, 5, 5, 16, torch.float32, "cpu")
    out, saved = torch.ops.fastattn.attention_fwd(q, k, v, None, None, None, 5, 5, True, 0.25, 0.0,
                                                  None, "torch")
    grads = torch.ops.fastattn.attention_bwd(torch.ones_like(out), q, k, v, out, saved, None, None,
                                             None, 5, 5, True, 0.25, 0.0, None, "torch")
    assert closed_form_calls == [1] and all(g.shape == t.shape for g, t in zip(grads, (q, k, v)))


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
