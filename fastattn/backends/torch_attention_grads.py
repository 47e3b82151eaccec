"""The attention backward in closed form, for the torch backend.

With P = softmax(scale * q k^T over the visible keys) (P = 0 on rows that see no key) and the
dropout keep mask folded into M = keep / (1 - p) (M = 1 without dropout):

    dV = (P M)^T dO        dP = (dO V^T) M        dS = P (dP - rowsum(dP P))
    dQ = scale dS K        dK = scale dS^T Q

Written out instead of differentiating a recomputed forward because a custom op's implementation
runs with autograd switched off (only private dispatch-key guards turn it back on), and torch.func
transforms wrap tensors in a way that dispatch modes (opcheck's schema check, FlopCounterMode)
reject. Matmuls run in the input dtype, the softmax and its derivative in float32 (float64 for
float64), as the forward.

Query rows are taken in blocks so that the float32 [B, H, rows, Sk] temporaries stay bounded (the
fused SDPA backward needs none); dK and dV add up over the blocks.
"""

import torch

from .._rng import dropout_scale
from ._precision import compute_dtype

# Elements of one [B, H, rows, Sk] float32 temporary (64 MiB); a handful are alive at once.
BLOCK_ELEMENTS = 1 << 24


def _row_blocks(batch, heads, seqlen_q, seqlen_k):
    rows = max(1, BLOCK_ELEMENTS // max(1, batch * heads * seqlen_k))
    return [slice(start, min(start + rows, seqlen_q)) for start in range(0, seqlen_q, rows)]


def every_row_sees_a_key_on_cpu(sees_a_key):
    """True when sees_a_key ([..., 1] bool, a row's any() over its visible keys) is all True and
    on the CPU, where reading it back is no device sync: the usual case, in which the no-key-row
    fill and zeroing can be skipped. Always False on GPUs (reading would sync)."""
    return sees_a_key.device.type == "cpu" and bool(sees_a_key.all())


def probabilities(q, k, visible, scale):
    """P (float32, float64 for float64) for q [B, H, r, D] against k [B, H, Sk, D]; visible bool
    [B or 1, 1, r, Sk] or None."""
    scores = torch.matmul(q, k.transpose(-1, -2)).to(compute_dtype(q.dtype)) * scale
    if visible is None:
        return torch.softmax(scores, dim=-1)
    # In place: scores is this function's own tensor, and no backward reads it (the recomputed
    # forward of the torch backend's backward differentiates through here).
    scores.masked_fill_(~visible, float("-inf"))
    sees_a_key = visible.any(-1, keepdim=True)
    if every_row_sees_a_key_on_cpu(sees_a_key):  # hidden keys come out as exp(-inf) = 0
        return torch.softmax(scores, dim=-1)
    # A row that sees no key would be softmax(-inf, ...) = NaN: it takes zeros, then P = 0 there.
    scores.masked_fill_(~sees_a_key, 0.0)
    return torch.softmax(scores, dim=-1) * sees_a_key


def _sum_query_groups(grad, kv_heads):
    """[B, H, Sk, D] -> [B, Hkv, Sk, D]: query head h read KV head h // (H / Hkv)."""
    batch, heads = grad.shape[:2]
    return grad.reshape(batch, kv_heads, heads // kv_heads, *grad.shape[2:]).sum(2)


def attention_grads(dout, q, k, v, visible, keep, dropout_p, scale):
    """(dq, dk, dv) of softmax(scale q k^T, visible) (with dropout `keep`) @ v.

    q, dout [B, H, Sq, D]; k, v [B, Hkv, Sk, D]; visible bool [B or 1, 1, Sq, Sk] or None (all
    visible); keep bool [B, H, Sq, Sk] or None (no dropout)."""
    kv_heads, group = k.shape[1], q.shape[1] // k.shape[1]
    k_full, v_full = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
    dq = torch.empty_like(q)
    accumulate = compute_dtype(q.dtype)
    dk_full = torch.zeros(k_full.shape, dtype=accumulate, device=k.device)
    dv_full = torch.zeros(v_full.shape, dtype=accumulate, device=v.device)
    for rows in _row_blocks(q.shape[0], q.shape[1], q.shape[2], k.shape[2]):
        probs = probabilities(q[:, :, rows], k_full, None if visible is None else visible[:, :, rows],
                               scale)
        grad_probs = torch.matmul(dout[:, :, rows], v_full.transpose(-1, -2)).to(accumulate)
        dropped = probs
        if keep is not None:
            multiplier = keep[:, :, rows].to(accumulate) * dropout_scale(dropout_p)
            dropped, grad_probs = probs * multiplier, grad_probs * multiplier
        dv_full += torch.matmul(dropped.to(v.dtype).transpose(-1, -2), dout[:, :, rows]).to(accumulate)
        grad_scores = probs * (grad_probs - (grad_probs * probs).sum(-1, keepdim=True)) * scale
        grad_scores = grad_scores.to(q.dtype)
        dq[:, :, rows] = torch.matmul(grad_scores, k_full)
        dk_full += torch.matmul(grad_scores.transpose(-1, -2), q[:, :, rows]).to(accumulate)
    return (dq, _sum_query_groups(dk_full, kv_heads).to(k.dtype),
            _sum_query_groups(dv_full, kv_heads).to(v.dtype))
