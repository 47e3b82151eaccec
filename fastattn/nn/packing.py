"""PackedBatch: where the real tokens of a padded batch went when it was packed.

BERT-style encoders run every layer on the packed real tokens [T, hidden] instead of the padded
[B, S, hidden]: pack once after the embeddings, unpack once at the end. Positions that were
padding come back as zeros.
"""

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

import fastattn
from fastattn.ops import cu_seqlens_facts


@dataclass(frozen=True)
class PackedBatch:
    # Flat positions (in B*S) of the real tokens, in order; None when every position is real, so
    # that packing and unpacking are plain reshapes.
    indices: Optional[Tensor]
    cu_seqlens: Tensor  # int32 [B + 1]: sequence b holds packed rows cu_seqlens[b]:cu_seqlens[b+1]
    max_seqlen: int
    batch: int
    seqlen: int

    @classmethod
    def pack(cls, x, key_padding_mask=None):
        """x [B, S, ...] -> (x_packed [T, ...], PackedBatch). key_padding_mask: bool [B, S], True
        for real tokens (any pattern: right or left padding, holes), or None (all real)."""
        batch, seqlen = x.shape[0], x.shape[1]
        if key_padding_mask is None:
            cu_seqlens = torch.arange(0, (batch + 1) * seqlen, seqlen, dtype=torch.int32, device=x.device)
            cu_seqlens = cu_seqlens_facts.vouch(cu_seqlens, batch * seqlen, seqlen)
            return x.reshape(batch * seqlen, *x.shape[2:]), cls(None, cu_seqlens, seqlen, batch, seqlen)
        x_packed, indices, cu_seqlens, max_seqlen = fastattn.unpad(x, key_padding_mask)
        if torch.compiler.is_compiling():
            # The true longest length is data (read back from the device); the padded length is
            # a static bound on it, which keeps the traced graph free of data-dependent sizes.
            max_seqlen = seqlen
        return x_packed, cls(indices, cu_seqlens, max_seqlen, batch, seqlen)

    def unpack(self, x_packed):
        """[T, ...] -> [B, S, ...], zeros at padding positions."""
        if self.indices is None:
            return x_packed.reshape(self.batch, self.seqlen, *x_packed.shape[1:])
        return fastattn.pad(x_packed, self.indices, self.batch, self.seqlen)
