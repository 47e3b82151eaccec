"""Host side of the cuda attention backend: the Megatron-style path.

Forward: scores = q k^T (torch.matmul, i.e. cuBLAS), then one fused kernel (csrc/masked_softmax.cu
through fastattn._C.attention_softmax_fwd) applies scale, the causal / padding / varlen mask and the
softmax, writing the probabilities P and, under dropout, Z = P * keep / (1 - p); then out = Z v.
Backward: dZ = dout v^T; one fused kernel regenerates the keep mask from the seed and writes
dScores = scale * P * (dP - rowsum(dP * P)) with dP = dZ * keep / (1 - p), and Z again; then
dv = Z^T dout, dq = dScores k, dk = dScores^T q.

Saved for the backward (SAVED_SOFTMAX = "probs"): P, [B, H, Sq, Sk] in the input dtype. Not Z: it
is the mask in disguise (the design regenerates the mask, never stores it), and the backward
kernel rewrites it for the cost of one store while it reads P anyway.

Scores, P, Z and dScores are in the input dtype, as in Megatron and in eager attention: float32
scores would double the memory of the [B, H, Sq, Sk] tensors for 16-bit inputs, and the kernels
already compute in float32 (the scale is applied there, before exp, not rounded into the scores).
float32 inputs run float32 GEMMs, which honour torch.backends.cuda.matmul.allow_tf32 as torch does.

GQA/MQA without copies: the G = H / Hkv query heads that share a KV head are folded into the query
dimension ([B, H, Sq, D] viewed as [B, Hkv, G * Sq, D]), so each GEMM runs per KV head, the scores
come out as [B, H, Sq, Sk] rows, and dk/dv sum over the group inside the GEMM's reduction.

Varlen: packed q/k/v are padded to [B, H, max_seqlen, D] (zeros past each sequence) and the
kernels take cu_seqlens to mask each sequence's rows and keys; the results are packed back.

Decoding (dense calls of at most DECODE_MAX_QUERIES queries, no dropout, a head dim of whole
16-byte vectors up to 512 bytes: `takes_fused_decode`) runs one fused kernel instead
(csrc/decode_attention.h: split-key flash decoding, one C++ call, no scores or probabilities
computed in memory). Its saved output is an unwritten buffer of P's shape: a backward through such
a call (rare: training does not decode) recomputes P with the Megatron-style forward first. The
buffer keeps the saved output's shape the same on both paths, so the fake function agrees with
every real call, also where torch.compile or torch.export traced Sq as a dynamic size (the fake
cannot know then which path a call of up to 16 queries will take, and inductor asserts the
shapes of a custom op's outputs).
"""

import torch

from .. import _alloc, _extension, _tracing
from .._rng import dropout_scale
from ._attention_layout import VarlenPadding

SAVED_SOFTMAX = "probs"
DECODE_MAX_QUERIES = 16
_DECODE_VECTOR_BYTES, _DECODE_MAX_ROW_BYTES = 16, 512  # csrc/decode_attention.h


def takes_fused_decode(q, cu_seqlens_q, dropout_p):
    """Whether this call runs the fused decode kernels (see the module's docstring)."""
    if cu_seqlens_q is not None or dropout_p != 0.0:
        return False
    row_bytes = q.shape[-1] * q.element_size()
    return (row_bytes % _DECODE_VECTOR_BYTES == 0 and row_bytes <= _DECODE_MAX_ROW_BYTES
            and _tracing.size_at_most(q.shape[2], DECODE_MAX_QUERIES, unknown=False))


def saved_softmax_like(q, k, cu_seqlens_q, max_seqlen_q, max_seqlen_k):
    if cu_seqlens_q is not None:
        shape = (cu_seqlens_q.shape[0] - 1, q.shape[1], max_seqlen_q, max_seqlen_k)
    else:
        shape = (q.shape[0], q.shape[1], q.shape[2], k.shape[2])
    return q.new_empty(shape)


def _grouped(x, kv_heads):
    """[B, H, S, D] -> [B, Hkv, G * S, D] (a view when x allows it, else a copy)."""
    batch, heads, seqlen, head_dim = x.shape
    return x.reshape(batch, kv_heads, heads // kv_heads * seqlen, head_dim)


def _rows(x):
    """A contiguous [..., Sk] tensor as [rows, Sk]."""
    return x.view(-1, x.shape[-1])


def _contiguous(x):
    return None if x is None else x.contiguous()


def _dropped_like(probs, seed):
    return None if seed is None else _alloc.empty_like(probs)


def _dense_fwd(q, k, v, key_padding_mask, cu_seqlens_q, cu_seqlens_k, causal, scale, dropout_p, seed):
    batch, heads, seqlen_q, _ = q.shape
    kv_heads, seqlen_k = k.shape[1], k.shape[2]
    q_grouped = _grouped(q, kv_heads)
    probs = _alloc.empty((batch, heads, seqlen_q, seqlen_k), q)
    dropped = _dropped_like(probs, seed)
    if probs.numel() > 0:
        scores = torch.matmul(q_grouped, k.transpose(-1, -2)).view(probs.shape)
        mask = None if key_padding_mask is None else key_padding_mask.contiguous()
        _extension.require().attention_softmax_fwd(
            _rows(scores), mask, _contiguous(cu_seqlens_q), _contiguous(cu_seqlens_k), _rows(probs),
            None if dropped is None else _rows(dropped), heads * seqlen_q, seqlen_q, causal, scale,
            dropout_p, dropout_scale(dropout_p), seed)
    weights = probs if dropped is None else dropped
    out = torch.matmul(_grouped(weights, kv_heads), v)  # zeros when Sk == 0
    return out.view(batch, heads, seqlen_q, q.shape[3]), probs


def _dense_bwd(dout, q, k, v, probs, scale, dropout_p, seed):
    batch, heads, seqlen_q, head_dim = q.shape
    kv_heads = k.shape[1]
    dout_grouped = _grouped(dout, kv_heads)
    if probs.numel() == 0:
        return torch.zeros_like(q), torch.zeros_like(k), torch.zeros_like(v)
    # dZ, overwritten in place by dScores: the kernel reads each element before writing it.
    grad = torch.matmul(dout_grouped, v.transpose(-1, -2)).view(probs.shape)
    dropped = _dropped_like(probs, seed)
    _extension.require().attention_softmax_bwd(
        _rows(grad), _rows(probs), _rows(grad), None if dropped is None else _rows(dropped), scale,
        dropout_p, dropout_scale(dropout_p), seed)
    weights = _grouped(probs if dropped is None else dropped, kv_heads)
    grad_scores = _grouped(grad, kv_heads)
    dv = torch.matmul(weights.transpose(-1, -2), dout_grouped)
    dq = torch.matmul(grad_scores, k).view(batch, heads, seqlen_q, head_dim)
    dk = torch.matmul(grad_scores.transpose(-1, -2), _grouped(q, kv_heads))
    return dq, dk, dv


def _vector_aligned(t):
    """t itself when the decode kernels can load it (address and strides in whole 16-byte vectors,
    unit stride in the head dim), else an aligned copy: a view at an odd offset into a larger
    buffer is legal input."""
    size = t.element_size()
    stride_b, stride_h, stride_s, stride_d = t.stride()
    # One test for all four: a bitwise or has its low four bits clear exactly when each has.
    if stride_d == 1 and (t.data_ptr() | stride_b * size | stride_h * size
                          | stride_s * size) % _DECODE_VECTOR_BYTES == 0:
        return t
    return t.clone(memory_format=torch.contiguous_format)


def _fused_decode_fwd(q, k, v, key_padding_mask, causal, scale):
    out = _alloc.empty(q.shape, q)
    mask = None if key_padding_mask is None else key_padding_mask.contiguous()
    _extension.require().decode_attention_fwd(*(_vector_aligned(t) for t in (q, k, v)), mask, out,
                                              causal, scale)
    return out, saved_softmax_like(q, k, None, q.shape[2], k.shape[2])  # unwritten: see above


def attention_fwd(q, k, v, key_padding_mask, cu_seqlens_q, cu_seqlens_k, max_seqlen_q,
                  max_seqlen_k, causal, scale, dropout_p, seed):
    if takes_fused_decode(q, cu_seqlens_q, dropout_p):
        return _fused_decode_fwd(q, k, v, key_padding_mask, causal, scale)
    if cu_seqlens_q is None:
        out, probs = _dense_fwd(q, k, v, key_padding_mask, None, None, causal, scale, dropout_p, seed)
        return out.contiguous(), probs
    padding = VarlenPadding(q, k, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k)
    out, probs = _dense_fwd(padding.pad_q(q), padding.pad_k(k), padding.pad_k(v), None,
                            cu_seqlens_q, cu_seqlens_k, causal, scale, dropout_p, seed)
    return padding.pack_q(out), probs


def attention_bwd(dout, q, k, v, out, saved_softmax, key_padding_mask, cu_seqlens_q, cu_seqlens_k,
                  max_seqlen_q, max_seqlen_k, causal, scale, dropout_p, seed):
    if takes_fused_decode(q, cu_seqlens_q, dropout_p):  # its saved P is unwritten: computed again
        _out, saved_softmax = _dense_fwd(q, k, v, key_padding_mask, None, None, causal, scale,
                                         0.0, None)
    if cu_seqlens_q is None:
        grads = _dense_bwd(dout, q, k, v, saved_softmax, scale, dropout_p, seed)
        return tuple(g.contiguous() for g in grads)
    padding = VarlenPadding(q, k, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k)
    dq, dk, dv = _dense_bwd(padding.pad_q(dout), padding.pad_q(q), padding.pad_k(k),
                            padding.pad_k(v), saved_softmax, scale, dropout_p, seed)
    return padding.pack_q(dq), padding.pack_k(dk), padding.pack_k(dv)
