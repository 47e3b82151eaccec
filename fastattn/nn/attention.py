"""SelfAttention: multi-head self-attention with one fused QKV projection.

`packed_self_attention` is the math on packed tokens (varlen attention over cu_seqlens); the
module and the BERT block both call it. The QKV weight is [3 * hidden, hidden] with the query,
key and value rows in that order (nn.Linear layout), so three separate projections concatenated
along dim 0 are the same thing.
"""

import torch
from torch import nn

import fastattn


def _split_heads(qkv, num_heads):
    """[..., 3 * hidden] -> q, k, v, each [..., num_heads, head_dim] (views, no copies)."""
    head_dim = qkv.shape[-1] // (3 * num_heads)
    return qkv.unflatten(-1, (3, num_heads, head_dim)).unbind(-3)


def packed_self_attention(x, qkv_weight, qkv_bias, num_heads, packing, *, causal=False,
                          scale=None, dropout_p=0.0, backend=None):
    """x [T, hidden] packed tokens (see PackedBatch) -> attention context [T, hidden], before the
    output projection. One GEMM projects q, k and v for all tokens."""
    return attention_on_packed_qkv(nn.functional.linear(x, qkv_weight, qkv_bias), num_heads,
                                   packing, causal=causal, scale=scale, dropout_p=dropout_p,
                                   backend=backend)


def attention_on_packed_qkv(qkv, num_heads, packing, *, causal=False, scale=None, dropout_p=0.0,
                            backend=None):
    """qkv [T, 3 * hidden] (query, key, value columns) of packed tokens -> context [T, hidden]."""
    q, k, v = _split_heads(qkv, num_heads)
    if packing.key_padding_mask is not None:  # padding kept as rows: dense attention masks it
        def dense(t):  # [B * S, H, D] -> [B, H, S, D] (a view)
            return t.unflatten(0, (packing.batch, packing.seqlen)).transpose(1, 2)

        context = fastattn.attention(dense(q), dense(k), dense(v), causal=causal,
                                     key_padding_mask=packing.key_padding_mask, scale=scale,
                                     dropout_p=dropout_p, backend=backend)
        return context.transpose(1, 2).flatten(0, 1).flatten(-2)
    context = fastattn.attention_varlen(q, k, v, packing.cu_seqlens, packing.cu_seqlens,
                                        packing.max_seqlen, packing.max_seqlen, causal=causal,
                                        scale=scale, dropout_p=dropout_p, backend=backend)
    return context.flatten(-2)


class SelfAttention(nn.Module):
    """out(attention(qkv(x))) over padded [B, S, hidden] inputs (forward) or packed [T, hidden]
    tokens (forward_packed). dropout_p is the attention-probability dropout, used in training."""

    def __init__(self, hidden_size, num_heads, *, causal=False, dropout_p=0.0, bias=True,
                 backend=None, device=None, dtype=None):
        super().__init__()
        if hidden_size % num_heads:
            raise ValueError(f"fastattn.nn.SelfAttention: hidden_size ({hidden_size}) must be a "
                             f"multiple of num_heads ({num_heads})")
        self.num_heads, self.causal, self.dropout_p, self.backend = num_heads, causal, dropout_p, backend
        self.qkv = nn.Linear(hidden_size, 3 * hidden_size, bias=bias, device=device, dtype=dtype)
        self.out = nn.Linear(hidden_size, hidden_size, bias=bias, device=device, dtype=dtype)

    def _dropout_p(self):
        return self.dropout_p if self.training else 0.0

    def forward(self, x, key_padding_mask=None):
        """x [B, S, hidden]; key_padding_mask bool [B, S] (True = real token) or None."""
        q, k, v = (t.transpose(1, 2) for t in _split_heads(self.qkv(x), self.num_heads))
        context = fastattn.attention(q, k, v, causal=self.causal, key_padding_mask=key_padding_mask,
                                     dropout_p=self._dropout_p(), backend=self.backend)
        return self.out(context.transpose(1, 2).flatten(-2))

    def forward_packed(self, x, packing):
        """x [T, hidden] packed tokens, packing: the PackedBatch they came from."""
        context = packed_self_attention(x, self.qkv.weight, self.qkv.bias, self.num_heads, packing,
                                        causal=self.causal, dropout_p=self._dropout_p(),
                                        backend=self.backend)
        return self.out(context)

    def extra_repr(self):
        return f"num_heads={self.num_heads}, causal={self.causal}, dropout_p={self.dropout_p}"
