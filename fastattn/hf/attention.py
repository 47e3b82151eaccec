"""The `fastattn` attention implementation for transformers: an AttentionInterface function and
its AttentionMaskInterface partner.

The two must be registered together. Without a mask function of its own, transformers builds no
mask at all for an implementation it does not know, and the kernel would silently attend to
padding. The mask function describes the common patterns compactly: for plain causal or
bidirectional attention, and for the single-query decoding steps of a static cache, it returns
the 2D key padding mask (bool [B, Sk], True = a key the query may see) or None, which the
attention function hands to fastattn.attention, and which the patched BERT encoder uses to pack
the batch. Everything else (user-supplied 4D masks, packed sequences given by position_ids,
sliding windows, a static cache's prefill) becomes a dense 4D bool mask and runs through
transformers' SDPA path: slower, still correct.
"""

import numbers

import torch
import torch.nn.functional as F
from transformers import AttentionInterface
from transformers import masking_utils
from transformers.integrations.sdpa_attention import sdpa_attention_forward

import fastattn
from fastattn import _tracing

NAME = "fastattn"
# Set on attention modules by patch(); None means fastattn's automatic choice.
BACKEND = "_fastattn_backend"


def _is_offset(value):
    # Python ints, or SymInts under torch.compile; a tensor offset (static caches) is not.
    return isinstance(value, (numbers.Integral, torch.SymInt))


def _is_key_padding_pattern(mask_function, q_length, kv_length, q_offset, kv_offset):
    """True when the mask is exactly 'plain causal or bidirectional, plus key padding', with
    causal alignment matching fastattn's (bottom-right: the queries are the last q_length keys)."""
    if not (_is_offset(q_offset) and _is_offset(kv_offset)) or kv_offset != 0:
        return False
    if mask_function is masking_utils.bidirectional_mask_function:
        return True
    return mask_function is masking_utils.causal_mask_function and q_offset + q_length == kv_length


def _is_single_query_decode(mask_function, q_length, kv_offset):
    """One causal query against keys from position 0: what a decoding step with a static cache
    asks (its query position q_offset a tensor, its keys the whole cache, the unwritten tail
    included). Causality then only hides keys: key j is visible when j <= q_offset."""
    return (mask_function is masking_utils.causal_mask_function and q_length == 1
            and _is_offset(kv_offset) and kv_offset == 0)


def _key_padding(attention_mask, kv_length):
    """attention_mask as bool [B, kv_length]; a mask shorter than the keys leaves the extra keys
    out, as in transformers."""
    missing = kv_length - attention_mask.shape[-1]
    if missing > 0:
        attention_mask = F.pad(attention_mask, (0, missing))
    return attention_mask[:, :kv_length].to(torch.bool)


def _none_if_all_visible(mask):
    # A mask with no padding says nothing: None spares every layer its mask handling (and BERT its
    # unpadding). One read of the mask per forward, as transformers' own sdpa path makes to skip
    # its masks; not while a trace records the call or torch.func runs it (the answer is data).
    if not _tracing.shapes_only() and bool(mask.all()):
        return None
    return mask


def fastattn_mask(batch_size, q_length, kv_length, q_offset=0, kv_offset=0,
                  mask_function=masking_utils.causal_mask_function, attention_mask=None, **kwargs):
    """AttentionMaskInterface entry: a 2D key padding mask (or None) when that says everything,
    else the dense 4D bool mask transformers' SDPA path would build."""
    if _is_key_padding_pattern(mask_function, q_length, kv_length, q_offset, kv_offset):
        if attention_mask is None:
            return None
        return _none_if_all_visible(_key_padding(attention_mask, kv_length))
    if _is_single_query_decode(mask_function, q_length, kv_offset):
        device = (attention_mask.device if attention_mask is not None else kwargs.get("device")
                  or getattr(q_offset, "device", None))
        written = torch.arange(kv_length, device=device) <= q_offset
        mask = (written.expand(batch_size, kv_length) if attention_mask is None
                else _key_padding(attention_mask, kv_length) & written)
        return _none_if_all_visible(mask)
    kwargs.update(allow_is_causal_skip=False, allow_is_bidirectional_skip=False)
    return masking_utils.sdpa_mask(batch_size=batch_size, q_length=q_length, kv_length=kv_length,
                                   q_offset=q_offset, kv_offset=kv_offset,
                                   mask_function=mask_function, attention_mask=attention_mask,
                                   **kwargs)


def fastattn_attention_forward(module, query, key, value, attention_mask, dropout=0.0,
                               scaling=None, is_causal=None, **kwargs):
    """AttentionInterface entry: q [B, H, Sq, D], k/v [B, Hkv, Sk, D] -> ([B, Sq, H, D], None).

    Attention weights are never materialised (like transformers' sdpa), so none are returned.
    """
    if attention_mask is not None and attention_mask.dim() != 2:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                      scaling=scaling, is_causal=is_causal, **kwargs)
    if attention_mask is not None and attention_mask.dtype != torch.bool:
        raise TypeError("fastattn attention: a 2D attention mask must be a bool key padding mask "
                        f"(True = real token), got {attention_mask.dtype}; build masks through "
                        "transformers' create_*_mask with attn_implementation='fastattn'")
    causal = getattr(module, "is_causal", False) if is_causal is None else is_causal
    output = fastattn.attention(query, key, value, causal=bool(causal),
                                key_padding_mask=attention_mask, scale=scaling,
                                dropout_p=dropout, backend=getattr(module, BACKEND, None))
    return output.transpose(1, 2), None


def register():
    """Make attn_implementation='fastattn' known to transformers (idempotent)."""
    AttentionInterface.register(NAME, fastattn_attention_forward)
    masking_utils.AttentionMaskInterface.register(NAME, fastattn_mask)
