"""Attention with stock PyTorch ops: the fallback that runs anywhere.

Forward: scaled_dot_product_attention with the equivalent boolean mask (SDPA's own causal flag when
Sq == Sk; bottom-right causal, key padding and varlen sequence bounds as an explicit mask). SDPA
returns NaN for a query row that sees no key, so such rows are given a dummy all-visible row and
their output is zeroed. Varlen inputs are padded to [B, H, max_seqlen, D] and packed back.
Dropout draws the same Philox keep mask as the triton backend
(fastattn.reference.attention_dropout_keep_mask) and runs the eager composition, since SDPA's own
dropout cannot be replayed.

Saved for the backward (SAVED_SOFTMAX = "none"): nothing; the backward re-runs the forward under
autograd, which with a fixed seed draws the same dropout mask.
"""

import contextlib

import torch
import torch.nn.functional as F

from .._rng import dropout_scale
from ..reference import attention_dropout_keep_mask, attention_visible_keys

SAVED_SOFTMAX = "none"


def saved_softmax_like(q, k, cu_seqlens_q, max_seqlen_q, max_seqlen_k):
    return q.new_empty(0, dtype=torch.float32)


def _sdpa(q, k, v, visible, is_causal, scale):
    """SDPA with rows that see no key returning zeros instead of NaN."""
    gqa = q.shape[1] != k.shape[1]
    if visible is None:
        return F.scaled_dot_product_attention(q, k, v, is_causal=is_causal, scale=scale,
                                              enable_gqa=gqa)
    sees_a_key = visible.any(-1, keepdim=True)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=visible | ~sees_a_key, scale=scale,
                                         enable_gqa=gqa)
    return out * sees_a_key.to(out.dtype)


def _eager_with_dropout(q, k, v, visible, scale, dropout_p, seed):
    batch, heads, seqlen_q, seqlen_k = q.shape[0], q.shape[1], q.shape[2], k.shape[2]
    group = heads // k.shape[1]
    k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
    scores = torch.matmul(q, k.transpose(-1, -2)).float() * scale
    if visible is None:
        visible = torch.ones(1, 1, seqlen_q, seqlen_k, dtype=torch.bool, device=q.device)
    sees_a_key = visible.any(-1, keepdim=True)
    scores = scores.masked_fill(~visible, float("-inf")).masked_fill(~sees_a_key, 0.0)
    probs = torch.softmax(scores, dim=-1).masked_fill(~visible, 0.0)
    keep = attention_dropout_keep_mask(seed, batch, heads, seqlen_q, seqlen_k, dropout_p, q.device)
    probs = probs * keep * dropout_scale(dropout_p)
    return torch.matmul(probs.to(v.dtype), v)


def _dense_attention(q, k, v, visible, causal, scale, dropout_p, seed):
    """q [B, H, Sq, D]; `visible` a bool [B or 1, 1, Sq, Sk] mask that already holds the causal
    part, or None (then `causal` alone says which keys each query sees)."""
    # SDPA's causal flag is top-left aligned: the same as ours only when Sq == Sk.
    sdpa_causal = causal and visible is None and seed is None and q.shape[2] == k.shape[2]
    if causal and visible is None and not sdpa_causal:
        visible = attention_visible_keys(q.shape[2], k.shape[2], causal=True, device=q.device)
    if seed is not None:
        return _eager_with_dropout(q, k, v, visible, scale, dropout_p, seed)
    return _sdpa(q, k, v, visible, sdpa_causal, scale)


def _varlen_positions(cu_seqlens, total):
    """(sequence, position inside it) of each packed token."""
    tokens = torch.arange(total, device=cu_seqlens.device)
    sequence = torch.searchsorted(cu_seqlens[1:].long(), tokens, right=True)
    return sequence, tokens - cu_seqlens.long()[sequence]


def _to_padded(x, sequence, position, batch, max_seqlen):
    padded = x.new_zeros(batch, max_seqlen, *x.shape[1:])
    padded[sequence, position] = x
    return padded.transpose(1, 2)  # [B, H, S, D]


def _varlen_visible(cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, causal):
    """Bool [B, 1, max_q, max_k]: key j of sequence b is visible to its query i."""
    lengths_q = (cu_seqlens_q[1:] - cu_seqlens_q[:-1]).long()[:, None, None, None]
    lengths_k = (cu_seqlens_k[1:] - cu_seqlens_k[:-1]).long()[:, None, None, None]
    rows = torch.arange(max_seqlen_q, device=cu_seqlens_q.device)[:, None]
    cols = torch.arange(max_seqlen_k, device=cu_seqlens_q.device)[None, :]
    visible = (rows < lengths_q) & (cols < lengths_k)
    if causal:
        visible = visible & (cols <= rows + lengths_k - lengths_q)
    return visible


def _attention(q, k, v, key_padding_mask, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k,
               causal, scale, dropout_p, seed):
    seed = None if seed is None else int(seed)
    if cu_seqlens_q is None:
        visible = None
        if key_padding_mask is not None:
            visible = attention_visible_keys(q.shape[2], k.shape[2], causal=causal,
                                             key_padding_mask=key_padding_mask, device=q.device)
        return _dense_attention(q, k, v, visible, causal, scale, dropout_p, seed)
    batch = cu_seqlens_q.shape[0] - 1
    seq_q, pos_q = _varlen_positions(cu_seqlens_q, q.shape[0])
    seq_k, pos_k = _varlen_positions(cu_seqlens_k, k.shape[0])
    padded = _dense_attention(
        _to_padded(q, seq_q, pos_q, batch, max_seqlen_q), _to_padded(k, seq_k, pos_k, batch, max_seqlen_k),
        _to_padded(v, seq_k, pos_k, batch, max_seqlen_k),
        _varlen_visible(cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, causal),
        False, scale, dropout_p, seed)
    return padded.transpose(1, 2)[seq_q, pos_q]


def attention_fwd(q, k, v, key_padding_mask, cu_seqlens_q, cu_seqlens_k, max_seqlen_q,
                  max_seqlen_k, causal, scale, dropout_p, seed):
    with torch.no_grad():
        out = _attention(q, k, v, key_padding_mask, cu_seqlens_q, cu_seqlens_k, max_seqlen_q,
                         max_seqlen_k, causal, scale, dropout_p, seed)
    return out.contiguous(), saved_softmax_like(q, k, cu_seqlens_q, max_seqlen_q, max_seqlen_k)


@contextlib.contextmanager
def _autograd_inside_custom_op():
    """Re-enable autograd recording: a custom op's implementation runs with the autograd dispatch
    keys excluded, so torch.enable_grad() alone records nothing. Lifting that exclusion for the
    recompute lets SDPA's own (memory-efficient) backward do the work."""
    included = torch._C._dispatch_tls_local_include_set()
    excluded = torch._C._dispatch_tls_local_exclude_set()
    with torch.enable_grad(), torch._C._ForceDispatchKeyGuard(
            included, excluded.remove(torch._C.DispatchKey.AutogradFunctionality)):
        yield


def attention_bwd(dout, q, k, v, out, saved_softmax, key_padding_mask, cu_seqlens_q, cu_seqlens_k,
                  max_seqlen_q, max_seqlen_k, causal, scale, dropout_p, seed):
    with _autograd_inside_custom_op():
        leaves = [t.detach().requires_grad_() for t in (q, k, v)]
        recomputed = _attention(*leaves, key_padding_mask, cu_seqlens_q, cu_seqlens_k, max_seqlen_q,
                                max_seqlen_k, causal, scale, dropout_p, seed)
        grads = torch.autograd.grad(recomputed, leaves, dout, allow_unused=True)
    # A leaf the result does not depend on (no keys at all) gets None from autograd.
    return tuple(torch.zeros_like(t) if g is None else g.contiguous() for g, t in zip(grads, leaves))
