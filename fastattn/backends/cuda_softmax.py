"""Host side of the CUDA masked softmax kernels (csrc/masked_softmax.cu via fastattn._C).

Outputs are allocated here (through fastattn._alloc, as for the triton backend); the extension
checks them and launches on the current stream.
"""

from .. import _alloc, _extension
from .._checks import rows_view



def masked_softmax_fwd(scores, key_padding_mask, causal, scale):
    _, heads, queries, n_cols = scores.shape
    out = _alloc.empty_like(scores)
    if out.numel() == 0:
        return out
    mask = None if key_padding_mask is None else key_padding_mask.contiguous()
    _extension.require().masked_softmax_fwd(rows_view(scores), mask, out.view(-1, n_cols), heads * queries,
                                 queries, causal, scale)
    return out


def masked_softmax_bwd(grad_out, out, scale):
    grad_in = _alloc.empty_like(out)
    if grad_in.numel() == 0:
        return grad_in
    _extension.require().masked_softmax_bwd(rows_view(grad_out), rows_view(out),
                                 grad_in.view(-1, out.shape[-1]), scale)
    return grad_in
