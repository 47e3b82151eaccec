"""PackedBatch: where the real tokens of a padded batch went when it was packed.

BERT-style encoders run every layer on the packed real tokens [T, hidden] instead of the padded
[B, S, hidden]: pack once after the embeddings, unpack once at the end. Positions that were
padding come back as zeros.

Under torch.compile a small padded batch (at most STATIC_TOKENS_UNDER_COMPILE positions) is kept
as it is instead: all B * S rows, the padding masked in attention (key_padding_mask). Unpadding
gives the traced graph a data-dependent size (torch.nonzero), and inductor captures no graph part
with one in CUDA graphs (mode "reduce-overhead"); a small batch is host-bound, so replaying it as
a CUDA graph is worth more than skipping its padding's compute. Large batches keep unpadding.
torch.jit.trace keeps the padding at every size: it records the token count as a constant, so a
packed trace would be wrong for any other mask. So do torch.func transforms (vmap has no token
count to read).
"""

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

import fastattn
from fastattn import _tracing
from fastattn.ops import cu_seqlens_facts

# Padded batches of at most this many positions (B * S) stay padded under torch.compile (see the
# module docstring). A first guess, to be set from GPU measurements: BERT-base at 2048 tokens has
# well under a millisecond of kernel time, far less than its eager host time.
STATIC_TOKENS_UNDER_COMPILE = 2048


@dataclass(frozen=True)
class PackedBatch:
    # Flat positions (in B*S) of the real tokens, in order; None when the rows are all B * S
    # positions (no padding, or padding kept: see key_padding_mask), so that packing and
    # unpacking are plain reshapes.
    indices: Optional[Tensor]
    cu_seqlens: Tensor  # int32 [B + 1]: sequence b holds packed rows cu_seqlens[b]:cu_seqlens[b+1]
    max_seqlen: int
    batch: int
    seqlen: int
    # bool [B, S] when the padded positions were kept as rows: attention must mask them and
    # unpack zeroes them. None when every row is a real token.
    key_padding_mask: Optional[Tensor] = None

    @classmethod
    def pack(cls, x, key_padding_mask=None, *, keep_padding=None):
        """x [B, S, ...] -> (x_packed [T, ...], PackedBatch). key_padding_mask: bool [B, S], True
        for real tokens (any pattern: right or left padding, holes), or None (all real).
        keep_padding: True keeps the padded positions as rows (T = B * S, static shapes), False
        drops them, None decides (kept under torch.jit.trace and torch.func, and under
        torch.compile up to STATIC_TOKENS_UNDER_COMPILE)."""
        batch, seqlen = x.shape[0], x.shape[1]
        if keep_padding is None:
            if torch.compiler.is_compiling():  # a dynamic size keeps padding: static shapes
                keep_padding = _tracing.size_at_most(batch * seqlen, STATIC_TOKENS_UNDER_COMPILE,
                                                     unknown=True)
            else:  # jit.trace would record the token count as a constant; vmap has none to read
                keep_padding = _tracing.shapes_only()
        if key_padding_mask is None or keep_padding:
            cu_seqlens = torch.arange(0, (batch + 1) * seqlen, seqlen, dtype=torch.int32, device=x.device)
            cu_seqlens = cu_seqlens_facts.vouch(cu_seqlens, batch * seqlen, seqlen)
            return x.reshape(batch * seqlen, *x.shape[2:]), cls(None, cu_seqlens, seqlen, batch,
                                                                seqlen, key_padding_mask)
        x_packed, indices, cu_seqlens, max_seqlen = fastattn.unpad(x, key_padding_mask)
        if torch.compiler.is_compiling():
            # The true longest length is data (read back from the device); the padded length is
            # a static bound on it, which keeps the traced graph free of data-dependent sizes.
            max_seqlen = seqlen
        return x_packed, cls(indices, cu_seqlens, max_seqlen, batch, seqlen)

    def unpack(self, x_packed):
        """[T, ...] -> [B, S, ...], zeros at padding positions."""
        if self.indices is not None:
            return fastattn.pad(x_packed, self.indices, self.batch, self.seqlen)
        x = x_packed.reshape(self.batch, self.seqlen, *x_packed.shape[1:])
        if self.key_padding_mask is None:
            return x
        real = self.key_padding_mask.reshape(self.batch, self.seqlen, *[1] * (x.dim() - 2))
        return torch.where(real, x, torch.zeros((), dtype=x.dtype, device=x.device))
