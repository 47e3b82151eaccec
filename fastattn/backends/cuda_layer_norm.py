"""Host side of the CUDA LayerNorm + residual kernels (csrc/layer_norm_residual.cu via fastattn._C).

Outputs are allocated here (through fastattn._alloc, as for the triton backend); the extension
checks them, launches, and sums the float32 dW/dB partials it keeps internally.
"""

import torch

from .. import _alloc, _extension
from .._rng import dropout_scale



def layer_norm_residual_fwd(x, residual, weight, bias, eps, dropout_p, seed, store_h):
    y = _alloc.empty_like(x)
    h = _alloc.empty_like(x) if store_h else None
    mean = _alloc.empty((x.shape[0],), x, torch.float32)
    rstd = _alloc.empty_like(mean)
    _extension.require().layer_norm_residual_fwd(x, residual, weight, bias, y, h, mean, rstd, eps, dropout_p,
                                      dropout_scale(dropout_p), seed)
    return y, (h if store_h else x.new_empty(0)), mean, rstd


def layer_norm_residual_bwd(dy, dh_out, h, weight, mean, rstd, dropout_p, seed):
    dh = _alloc.empty_like(h)
    dx = _alloc.empty_like(h) if seed is not None else None
    dweight, dbias = _extension.require().layer_norm_residual_bwd(
        dy, dh_out, h, weight, mean, rstd, dh, dx, dropout_p, dropout_scale(dropout_p), seed)
    return dh, (dx if seed is not None else h.new_empty(0)), dweight, dbias
