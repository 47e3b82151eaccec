"""fastattn.unpad / fastattn.pad: between padded [B, S, ...] batches and packed [T, ...] tokens,
the layout fastattn.attention_varlen takes (flash-attn's bert_padding, in stock PyTorch ops).

Both are differentiable (index_select / index_put under autograd). unpad reads max_seqlen back to
the host, as the kernels' grids need it as a Python int.
"""

import torch

from .. import _checks
from . import cu_seqlens_facts


def unpad(x, key_padding_mask):
    """x [B, S, ...] -> (x_packed [T, ...], indices [T] int64 into B * S, cu_seqlens int32 [B + 1],
    max_seqlen int), keeping the tokens whose key_padding_mask [B, S] is True, in order."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"fastattn.unpad: x must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() < 2:
        raise ValueError(f"fastattn.unpad: x must be [batch, seq, ...], got shape {list(x.shape)}")
    _checks.check_bool_mask("unpad", "key_padding_mask", key_padding_mask)
    _checks.check_shape("unpad", "key_padding_mask", key_padding_mask, x.shape[:2])
    _checks.check_same_device("unpad", [("x", x), ("key_padding_mask", key_padding_mask)])
    lengths = key_padding_mask.sum(dim=1, dtype=torch.int32)
    indices = torch.nonzero(key_padding_mask.flatten(), as_tuple=False).flatten()
    cu_seqlens = torch.nn.functional.pad(torch.cumsum(lengths, dim=0, dtype=torch.int32), (1, 0))
    max_seqlen = int(lengths.max().item()) if lengths.numel() else 0
    # Built from these facts, so attention_varlen need not read it back to check it.
    cu_seqlens = cu_seqlens_facts.vouch(cu_seqlens, indices.shape[0], max_seqlen)
    packed = x.reshape(x.shape[0] * x.shape[1], *x.shape[2:]).index_select(0, indices)
    return packed, indices, cu_seqlens, max_seqlen


def pad(x_packed, indices, batch, seqlen):
    """The inverse of unpad: x_packed [T, ...] -> [batch, seqlen, ...], zeros where nothing was kept."""
    if not isinstance(x_packed, torch.Tensor):
        raise TypeError(f"fastattn.pad: x_packed must be a torch.Tensor, got {type(x_packed).__name__}")
    if not isinstance(indices, torch.Tensor) or indices.dtype not in (torch.int64, torch.int32):
        raise TypeError("fastattn.pad: indices must be an int64 (or int32) tensor, as unpad returns")
    _checks.check_int("pad", "batch", batch, low=0)
    _checks.check_int("pad", "seqlen", seqlen, low=0)
    if indices.dim() != 1 or indices.shape[0] != x_packed.shape[0]:
        raise ValueError(f"fastattn.pad: indices must be 1D with one entry per packed token "
                         f"({x_packed.shape[0]}), got shape {list(indices.shape)}")
    _checks.check_same_device("pad", [("x_packed", x_packed), ("indices", indices)])
    out = x_packed.new_zeros(batch * seqlen, *x_packed.shape[1:])
    out = out.index_put((indices.long(),), x_packed)
    return out.reshape(batch, seqlen, *x_packed.shape[1:])
