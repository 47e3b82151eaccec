"""The torch backend on batches without padding, the common case, with no padding machinery:
- a packed batch of equal-length sequences runs as a dense [B, H, L, D] batch (no padding added
  and stripped, no mask built) when cu_seqlens' host facts are already known, with the same
  numbers, gradients and dropout keep mask as the padded path;
- a key padding mask that marks every key real runs as no mask."""

import pytest
import torch

import fastattn
from fastattn.backends import torch_attention
from fastattn.ops import cu_seqlens_facts


def _packed(lengths, heads=4, kv_heads=2, head_dim=32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    total = sum(lengths)
    q = torch.randn(total, heads, head_dim, generator=generator, requires_grad=True)
    k, v = (torch.randn(total, kv_heads, head_dim, generator=generator, requires_grad=True)
            for _ in range(2))
    cu = torch.tensor([0] + torch.tensor(lengths).cumsum(0).tolist(), dtype=torch.int32)
    return q, k, v, cu


def _run(q, k, v, cu, length, **options):
    out = fastattn.attention_varlen(q, k, v, cu, cu, length, length, backend="torch", **options)
    return (out, *torch.autograd.grad(out.square().sum(), (q, k, v)))


def _padded_path_only(monkeypatch):
    monkeypatch.setattr(torch_attention, "_uniform_length", lambda *args: None)


@pytest.mark.parametrize("facts", ["read_on_cpu", "kept_as_on_a_gpu"])
def test_uniform_lengths_take_the_dense_path(monkeypatch, request, facts):
    if facts == "kept_as_on_a_gpu":
        request.getfixturevalue("facts_kept_as_on_a_gpu")
    def no_padding(*args, **kwargs):
        raise AssertionError("the padded path ran")

    monkeypatch.setattr(torch_attention, "_Varlen", no_padding)
    q, k, v, cu = _packed([9, 9, 9])
    _run(q, k, v, cu, 9, causal=True)
    with pytest.raises(AssertionError, match="padded path"):  # unequal lengths do pad
        q, k, v, cu = _packed([9, 4, 9])
        _run(q, k, v, cu, 9)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("dropout_p", [0.0, 0.4])
def test_dense_and_padded_paths_agree(monkeypatch, causal, dropout_p):
    q, k, v, cu = _packed([13, 13, 13, 13], seed=1)
    assert torch_attention._uniform_length(q, k, cu, cu, 13, 13) == 13  # the dense path runs
    torch.manual_seed(7)
    dense = _run(q, k, v, cu, 13, causal=causal, dropout_p=dropout_p)
    _padded_path_only(monkeypatch)
    torch.manual_seed(7)
    padded = _run(q, k, v, cu, 13, causal=causal, dropout_p=dropout_p)
    for name, a, b in zip(("out", "dq", "dk", "dv"), dense, padded):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)


def test_a_larger_max_seqlen_or_unknown_facts_keep_the_padded_path(facts_kept_as_on_a_gpu):
    q, k, v, cu = _packed([6, 6])
    assert cu_seqlens_facts.known(cu) is None  # nothing has read it yet
    assert torch_attention._uniform_length(q, k, cu, cu, 6, 6) is None  # and nothing reads it here
    cu_seqlens_facts.read(cu)
    assert torch_attention._uniform_length(q, k, cu, cu, 6, 6) == 6
    assert torch_attention._uniform_length(q, k, cu, cu, 8, 8) is None  # bound above the lengths


@pytest.mark.parametrize("causal", [False, True])
def test_a_mask_without_padding_runs_as_no_mask(monkeypatch, causal):
    """A key padding mask of all True (Hugging Face's for unpadded input) builds no visibility
    mask; the result is the maskless one."""
    generator = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(2, 4, 11, 32, generator=generator) for _ in range(3))
    expected = fastattn.attention(q, k, v, causal=causal, backend="torch")

    def no_mask_building(*args, **kwargs):
        raise AssertionError("a visibility mask was built")

    monkeypatch.setattr(torch_attention, "attention_visible_keys", no_mask_building)
    mask = torch.ones(2, 11, dtype=torch.bool)
    got = fastattn.attention(q, k, v, causal=causal, key_padding_mask=mask, backend="torch")
    torch.testing.assert_close(got, expected)
    monkeypatch.undo()
    mask[1, 3] = False  # a hole: now the mask matters
    got = fastattn.attention(q, k, v, causal=causal, key_padding_mask=mask, backend="torch")
    oracle = fastattn.reference.attention(q, k, v, causal=causal, key_padding_mask=mask)
    torch.testing.assert_close(got, oracle.to(got.dtype))
    assert not torch.allclose(got, expected)


@pytest.mark.parametrize("seqlen_q", [1, 17])
def test_while_a_cuda_graph_is_captured_the_mask_is_never_read_back(monkeypatch, seqlen_q):
    """Capturing a CUDA graph forbids device reads: the torch backend then skips the plans that
    read the mask's values (no-padding shortcut, per-row key windows) and runs one masked SDPA,
    with the same numbers (fully masked rows zero)."""
    from attn_cases import check_dense, key_padding_mask, make_qkv

    from fastattn import _tensor_memo

    def no_reads(*args):
        raise AssertionError("the mask's values were read back")

    monkeypatch.setattr(torch_attention, "_mask_values_readable", lambda mask: False)
    monkeypatch.setattr(_tensor_memo, "remembered", no_reads)
    q, k, v = make_qkv(5, 4, 2, seqlen_q, 40, 32, torch.float32, "cpu")
    for pattern in ("mixed", "empty_row"):
        check_dense("torch", q, k, v, causal=True, mask=key_padding_mask(pattern, 5, 40, "cpu"))


def test_one_causal_query_builds_no_mask(monkeypatch):
    """A KV-cache decoding step (one query, causal, aligned bottom-right) sees every key: no
    visibility mask is built for it, and the result is the reference's."""
    from fastattn import reference

    generator = torch.Generator().manual_seed(5)
    q = torch.randn(2, 4, 1, 32, generator=generator)
    k, v = (torch.randn(2, 4, 23, 32, generator=generator) for _ in range(2))
    expected = reference.attention(q, k, v, causal=True)

    def no_mask_building(*args, **kwargs):
        raise AssertionError("a visibility mask was built")

    monkeypatch.setattr(torch_attention, "attention_visible_keys", no_mask_building)
    got = fastattn.attention(q, k, v, causal=True, backend="torch")
    torch.testing.assert_close(got, expected.to(got.dtype), rtol=1e-5, atol=1e-6)
