"""Host-side facts about an attention call that every kernel backend needs: the problem's sizes,
per-tensor strides in one (batch, head, sequence) convention, and the saved log-sum-exp layout.

Dense tensors are [B, H, S, D]; varlen tensors are [T, H, D] with sequences found through
cu_seqlens, so their batch stride is 0 and a sequence starts at token cu_seqlens[b].
The log-sum-exp is float32 [B, H, Sq] (dense) or [Tq, H] (varlen): in both cases its rows are in
the order of the contiguous output's rows, which lets row-wise kernels treat them as flat.
"""

from typing import NamedTuple

import torch

from .. import _tensor_memo


class AttentionProblem(NamedTuple):
    batch: int
    heads: int
    kv_heads: int
    seqlen_q: int  # dense Sq, or max_seqlen_q for varlen
    seqlen_k: int
    head_dim: int
    varlen: bool


def describe(q, k, cu_seqlens_q, max_seqlen_q, max_seqlen_k):
    if cu_seqlens_q is not None:
        return AttentionProblem(cu_seqlens_q.shape[0] - 1, q.shape[1], k.shape[1], max_seqlen_q,
                                max_seqlen_k, q.shape[2], True)
    return AttentionProblem(q.shape[0], q.shape[1], k.shape[1], q.shape[2], k.shape[2],
                            q.shape[3], False)


def seq_strides(x, varlen):
    """(stride_batch, stride_head, stride_seq) of a q/k/v/out-like tensor."""
    if varlen:
        return 0, x.stride(1), x.stride(0)
    return x.stride(0), x.stride(1), x.stride(2)


def lse_shape(q, varlen):
    return (q.shape[0], q.shape[1]) if varlen else tuple(q.shape[:3])


def lse_strides(lse, varlen):
    """(stride_batch, stride_head, stride_seq) of a log-sum-exp (or delta) tensor."""
    if varlen:
        return 0, lse.stride(1), lse.stride(0)
    return lse.stride(0), lse.stride(1), lse.stride(2)


def key_bounds(key_padding_mask):
    """int32 [B, 2]: (first real key, one past the last real key) per batch row, (0, 0) when the row
    has none. Kernels skip the key blocks outside this range without reading the mask there."""
    seqlen_k = key_padding_mask.shape[1]
    if seqlen_k == 0:  # no keys at all (argmax refuses an empty dimension)
        return torch.zeros(key_padding_mask.shape[0], 2, dtype=torch.int32,
                           device=key_padding_mask.device)
    as_int = key_padding_mask.to(torch.int32)
    first = as_int.argmax(dim=1)
    end = seqlen_k - as_int.flip(1).argmax(dim=1)
    has_key = key_padding_mask.any(dim=1)
    bounds = torch.stack([torch.where(has_key, first, 0), torch.where(has_key, end, 0)], dim=1)
    return bounds.to(torch.int32).contiguous()


def longest_first(lengths):
    """int32 [B]: the batch rows by decreasing length (ties in batch order), the order in which
    the attention kernels take them (kernels.attention_tiles.program_batch)."""
    return torch.argsort(lengths, descending=True, stable=True).to(torch.int32)


def dot_precision(dtype):
    """float32 is computed to full float32 accuracy unless the user allowed TF32 in torch (DESIGN §2):
    3-pass TF32 ("tf32x3") on tensor cores; "ieee" lowers to FMA loops that spill at useful tiles.
    16-bit inputs ignore the setting."""
    if dtype == torch.float32 and not torch.backends.cuda.matmul.allow_tf32:
        return "tf32x3"
    return "tf32"


def varlen_token_positions(cu_seqlens, total):
    """(sequence, position inside it) of each of the `total` packed tokens, int64 tensors: where a
    varlen token sits once padded to [B, max_seqlen]."""
    tokens = torch.arange(total, device=cu_seqlens.device)
    sequence = torch.searchsorted(cu_seqlens[1:].long(), tokens, right=True)
    return sequence, tokens - cu_seqlens.long()[sequence]


def _remembered_positions(cu_seqlens, total):
    """varlen_token_positions, kept on the cu_seqlens tensor: a patched model hands the same one to
    every layer, forward and backward (about six small launches saved per use)."""
    return _tensor_memo.remembered(cu_seqlens, f"_fastattn_token_positions_{total}",
                                   lambda t: varlen_token_positions(t, total))


class VarlenPadding:
    """Packed varlen tensors [T, H, D] as a padded dense problem [B, H, max_seqlen, D] (zeros past
    each sequence) and back: for backends whose kernels take the dense layout."""

    def __init__(self, q, k, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k):
        self.batch = cu_seqlens_q.shape[0] - 1
        self.max_q, self.max_k = max_seqlen_q, max_seqlen_k
        self.q_at = _remembered_positions(cu_seqlens_q, q.shape[0])
        self.k_at = _remembered_positions(cu_seqlens_k, k.shape[0])

    def _pad(self, x, at, max_seqlen):
        padded = x.new_zeros(self.batch, max_seqlen, *x.shape[1:])
        padded[at] = x
        return padded.transpose(1, 2)

    def pad_q(self, x):
        return self._pad(x, self.q_at, self.max_q)

    def pad_k(self, x):
        return self._pad(x, self.k_at, self.max_k)

    def pack_q(self, padded):
        return padded.transpose(1, 2)[self.q_at].contiguous()

    def pack_k(self, padded):
        return padded.transpose(1, 2)[self.k_at].contiguous()
