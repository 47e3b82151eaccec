"""Masked softmax with stock PyTorch ops, in float32 (float64 for float64): the fallback that runs
anywhere."""

import torch

from ._precision import compute_dtype


def _hidden_keys(shape, key_padding_mask, causal, device):
    """Bool, broadcastable to [B, H, Sq, Sk]: True where a key is hidden, or None when none is."""
    _, _, queries, keys = shape
    hidden = None
    if causal:  # bottom-right aligned: query i sees keys j <= i + Sk - Sq
        hidden = torch.ones(queries, keys, dtype=torch.bool, device=device).triu(keys - queries + 1)
    if key_padding_mask is not None:
        padding = ~key_padding_mask[:, None, None, :]
        hidden = padding if hidden is None else hidden | padding
    return hidden


def masked_softmax_fwd(scores, key_padding_mask, causal, scale):
    logits = scores.to(compute_dtype(scores.dtype)) * scale
    hidden = _hidden_keys(scores.shape, key_padding_mask, causal, scores.device)
    if hidden is not None:
        logits = logits.masked_fill(hidden, float("-inf"))
    # A row with nothing visible is softmax(all -inf) = NaN: zeros instead.
    probs = torch.softmax(logits, dim=-1).nan_to_num_(nan=0.0)
    return probs.to(scores.dtype).contiguous()


def masked_softmax_bwd(grad_out, out, scale):
    dtype = compute_dtype(out.dtype)
    y, dy = out.to(dtype), grad_out.to(dtype)
    dx = scale * y * (dy - (dy * y).sum(dim=-1, keepdim=True))
    return dx.to(out.dtype).contiguous()
